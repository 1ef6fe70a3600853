"""The README's install, wheel-check and test commands are the ones CI runs; the docs name real entry points."""

from .conftest import ROOT


def test_ci_runs_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert len(commands) == 3
    for command in commands:
        assert f"\n{command}\n" in readme, command
    install, wheel, test = commands
    assert "-e " in install and wheel == "scripts/check-wheel.sh" and " -m pytest" in test
    assert (ROOT / wheel).is_file()


def test_documented_module_commands_exist():
    """Every ``-m sr_filter.MODULE`` in the README and docs names a module of the package, and every
    ``-m sr_filter COMMAND`` a subcommand (a removed entry point must not stay in the docs)."""
    import re

    from sr_filter.cli import COMMANDS

    texts = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found = []
    for path in texts:
        for dotted, command in re.findall(r"-m sr_filter(?:\.([\w.]+)| (\w[\w-]*))", path.read_text()):
            found.append((path.name, dotted or command))
            if dotted:  # a file of this checkout (an installed copy may still hold a removed module)
                module = ROOT / "sr_filter" / dotted.replace(".", "/")
                assert module.with_suffix(".py").is_file() or (module / "__main__.py").is_file(), (path, dotted)
            else:
                assert command in COMMANDS, (path, command)
    assert any(name == "train" for _, name in found)  # the training docs' torchrun line is checked


def test_readme_shows_small_credited_before_after_pictures_from_redistributable_sources():
    """The README shows a before/after picture near the top; every picture it shows exists, is small
    (< 300 KB) and is credited in docs/pictures/README.md, whose commands read only images that
    may be redistributed (never the evaluation sets or the non-commercial photos and faces)."""
    import re

    readme = (ROOT / "README.md").read_text()
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert pictures and readme.index(pictures[0]) < readme.index("## Install")
    credits = (ROOT / "docs" / "pictures" / "README.md").read_text()
    for picture in pictures:
        path = ROOT / picture
        assert path.is_file() and path.stat().st_size < 300_000, picture
        assert f"`{path.name}`" in credits, picture
    commands = re.findall(r"before_after\.py[^`]*", credits)
    assert commands and "CC BY" in credits
    for command in commands:
        for forbidden in ("faces_celebahq", "benchmarks", "BSD200", "T91", "anime_samples"):
            assert forbidden not in command, (forbidden, command)


def test_every_picture_the_docs_show_exists():
    import re

    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for picture in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text()):
            assert (page.parent / picture).is_file(), (page, picture)


def test_wheel_check_tests_the_declared_oldest_pillow_and_imagecodecs():
    """The floors in pyproject.toml are the versions scripts/check-wheel.sh runs the I/O tests with."""
    import re

    declared = dict(re.findall(r'"(pillow|imagecodecs)>=([\d.]+)"', (ROOT / "pyproject.toml").read_text()))
    script = (ROOT / "scripts" / "check-wheel.sh").read_text()
    assert set(declared) == {"pillow", "imagecodecs"}
    for name, floor in declared.items():
        pinned = re.search(rf'"{name}==([\d.]+)"', script).group(1)
        assert tuple(map(int, pinned.split("."))) == tuple(map(int, (floor + ".0").split(".")[: len(pinned.split("."))])), (name, floor, pinned)
