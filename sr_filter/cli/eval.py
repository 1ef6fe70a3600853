"""``sr-filter eval``: PSNR/SSIM/GMSD and sharpness of models on folders of HR images (published tables)."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

from .options import colour_fix_opt, complete_model, device_opt, offline_opt, precision_opt, say, tile_opt, verbosity


@click.command("eval")
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-m", "--model", "models", multiple=True, metavar="NAME|PATH|bicubic",
              shell_complete=lambda ctx, param, incomplete: complete_model(ctx, param, incomplete, also=("bicubic",)),
              help="Model to evaluate (repeatable): a preset, a manifest name, a .pth file, or 'bicubic' for the "
                   "MATLAB bicubic baseline.  [default: bicubic]")
@click.option("-s", "--scale", "scales", type=click.IntRange(1, 16), multiple=True,
              help="Scale to measure at (repeatable: -s 2 -s 3 -s 4 measures every model at each). Without it "
                   "models use their own, and bicubic is measured at each of their scales (a baseline for every "
                   "model row), else x4; a model of another scale runs as the filter runs it there (an x4 model "
                   "at -s 2: x4, then resized).")
@click.option("--per-image", is_flag=True, help="Also list every image.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, callback=lambda ctx, param, value: _json_file(value),
              help="Write the results as JSON to this file ('-' for stdout instead of the table); missing folders are made.")
@click.option("--overwrite", is_flag=True, help="Replace the --json file if it exists.")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many images per folder.")
@click.option("--include", "include", multiple=True, metavar="PATTERN",
              help="Only the files matching this pattern (repeatable), e.g. 'src_*' for a held-out split.")
@click.option("--exclude", "exclude", multiple=True, metavar="PATTERN",
              help="Leave out the files matching this pattern (repeatable), e.g. a damaged or too small one.")
@click.option("--jpeg", type=click.IntRange(1, 100), default=None, metavar="QUALITY",
              help="Also JPEG-compress every LR input at this quality (for models meant for compressed images).")
@click.option("--hr-scale", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True,
              help="Downscale every ground-truth image by this factor first (large photos at a smaller size).")
@colour_fix_opt
@device_opt
@precision_opt
@tile_opt
@offline_opt
@verbosity
def eval_cmd(folders: tuple[Path, ...], models: tuple[str, ...], scales: tuple[int, ...], per_image: bool,
             json_path: Path | None, overwrite: bool, limit: int | None, include: tuple[str, ...], exclude: tuple[str, ...],
             jpeg: int | None, hr_scale: float, colour_fix: bool,
             device: str, precision: str, tile: int | str,
             offline: bool | None) -> None:
    """Measure models on FOLDERS of ground-truth images (e.g. Set5 Set14).

    \b
    Each HR image is cropped to a multiple of the scale, downscaled with MATLAB-compatible bicubic,
    upscaled by the model and compared on the Y channel (BT.601) with `scale` border pixels shaved:
    PSNR and SSIM (higher is better) and GMSD, a perceptual measure (lower is better). Grey images
    are measured on their own 0..255 values, as the published MATLAB scripts do (a grey image and
    the same picture saved as RGB do not score alike).
    'sharp' is the output's Sobel gradient magnitude over the ground truth's, on the ground truth's
    strongest 10% of gradients: 1.0 = as sharp, below 1 softer (bicubic), above 1 over-sharpened.
    'sec' is the seconds the model took on the set's images (each image's with --per-image).
    Example:
      sr-filter eval ../shared/data/benchmarks/Set5 ../shared/data/benchmarks/Set14 -m bicubic -m photo
    """
    from ..atomic import open_atomic, prepare_target
    from ..evaluation import (EvalReport, bicubic_upscaler, dumps, evaluate_folder, measured_images, model_upscaler,
                              set_names)

    if json_path is not None and str(json_path) != "-":
        # before hours of evaluation, not after; missing folders are made, as for upscaling's and
        # export's -o (and removed again when the command ends without writing the file)
        prepare_target(json_path, overwrite=overwrite)
    if any(not spec.strip() for spec in models):
        raise click.BadParameter("a model name is empty; give a preset, a model name, a file or 'bicubic'", param_hint="-m")
    if sys.stdout is None and (json_path is None or str(json_path) == "-"):  # the results would be lost after the work
        raise click.UsageError("standard output is closed; write the results to a file with --json FILE")
    _check_patterns(folders, include, exclude)
    if colour_fix and all(spec.strip().lower() == "bicubic" for spec in models or ("bicubic",)):
        raise click.BadParameter("it applies to models; bicubic alone shifts no colours", param_hint="'--colour-fix'")
    names = set_names(folder.resolve() for folder in folders)  # as training's validation names them
    scales = tuple(dict.fromkeys(scales))  # -s 4 -s 4: once
    chosen = []  # (upscale function or None for bicubic, scale, description), in the order given
    for spec in models or ("bicubic",):
        if spec.strip().lower() == "bicubic":  # names are stripped when looked up: " bicubic" too
            chosen.append((None, 0, ""))
            continue
        fn, s, desc = model_upscaler(spec, device=device, precision=precision, tile=tile, offline=offline,
                                      colour_fix=colour_fix)
        for scale in scales or (s,):  # every scale asked for (a second -s had replaced the first, unsaid)
            if scale == s:
                chosen.append((fn, s, desc))
                continue
            from ..sizing import network_passes  # as the filter runs it at that scale: the network's passes, then a resize

            passes = network_passes(scale, s)
            how = f"run {passes} times" if s ** passes == scale else "resized"
            chosen.append((functools.partial(fn, scale=scale), scale, f"{desc}, {how} to x{scale}"))
    # bicubic, where it is listed, at every scale the models have (else each --scale, else 4): an x4
    # model's row had been shown beside an x2 bicubic without a word
    model_scales = list(dict.fromkeys(s for fn, s, _ in chosen if fn is not None))
    rows = []
    for fn, s, desc in chosen:
        rows += [(bicubic_upscaler(b), b, f"bicubic (MATLAB imresize) x{b}") for b in (model_scales or list(scales) or [4])] \
            if fn is None else [(fn, s, desc)]
    # every folder measurable at every scale, before any is measured: a picture too small at the
    # last scale (-s 2 -s 4, an x2 and an x4 model) had ended the command after the others' work
    for s in sorted({s for _, s, _ in rows}, reverse=True):
        for folder in folders:
            measured_images(folder, s, limit, include, exclude, hr_scale)
    conditions = {"jpeg": jpeg, "hr_scale": hr_scale, "include": list(include), "exclude": list(exclude), "limit": limit}
    reports: list[EvalReport] = []
    for fn, s, desc in rows:
        report = EvalReport(model=desc, scale=s, conditions=conditions)
        for folder, name in zip(folders, names):
            report.sets.append(evaluate_folder(fn, folder, s, name=name, limit=limit, include=include, exclude=exclude,
                                               hr_scale=hr_scale, jpeg=jpeg))
        reports.append(report)
    payload = [r.to_dict() for r in reports]
    if json_path is not None and str(json_path) == "-":
        click.echo(dumps(payload))
        return
    for r in reports:
        click.echo(r.table(per_image=per_image))
        click.echo("")
    if json_path is not None:
        with open_atomic(json_path, overwrite=overwrite) as out:
            out.write((dumps(payload) + "\n").encode("utf-8"))
        say(f"sr-filter: wrote {json_path}")  # a message: standard output holds the tables


def _json_file(value: str | None) -> Path | None:
    """The --json file; a name ending in a slash means a folder, not a file called that (click's
    Path had dropped the slash and written a file named ``res`` for ``res/``)."""
    if value is None:
        return None
    from ..atomic import descriptor

    if descriptor(value) == 1:  # /dev/stdout, /dev/fd/1: standard output, as "-" is (the tables had been mixed into the JSON)
        return Path("-")
    if value != "-" and value.endswith(("/", os.sep)):
        raise click.BadParameter(f"{value} names a folder; give the file to write, e.g. {value.rstrip('/' + os.sep)}/results.json",
                                 param_hint="'--json'")
    return Path(value)


def _check_patterns(folders: tuple[Path, ...], include: tuple[str, ...], exclude: tuple[str, ...]) -> None:
    """An --exclude (or --include) pattern that matches no file is a typo, not a choice: the table
    would say "without X" while X was measured."""
    from ..datasets import list_images, select_images, unmatched
    from ..errors import EvaluationError

    files = [p for folder in folders for p in list_images(folder)]
    for option, patterns in (("--exclude", exclude), ("--include", include)):
        missing = unmatched(patterns, files)
        if missing:
            raise click.BadParameter(f"{missing[0]!r} matches no image in {', '.join(map(str, folders))}; patterns "
                                     "match file names or names without the extension, e.g. 'baby*' or 'baby'",
                                     param_hint=f"'{option}'")
    if include or exclude:  # each folder must keep an image: one that kept none failed after the others' work
        for folder in folders:
            try:
                select_images(folder, include, exclude)
            except EvaluationError as exc:
                raise click.BadParameter(str(exc), param_hint="'--include'" if include else "'--exclude'") from None
