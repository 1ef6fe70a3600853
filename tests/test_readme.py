"""The README's install and test commands are the ones CI runs."""

from .conftest import ROOT


def test_ci_runs_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert len(commands) == 2
    for command in commands:
        assert f"\n{command}\n" in readme, command
