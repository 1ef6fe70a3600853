"""``sr-filter export MODEL -o model.onnx``: a model as an ONNX file for other runtimes."""

from __future__ import annotations

import click

from .options import complete_model, offline_opt, say, verbosity


@click.command("export")
@click.argument("model", metavar="MODEL", shell_complete=complete_model)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The .onnx file to write.")
@click.option("--overwrite", is_flag=True, help="Replace the output file if it exists.")
@click.option("--no-check", is_flag=True, help="Do not compare the file with the torch network in onnxruntime.")
@offline_opt
@verbosity
def export_cmd(model: str, output: str, overwrite: bool, no_check: bool, offline: bool | None) -> None:
    """Write MODEL (a preset, a name from `sr-filter models`, or a model file: .pth, .pt, .ckpt, .safetensors) as ONNX.

    \b
    The graph: input "input" and output "output", NCHW float32 in [0, 1] (RGB for most models);
    batch, height and width are dynamic (height and width multiples of the model's size multiple,
    1 for most models, and at least its minimum size, 0 for most); the output is scale times
    larger. The file's metadata_props say scale, size_multiple and size_minimum. Checked against
    torch with onnxruntime (within 1/255) before it is put in place.
    """
    from ..export import check_output, export_onnx, size_minimum  # torch loads only to export, after these checks
    from ..models import load_model, preset_colour_fix

    if output == "-":
        raise click.BadParameter("the ONNX file is written to a file of its own, not standard output; "
                                 "name it, e.g. -o model.onnx", param_hint="-o")
    check_output(output, overwrite=overwrite)  # before the model loads
    loaded = load_model(model, offline=offline, fallback=False)  # the model asked for, or why not
    path = export_onnx(loaded, output, overwrite=overwrite, check=not no_check)
    facts = loaded.facts
    channels = {1: "grey", 3: "RGB", 4: "RGBA"}.get(facts.in_channels, f"{facts.in_channels} channels")
    smallest = f", at least {size_minimum(loaded)} px" if facts.minimum else ""
    say(f"sr-filter: wrote {path} ({loaded.name}, x{loaded.scale}, {loaded.arch.name}; NCHW float32 {channels} "
        f"in [0, 1], sides multiples of {facts.multiple}{smallest})")
    if preset_colour_fix(model):  # the preset's result differed from the file's by up to 16 levels, unsaid
        say(f"sr-filter: note: the {model.strip().lower()} preset also runs the colour fix after the network "
            "(--colour-fix), which is not part of the graph; the file gives the network's own pixels")
