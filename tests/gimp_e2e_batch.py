# Python-Fu batch script run inside real GIMP 3 by tests/test_gimp_plugin.py:
#   gimp3-env.sh batch tests/gimp_e2e_batch.py WORKDIR     (WORKDIR is /job)
# /job/args.json lists cases; for each one it loads the input PNG (or makes an image: strips
# of layers side by side, a float image), optionally adds a layer with an offset inside
# a layer group (pixels from a raw RGBA file), a selection, a floating selection, an indexed
# conversion or a colour profile, runs plug-in-sr-filter-upscale through the PDB with the
# given arguments (read back: GIMP silently keeps old values when it rejects one), exports the
# result as PNG, dumps pixels and records the procedure status, message and geometry in
# /job/report.json for the test to check.
import json
import struct

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

PROC_NAME = "plug-in-sr-filter-upscale"
EXPORT_OPTIONS = [
    ("interlaced", False), ("compression", 6), ("bkgd", False), ("offs", False), ("phys", False),
    ("time", False), ("save-transparent", True), ("optimize-palette", False), ("format", "auto"),
    ("include-exif", False), ("include-iptc", False), ("include-xmp", False),
    ("include-color-profile", False), ("include-thumbnail", False), ("include-comment", False),
]


def set_checked(config, name, value):
    if name == "model":
        config.set_property(name, Gio.File.new_for_path(value))
        got = config.get_property(name)
        got = got.get_path() if got is not None else None
    else:
        config.set_property(name, value)
        got = config.get_property(name)
    if got != value:
        raise ValueError("argument %r: wanted %r, GIMP kept %r (out of range?)" % (name, value, got))


def export_png(image, path):
    export = Gimp.get_pdb().lookup_procedure("file-png-export")
    cfg = export.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", image)
    cfg.set_property("file", Gio.File.new_for_path(path))
    for name, value in EXPORT_OPTIONS:
        set_checked(cfg, name, value)
    result = export.run(cfg)
    if result.index(0) != Gimp.PDBStatusType.SUCCESS:
        raise RuntimeError("file-png-export failed: %s" % result.index(1))


def add_layer(image, spec):
    """Add an RGBA u8 layer of size spec['size'] at spec['offset'] from /job/<spec['raw']>,
    inside a new layer group; the group is hidden so the export shows only the base layer."""
    w, h = spec["size"]
    group = Gimp.GroupLayer.new(image, "group")
    image.insert_layer(group, None, 0)
    layer = Gimp.Layer.new(image, "offset layer", w, h, Gimp.ImageType.RGBA_IMAGE, 100.0,
                           Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, group, 0)
    layer.set_offsets(*spec["offset"])
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), "R'G'B'A u8", open("/job/" + spec["raw"], "rb").read())
    buf.flush()
    layer.update(0, 0, w, h)
    group.set_visible(False)
    return layer


def add_masks(layer):
    """A mask on ``layer`` (black over its left half) and a white one on its group."""
    w, h = layer.get_width(), layer.get_height()
    layer.add_mask(layer.create_mask(Gimp.AddMaskType.WHITE))
    buf = layer.get_mask().get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), "Y u8", bytes([0 if x < w // 2 else 255 for _ in range(h) for x in range(w)]))
    buf.flush()
    group = layer.get_parent()
    group.add_mask(group.create_mask(Gimp.AddMaskType.WHITE))


def masks_of(layer):
    """Size and pixels (rows of Y u8) of the masks of ``layer`` and of its group."""
    out = {}
    for name, item in (("layer", layer), ("group", layer.get_parent())):
        w, h = item.get_width(), item.get_height()
        data = bytes(item.get_mask().get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, "Y u8", Gegl.AbyssPolicy.CLAMP))
        out[name] = {"size": [w, h], "offsets": list(item.get_offsets()[1:]), "rows": [list(data[y * w:(y + 1) * w]) for y in range(h)]}
    return out


def geometry(image):
    """Image size, precision, selection bounds and every layer (groups first, then children)."""
    layers = {}

    def visit(items):
        for item in items:
            layers[item.get_name()] = {"offsets": list(item.get_offsets()[1:]),
                                       "size": [item.get_width(), item.get_height()]}
            if item.is_group():
                visit(item.get_children())

    visit(image.get_layers())
    _, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
    return {"size": [image.get_width(), image.get_height()], "layers": layers,
            "precision": image.get_precision().value_name,
            "selection": [x1, y1, x2, y2] if non_empty else None,
            "channels": [c.get_name() for c in image.get_channels()],
            "selected_layers": [layer.get_name() for layer in image.get_selected_layers()],
            "selected_channels": [c.get_name() for c in image.get_selected_channels()]}


def make_strips(count, width, height):
    """An RGBA canvas exactly covered by ``count`` opaque layers ``width`` wide, side by side."""
    image = Gimp.Image.new(count * width, height, Gimp.ImageBaseType.RGB)
    for i in range(count):
        layer = Gimp.Layer.new(image, "strip %d" % i, width, height, Gimp.ImageType.RGBA_IMAGE, 100.0,
                               Gimp.LayerMode.NORMAL)
        image.insert_layer(layer, None, 0)
        layer.set_offsets(i * width, 0)
        buf = layer.get_buffer()
        buf.set(Gegl.Rectangle.new(0, 0, width, height), "R'G'B'A u8", bytes([200, 60 * i, 50, 255]) * (width * height))
        buf.flush()
    return image


def make_float(values, size, ramp=True, perceptual=False):
    """A 32-bit float RGB image, linear light (else perceptual): a grey ramp (else ``values`` too)
    with a square of ``values`` in the middle."""
    precision = Gimp.Precision.FLOAT_NON_LINEAR if perceptual else Gimp.Precision.FLOAT_LINEAR
    image = Gimp.Image.new_with_precision(size, size, Gimp.ImageBaseType.RGB, precision)
    layer = Gimp.Layer.new(image, "Background", size, size, Gimp.ImageType.RGB_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, None, 0)
    q = size // 4
    pixels = [values if not ramp or (q <= y < size - q and q <= x < size - q) else [0.1 + 0.3 * x / size] * 3
              for y in range(size) for x in range(size)]
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, size, size), "R'G'B' float" if perceptual else "RGB float", struct.pack("<%df" % (3 * size * size), *sum(pixels, [])))
    buf.flush()
    return image


def composite(image, fmt):
    """The visible image's pixels (a merged copy), in ``fmt``."""
    copy = image.duplicate()
    merged = copy.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
    w, h = merged.get_width(), merged.get_height()
    data = bytes(merged.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, fmt, Gegl.AbyssPolicy.CLAMP))
    copy.delete()
    return data


def load(case):
    make = case.get("make")
    if make is None:
        return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path("/job/" + case["input"]))
    if make["kind"] == "strips":
        return make_strips(make["count"], make["width"], make["height"])
    return make_float(make["values"], make["size"], make.get("ramp", True), make.get("perceptual", False))


def run_case(case):
    if case.get("no_image"):
        return run_procedure(None, case)
    image = load(case)
    try:
        extra = add_layer(image, case["extra_layer"]) if case.get("extra_layer") else None
        if case.get("masks"):
            add_masks(extra)
        if case.get("empty_masked_group"):  # a masked group whose only layer was then removed: empty, 1x1
            group = Gimp.GroupLayer.new(image, "empty group")
            image.insert_layer(group, None, 0)
            child = Gimp.Layer.new(image, "moved out", 4, 4, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
            image.insert_layer(child, group, 0)
            group.add_mask(group.create_mask(Gimp.AddMaskType.WHITE))
            image.remove_layer(child)
        if case.get("precision"):  # e.g. FLOAT_NON_LINEAR: exercise high bit depth
            image.convert_precision(getattr(Gimp.Precision, case["precision"]))
        if case.get("lock"):
            image.get_layers()[-1].set_lock_content(True)
        if case.get("lock_alpha"):
            image.get_layers()[-1].set_lock_alpha(True)
        if case.get("user_channel"):  # a channel of the user's own, beside the layers
            channel = Gimp.Channel.new(image, "mine", image.get_width(), image.get_height(), 50.0, Gegl.Color.new("red"))
            image.insert_channel(channel, None, 0)
            image.set_selected_layers(image.get_layers()[-1:])
        if case.get("select"):
            image.select_rectangle(Gimp.ChannelOps.REPLACE, *case["select"])
        if case.get("profile"):  # assigned, not converted: the pixel values stay as they are
            image.set_color_profile(Gimp.ColorProfile.new_from_file(Gio.File.new_for_path("/job/" + case["profile"])))
        if case.get("floating"):
            base = image.get_layers()[-1]
            image.select_rectangle(Gimp.ChannelOps.REPLACE, 2, 2, 6, 6)
            Gimp.edit_copy([base])
            Gimp.edit_paste(base, False)
        if case.get("indexed"):
            image.convert_indexed(Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE, 16, False, False, "")
        if case.get("canvas"):  # a canvas of that size, the layers where they are
            image.resize(case["canvas"][0], case["canvas"][1], 0, 0)
        report = run_procedure(image, case)
        if case.get("masks") and report["status"] == "success":
            report["masks"] = masks_of(extra)
        if report["status"] == "success":
            export_png(image, "/job/" + case["output"])
            if case.get("dump_format"):  # exact pixels of the bottom layer, e.g. "R'G'B'A float"
                base = image.get_layers()[-1]
                w, h = base.get_width(), base.get_height()
                data = base.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, case["dump_format"],
                                             Gegl.AbyssPolicy.CLAMP)
                open("/job/" + case["output"] + ".raw", "wb").write(bytes(data))
            if case.get("dump_native"):  # the bottom layer's pixels as the image holds them (its own colour space)
                base = image.get_layers()[-1]
                w, h = base.get_width(), base.get_height()
                data = base.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, None, Gegl.AbyssPolicy.CLAMP)
                open("/job/" + case["output"] + ".native.raw", "wb").write(bytes(data))
            if extra is not None:
                w, h = extra.get_width(), extra.get_height()
                data = extra.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, "R'G'B'A u8",
                                              Gegl.AbyssPolicy.CLAMP)
                open("/job/" + case["output"] + ".layer.raw", "wb").write(bytes(data))
            if case.get("composite_alpha"):  # the visible image's alpha, row by row
                w = image.get_width()
                data = composite(image, "R'G'B'A u8")
                report["alpha"] = [list(data[3 + 4 * w * y:4 * w * (y + 1):4]) for y in range(image.get_height())]
            if case.get("dump_linear"):  # linear light, as the image holds it
                w, h = image.get_width(), image.get_height()
                data = composite(image, "RGB float")
                report["linear"] = [list(struct.unpack("<3f", data[12 * (y * w + x):12 * (y * w + x + 1)]))
                                    for y, x in [(h // 2, w // 2), (h // 2, 1)]]
        report.update(geometry(image))
        report["floating"] = image.get_floating_sel() is not None
        report["base"] = image.get_base_type().value_nick
        return report
    finally:
        image.delete()


def run_procedure(image, case):
    """Run the plug-in on ``image`` (None: no image open) with the case's arguments."""
    proc = Gimp.get_pdb().lookup_procedure(PROC_NAME)
    if proc is None:
        raise RuntimeError(PROC_NAME + " is not registered (plug-in not installed or broken)")
    config = proc.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    if image is not None:
        config.set_property("image", image)
        config.set_core_object_array("drawables", image.get_layers()[-1:])
    for name, value in case["args"].items():
        set_checked(config, name, value)
    result = proc.run(config)
    status = result.index(0)
    return {"status": status.value_nick, "message": str(result.index(1)) if result.length() > 1 else ""}


Gegl.init(None)
args = json.load(open("/job/args.json"))
reports = {case["name"]: run_case(case) for case in args["cases"]}
json.dump(reports, open("/job/report.json", "w"), indent=1)
print("sr-filter e2e: ran %d cases" % len(reports))
