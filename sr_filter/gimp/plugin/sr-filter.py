#!/usr/bin/env python3
# sr-filter GIMP 3 plug-in: Filters > Enhance > Super-resolution...
#
# Upscales the whole image (every layer, the canvas and layer offsets) with the sr_filter
# library. GIMP's Python usually cannot import torch, so the pixels go to a worker process,
# `PYTHON -m sr_filter.gimp.worker`, where PYTHON comes from sr-filter.json next to this
# file (written by `python -m sr_filter.gimp.install`). All image maths happens there; the
# preset menu comes from the library's manifest (via the config, or asked from the worker).
import os
import sys

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

try:  # babl's introspection: pixels in the image's own colour space (else they pass through sRGB)
    gi.require_version("Babl", "0.1")
    from gi.repository import Babl  # noqa: E402
except (ValueError, ImportError):
    Babl = None

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gimp_protocol as proto  # noqa: E402  (copied here by the installer)

PROC_NAME = "plug-in-sr-filter-upscale"
CONFIG_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sr-filter.json")
# Only when no worker can be asked (the run then reports why): the library's default preset.
FALLBACK_CHOICES = {"presets": [("photo", "Photo", "")], "default": "photo", "min_tile": 0}
# The last preset entry selects the model file (GIMP 3.0's file chooser cannot be emptied, so a
# file once chosen must not win over the menu for ever).
MODEL_FILE = ("file", "Model file (below)", "Use the weights file chosen in Model file")
DEVICES = [("auto", "Automatic", ""), ("cpu", "CPU", ""), ("cuda", "NVIDIA GPU (CUDA)", ""), ("mps", "Apple GPU (MPS)", "")]
BACKENDS = [("auto", "Automatic (OpenVINO on the CPU when installed)", ""), ("torch", "PyTorch", ""), ("openvino", "OpenVINO (CPU)", "")]
COLOUR_FIX = [("auto", "As the preset chooses (on for Cartoon)", ""), ("on", "On", ""), ("off", "Off", "")]
PRECISIONS = [("auto", "Automatic (half precision on a GPU)", ""), ("fp32", "Full (fp32)", ""), ("fp16", "Half (fp16, GPU)", ""),
              ("bf16", "bfloat16 (CPUs and GPUs that have it)", "")]
SAMPLES = {"uint8": "u8", "uint16": "u16", "float32": "float"}
NOT_FOUND = ("sr-filter is not installed for this plug-in: in the Python environment that has "
             "sr-filter and torch, run `%s`, then restart GIMP" % proto.INSTALL_COMMAND)


def error(procedure, msg, status=Gimp.PDBStatusType.EXECUTION_ERROR):
    return procedure.new_return_values(status, GLib.Error.new_literal(Gimp.PlugIn.error_quark(), msg, 0))


def worker_python():
    """Interpreter for the worker: the installer's config, else GIMP's own Python if it has sr_filter."""
    python = proto.python_from_config(CONFIG_FILE)
    if python:
        return python
    import importlib.util

    return sys.executable if importlib.util.find_spec("sr_filter") else None


def menu_choices():
    """Presets, default preset and smallest tile: from the installer's config, else from the worker."""
    choices = proto.choices_from_config(CONFIG_FILE)
    python = worker_python() if choices is None else None
    if python is not None:
        try:
            choices = proto.describe_worker(python)
        except (proto.WorkerError, proto.ProtocolError):
            choices = None
    return choices or FALLBACK_CHOICES


def preset_menu():
    """The preset menu: the library's presets and built-in models, then the model-file entry."""
    choices = menu_choices()
    return choices["presets"] + [MODEL_FILE], choices["default"]


def library_tile(tile):
    """The plug-in's tile (0 = automatic) as the library's value; None if below the smallest tile."""
    if tile == 0:
        return "auto"
    return None if tile < menu_choices()["min_tile"] else tile


def masked_items(items):
    """Layers and layer groups that have a mask, each group before what it holds. A group with no
    pixel layer in it is left to GIMP's own scaling: it stays 1x1 whatever the scale, so the mask
    asked for its scaled box came back the wrong size, and the run failed after it had changed
    the image (a masked group whose layers had been moved out)."""
    out = []
    for item in items:
        if item.get_mask() is not None and not (item.is_group() and not leaf_layers(item.get_children())):
            out.append(item)
        if item.is_group():
            out.extend(masked_items(item.get_children()))
    return out


def leaf_layers(items):
    """All pixel layers, descending into layer groups (groups have no pixels of their own)."""
    out = []
    for item in items:
        out.extend(leaf_layers(item.get_children()) if item.is_group() else [item])
    return out


def locked_item(items):
    """Name of the first layer or group whose pixels or position are locked, else None."""
    for item in items:
        if item.get_lock_content() or item.get_lock_position():
            return item.get_name()
        name = locked_item(item.get_children()) if item.is_group() else None
        if name:
            return name
    return None


def sample_type(image):
    """Keep the image's precision: 8-bit as u8, 16-bit as u16, anything deeper as float. 8-bit
    linear light goes as 16-bit: the perceptual 8-bit exchange has one step per two linear levels
    near white, so only even levels came back in the highlights."""
    name = image.get_precision().value_name
    if name.endswith("_U8_LINEAR"):
        return "uint16"
    return "uint8" if "_U8_" in name else "uint16" if "_U16_" in name else "float32"


def babl_format(layer, dtype):
    """Name of the layer's pixel format for the exchange: perceptual (the networks are trained on
    encoded pixels, not linear light) and in the image's own colour space. A name without a space
    is sRGB to GEGL: an Adobe RGB or ProPhoto image would go through sRGB and back, its colours
    shifted and everything outside sRGB clipped."""
    name = "%s%s %s" % ("Y'" if layer.is_gray() else "R'G'B'", "A" if layer.has_alpha() else "", SAMPLES[dtype])
    if Babl is None:
        return name
    return Babl.get_name(Babl.format_with_space(name, layer.get_format()))


def channels_of(layer):
    """How many channels a layer's pixels are exchanged with: grey or RGB, plus alpha."""
    return (1 if layer.is_gray() else 3) + (1 if layer.has_alpha() else 0)


def read_layer(layer, dtype):
    """(protocol geometry, raw pixels) of one layer."""
    w, h = layer.get_width(), layer.get_height()
    data = layer.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, babl_format(layer, dtype),
                                  Gegl.AbyssPolicy.CLAMP)
    return {"width": w, "height": h, "channels": channels_of(layer), "dtype": dtype, "name": layer.get_name()[:256]}, bytes(data)


def mask_format(dtype):
    """The exchange format of a layer mask: one channel of the image's sample type."""
    return "Y %s" % SAMPLES[dtype]


def read_mask(item, dtype):
    """(protocol geometry, raw pixels) of the mask of a layer or group, at its size."""
    w, h = item.get_width(), item.get_height()
    data = item.get_mask().get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, mask_format(dtype), Gegl.AbyssPolicy.CLAMP)
    return {"width": w, "height": h, "channels": 1, "dtype": dtype, "name": item.get_name()[:256], "mask": True}, bytes(data)


def write_mask(item, info, data):
    """Give the mask of ``item`` (already at its new box) the worker's resized mask."""
    w, h = info["width"], info["height"]
    if (item.get_width(), item.get_height()) != (w, h):
        raise proto.WorkerError("the mask of %s came back %dx%d for a %dx%d layer" % (proto.layer_label(item.get_name()), w, h, item.get_width(), item.get_height()))
    mask = item.get_mask()
    shadow = mask.get_shadow_buffer()
    shadow.set(Gegl.Rectangle.new(0, 0, w, h), mask_format(info["dtype"]), bytes(data))
    shadow.flush()
    mask.merge_shadow(True)
    mask.update(0, 0, w, h)


def write_layer(layer, info, data, offsets):
    """Give ``layer`` the worker's pixels, size and the scaled offsets."""
    w, h = info["width"], info["height"]
    if (layer.get_width(), layer.get_height()) != (w, h):
        layer.resize(w, h, 0, 0)
    layer.set_offsets(*offsets)
    lock_alpha = layer.get_lock_alpha()  # a locked alpha would keep GIMP's interpolated alpha
    layer.set_lock_alpha(False)
    shadow = layer.get_shadow_buffer()
    shadow.set(Gegl.Rectangle.new(0, 0, w, h), babl_format(layer, info["dtype"]), bytes(data))  # from a bytearray
    shadow.flush()  # required from Python before merge_shadow
    layer.merge_shadow(True)
    layer.update(0, 0, w, h)
    layer.set_lock_alpha(lock_alpha)


def upscale_image(image, options, python):
    """Run the worker on every layer, then apply all results in one undo step; returns the
    library's warning lines."""
    scale = options["scale"]
    layers = leaf_layers(image.get_layers())
    dtype = sample_type(image)
    why = too_large_for_gimp(image, layers, scale)
    for layer in layers:  # before any pixel is copied
        why = why or proto.too_large(layer.get_name(), layer.get_width(), layer.get_height(), channels_of(layer), scale)
    if why:
        raise proto.WorkerError(why)
    masked = masked_items(image.get_layers())
    inputs = [read_layer(layer, dtype) for layer in layers] + [read_mask(item, dtype) for item in masked]
    boxes = [proto.scaled_box(*item.get_offsets()[1:], item.get_width(), item.get_height(), scale) for item in layers + masked]
    options = dict(options, sizes=[[w, h] for _, _, w, h in boxes])

    def progress(index, done, total):
        Gimp.progress_update(min(1.0, (index + done / max(total, 1)) / len(layers)))
        return True

    Gimp.progress_init("Super-resolution x%g (whole image)" % scale)
    warnings = []
    results = proto.run_worker(python, options, inputs, progress, warnings=warnings)
    # GIMP's Cancel kills the plug-in: from here on it would leave a half-written image, so the
    # cancellable progress ends before the first change
    Gimp.progress_end()
    image.undo_group_start()
    Gimp.context_push()
    try:
        Gimp.context_set_interpolation(Gimp.InterpolationType.CUBIC)  # masks, channels, selection
        image.scale(proto.scaled(image.get_width(), scale), proto.scaled(image.get_height(), scale))
        # merge_shadow only writes inside the selection: lift it while writing, then restore it.
        # Saving it makes its channel the active drawable, and removing that channel hands the focus
        # to a neighbouring one: the user's selected layers (and channels) are put back after.
        chosen_layers, chosen_channels = image.get_selected_layers(), image.get_selected_channels()
        saved = None if Gimp.Selection.is_empty(image) else Gimp.Selection.save(image)
        Gimp.Selection.none(image)
        try:
            for layer, (x, y, _, _), (info, data) in zip(layers, boxes, results):
                write_layer(layer, info, data, (x, y))
            # a mask is scaled by GIMP with its layer, into GIMP's own box for it, a pixel off the
            # box the layer's pixels now fill: each one is written again, resized from the original
            for item, (info, data) in zip(masked, results[len(layers):]):
                write_mask(item, info, data)
        finally:
            if saved is not None:
                image.select_item(Gimp.ChannelOps.REPLACE, saved)
                image.remove_channel(saved)
                if chosen_layers:
                    image.set_selected_layers(chosen_layers)
                else:
                    image.set_selected_channels(chosen_channels)
    finally:
        Gimp.context_pop()
        image.undo_group_end()
    return warnings


#: GIMP's largest image or layer side (GIMP_MAX_IMAGE_SIZE)
GIMP_MAX_SIDE = 524288


def too_large_for_gimp(image, layers, scale):
    """Why the scaled canvas or a scaled layer would pass GIMP's size limit, else None: GIMP
    refuses to scale the canvas, and the layers were upscaled anyway, off the canvas."""
    sizes = [("the image", image.get_width(), image.get_height())]
    sizes += [(proto.layer_label(layer.get_name()), layer.get_width(), layer.get_height()) for layer in layers]
    for what, width, height in sizes:
        w, h = proto.scaled(width, scale), proto.scaled(height, scale)
        if max(w, h) > GIMP_MAX_SIDE:
            fix = "crop the canvas (Image > Crop to Content)" if what == "the image" else "crop or scale down that layer"
            return ("%s would be %dx%d after x%g, more than GIMP's %d pixels a side: use a smaller scale, or %s"
                    % (what, w, h, scale, GIMP_MAX_SIDE, fix))
    return None


def refusal(image):
    """Why the plug-in cannot run on ``image`` (before anything changes), else None."""
    if image is None:
        return "open an image first: Super-resolution works on the whole image"
    if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
        return "indexed images are not upscaled (the new detail needs more colours): use Image > Mode > RGB first"
    if image.get_floating_sel() is not None:
        return ("the image has a floating selection: anchor it (Layer > Anchor Layer) or make it a layer "
                "(Layer > To New Layer), then run Super-resolution again")
    locked = locked_item(image.get_layers())
    if locked:
        return "%s is locked (pixels or position): unlock it and run Super-resolution again" % proto.layer_label(locked)
    return None


def run(procedure, run_mode, image, drawables, config, run_data):
    if run_mode == Gimp.RunMode.INTERACTIVE:
        gi.require_version("GimpUi", "3.0")
        from gi.repository import GimpUi

        GimpUi.init(PROC_NAME)
        dialog = GimpUi.ProcedureDialog.new(procedure, config, "Super-resolution")
        dialog.fill(None)
        ok = dialog.run()
        dialog.destroy()
        if not ok:
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    why = refusal(image)
    if why:
        return error(procedure, why)
    preset = config.get_property("preset")
    model = config.get_property("model")
    model = model.get_path() if model is not None else ""
    # The model file is used when the menu says so; a script (non-interactive) that gives a file
    # means it, whatever the preset. Interactive runs keep the last file chosen, even unwanted.
    if preset != MODEL_FILE[0] and run_mode != Gimp.RunMode.NONINTERACTIVE:
        model = ""
    if preset == MODEL_FILE[0]:
        if not model:
            return error(procedure, "Preset is \"Model file\" but no model file is chosen: choose one, or a preset")
        preset = ""
    tile = library_tile(config.get_property("tile"))
    if tile is None:
        return error(procedure, "tile size must be 0 (automatic) or at least %d pixels, not %d"
                     % (menu_choices()["min_tile"], config.get_property("tile")))
    options = {
        "preset": preset,
        "model": model,
        "scale": config.get_property("scale"),
        "device": config.get_property("device"),
        "backend": config.get_property("backend"),
        "tile": tile,
    }
    colour_fix = config.get_property("colour-fix")
    if colour_fix != "auto":  # left out: the preset's choice
        options["colour_fix"] = colour_fix == "on"
    if config.get_property("tta"):
        options["tta"] = True
    if config.get_property("precision") != "auto":
        options["precision"] = config.get_property("precision")
    python = worker_python()
    if python is None:
        return error(procedure, NOT_FOUND)
    Gegl.init(None)
    try:
        warnings = upscale_image(image, options, python)
    except proto.WorkerError as exc:
        return error(procedure, str(exc))
    except Exception as exc:  # a GIMP call failed: report it, never crash silently
        return error(procedure, "sr-filter plug-in failed: %s: %s" % (type(exc).__name__, exc))
    if run_mode == Gimp.RunMode.INTERACTIVE and not Gimp.Selection.is_empty(image):
        warnings.append("sr-filter upscaled the whole image; the selection was scaled with it.")
    if warnings:  # a fallback model, clipped values...: what the command line would print
        Gimp.message("\n".join(warnings))
    if run_mode == Gimp.RunMode.INTERACTIVE:
        Gimp.displays_flush()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def choice(entries):
    c = Gimp.Choice.new()
    for i, (nick, label, help_text) in enumerate(entries):
        c.add(nick, i, label, help_text)
    return c


class SrFilter(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROC_NAME]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        rw = GObject.ParamFlags.READWRITE
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*, GRAY*")
        # any number of selected layers, but an image: with none open the entry is greyed out
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE | Gimp.ProcedureSensitivityMask.DRAWABLES
                                       | Gimp.ProcedureSensitivityMask.NO_DRAWABLES)
        procedure.set_menu_label("_Super-resolution...")
        procedure.add_menu_path("<Image>/Filters/Enhance")
        procedure.set_documentation(
            "Upscale the whole image with a super-resolution network",
            "Upscales every layer, the canvas and layer offsets with sr-filter (a selection is "
            "ignored and scaled with the image). Inference runs in the Python environment "
            "named by sr-filter.json next to the plug-in.", name)
        procedure.set_attribution("sr-filter authors", "sr-filter authors", "2026")
        presets, default = preset_menu()
        procedure.add_choice_argument("preset", "_Preset", "Model preset, built-in model, or \"Model file (below)\"",
                                      choice(presets), default, rw)
        procedure.add_file_argument("model", "_Model file", "Weights file (.pth, .safetensors...), used when Preset is "
                                    "\"Model file\" (from a script: whenever given)",
                                    Gimp.FileChooserAction.OPEN, True, None, rw)
        procedure.add_double_argument("scale", "S_cale", "Output size / input size", 1.0, 8.0, 2.0, rw)
        procedure.add_choice_argument("device", "_Device", "Where inference runs", choice(DEVICES), "auto", rw)
        procedure.add_choice_argument("backend", "_Engine", "Inference engine", choice(BACKENDS), "auto", rw)
        procedure.add_int_argument("tile", "_Tile size", "Tile size in input pixels (0 = automatic)",
                                   0, 4096, 0, rw)
        procedure.add_choice_argument("colour-fix", "_Colour fix", "Keep the input's colour over areas, where the "
                                      "network shifts flat colours by a few levels (detail stays the network's)",
                                      choice(COLOUR_FIX), "auto", rw)
        procedure.add_choice_argument("precision", "_Precision", "Number format of inference (bf16: faster on CPUs "
                                      "that have it, slightly less exact)", choice(PRECISIONS), "auto", rw)
        procedure.add_boolean_argument("tta", "_Test-time augmentation", "Upscale 8 flipped and turned copies and average "
                                       "them: a little sharper and cleaner, 8 times slower", False, rw)
        return procedure


Gimp.main(SrFilter.__gtype__, sys.argv)
