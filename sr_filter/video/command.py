"""The CLI side of video: ``sr-filter clip.mp4 -o clip_x4.mp4`` with a frames/fps/ETA progress bar.

``cli/upscale.py`` routes here (one hook) when the single input is a video or an animation, or
when ``--format y4m`` asks for a frame stream.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

import click

from ..atomic import is_stream, prepare_target, refuse_writing_input, write_all
from ..errors import OutputExistsError, OutputIsInputError, SrFilterError, VideoFormatError, shown_path
from ..interrupts import Terminated
from ..stdio import refuse_closed
from . import READ_ONLY_SUFFIXES, VIDEO_SUFFIXES

#: every suffix read as a video (written ones and read-only ones)
#: the suffixes of the files the video path reads
VIDEO_INPUTS = VIDEO_SUFFIXES | READ_ONLY_SUFFIXES

#: options ``sr-filter upscale`` adds for videos (spelled here, attached there)
codec_opt = click.option("--codec", default=None, metavar="h264|hevc|vp9|av1|ffv1|prores",
                         help="Video encoder.  [default: the source's codec where the output container takes it, else the first "
                              "of h264, vp9, av1, ffv1 it takes (.webm: vp9)]")
crf_opt = click.option("--crf", type=click.IntRange(0, 63), default=None,
                       help="Video quality (lower is better): h264/hevc 0-51 (18, 20 by default), vp9 0-63, av1 1-63 (30); ffv1 and prores have none.")
resume_opt = click.option("--resume", is_flag=True, help="Write a video in finished segments and, run again after an interruption, continue after the last one.")
frames_opt = click.option("--frames", default=None, metavar="START:END", help="Only frames START to END-1 of a video (to try settings).")
skip_damaged_opt = click.option("--skip-damaged", is_flag=True,
                                help="Leave out a video packet the decoder cannot read, as a player shows the rest, and say so "
                                     "(default: a damaged video is an error).")


#: why --quality is refused for a video (one machine and the cluster say it alike)
QUALITY_IS_NOT_CRF = "--quality is for JPEG, WebP and AVIF pictures; a video's quality is --crf"
#: the refusal of --quality for one video, with the --crf ranges to use instead
QUALITY_REFUSED = f"{QUALITY_IS_NOT_CRF} (lower is better: h264 and hevc 0-51, vp9 0-63, av1 1-63)"


def video_options(command):
    """Attach the video options to a click command."""
    return codec_opt(crf_opt(frames_opt(resume_opt(skip_damaged_opt(command)))))


def video_only(codec: str | None, crf: int | None, resume: bool, frames: str | None = None, skip_damaged: bool = False) -> str:
    """The options given that only videos take, as a message begins: "--codec applies",
    "--codec, --crf apply"; "" when none is given."""
    flags = [flag for flag, given in (("--codec", codec), ("--crf", crf is not None), ("--resume", resume),
                                      ("--frames", frames), ("--skip-damaged", skip_damaged)) if given]
    return f"{', '.join(flags)} {'applies' if len(flags) == 1 else 'apply'}" if flags else ""


def wants_video(inputs: list[str], fmt: str | None, output: str | None = None) -> bool:
    """True when ``sr-filter upscale`` should hand the job to the video path.

    An animated GIF/WebP/PNG asked for as a still format (``-o still.jpg``, ``--format tiff``) is
    an image job: its first frame is upscaled with the same notice a folder batch gives."""
    if fmt is not None and fmt.lower() in ("y4m", "png-stream"):
        return True
    if len(inputs) == 1 and output is not None and output.lower().endswith(".y4m") and (
            inputs[0] == "-" or Path(inputs[0]).suffix.lower() in VIDEO_INPUTS):
        return True  # a frame stream (from a .y4m file or standard input), or a video refused with advice
    if len(inputs) != 1 or inputs[0] == "-":
        return False
    path = Path(inputs[0])
    if path.suffix.lower() in VIDEO_INPUTS:
        return True
    from .. import animation

    return path.is_file() and animation.is_animated(path) and _holds_animation(fmt, output)


def _holds_animation(fmt: str | None, output: str | None) -> bool:
    """Whether the requested output can be an animation (unknown formats stay with the animation
    path, which names the formats it writes)."""
    from .. import animation, imageio

    if fmt is None and (output is None or output == "-" or output.endswith(("/", "\\")) or Path(output).is_dir()):
        return True
    try:
        wanted = imageio.format_for(output or "", fmt)
    except SrFilterError:
        return True
    return wanted in animation.HOLDS_ANIMATION


def run(*, inputs: list[str], output: str | None, model: str | None, scale: float | None, device: str, precision: str,
        backend: str = "auto",
        tile, offline, fmt: str | None, quality: int | None, overwrite: bool, skip_existing: bool, quiet: bool,
        codec: str | None, crf: int | None, frames: str | None, resume: bool = False, tta: bool = False,
        denoise: float | None = None, colour_fix: bool | None = None, size: tuple[int | None, int | None] = (None, None), upscaler=None,
        in_batch: bool = False, name_suffix: str | None = None, skip_damaged: bool = False,
        reword: Callable[[str], str] = str) -> None:
    """Upscale one video, animation or frame stream as the CLI was asked to; ``size`` =
    (width, height) fits the picture inside them instead of ``scale``. A batch passes its
    ``upscaler`` (loaded once) and ``in_batch``: it says which model and reports each file itself.
    ``name_suffix`` (``--suffix``, or ``_w1920`` for a target size) names an output that is not
    given, instead of ``_xS``. ``reword`` turns a notice's API words into the command's flags
    (``codec="av1"``: ``--codec av1``)."""
    from ..upscaler import Upscaler

    def make_upscaler() -> Upscaler:
        if upscaler is not None:
            return upscaler
        return Upscaler(model, device=device, precision=precision, tile=tile, offline=offline, backend=backend,
                        tta=tta, denoise=denoise, colour_fix=colour_fix)

    to_stdout = output == "-" or (output is None and inputs[0] == "-")
    if to_stdout or output is not None:  # `>> in.gif`: never appended to itself (only a descriptor's output is looked at)
        refuse_writing_input(None if to_stdout else output, None if inputs[0] == "-" else inputs[0])
    names_y4m = output is not None and output.lower().endswith(".y4m")
    y4m_file = inputs[0].lower().endswith(".y4m")
    if fmt is None and ((y4m_file or inputs[0] == "-") and (output is None or names_y4m) or y4m_file and output == "-"):
        # a Y4M file or standard input to a Y4M file is a frame stream: no container or codec involved; a
        # .y4m file to standard output is one too, in its own format as an image's is ("a video cannot be
        # written to standard output" had been said)
        fmt = "y4m"
    pipe = "ffmpeg -i VIDEO -f yuv4mpegpipe - | sr-filter - -o OUT.y4m (or -o - --format y4m)"
    if inputs[0] != "-" and Path(inputs[0]).suffix.lower() in VIDEO_INPUTS - {".y4m"} and (names_y4m or (fmt or "").lower() == "y4m"):
        raise click.UsageError(f"a video file is upscaled into a video file (.mp4, .mkv, ...); for its frames as "
                               f"YUV4MPEG2, decode it with ffmpeg: {pipe}")
    if fmt is not None and fmt.lower() in ("y4m", "png-stream"):
        from . import stream

        if any(size):
            raise click.UsageError("--width/--height need a file; for a frame stream give --scale")
        if quality is not None:
            raise click.UsageError("--quality is for JPEG, WebP and AVIF pictures; a frame stream has none")
        if frames is not None:  # it had been ignored, every frame upscaled without a word
            raise click.UsageError("--frames needs a video file; a frame stream is upscaled whole (cut it where it is "
                                   "made, e.g. ffmpeg -ss START -frames:v COUNT)")
        given = video_only(codec, crf, resume, skip_damaged=skip_damaged)
        if given:  # they had been ignored without a word, as --frames had
            raise click.UsageError(f"{given} to video files; a frame stream is written uncompressed and whole (encode "
                                   f"it where it goes, e.g. sr-filter - -o - --format {fmt.lower()} | ffmpeg -i - -crf 20 out.mp4)")
        _refuse_stream_name(output, fmt.lower())
        if len(inputs) != 1:
            raise click.UsageError(f"--format {fmt.lower()} writes one frame stream from one input ('-' for standard "
                                   "input); images are written as png, jpg, webp, bmp, tiff or gif")

        refuse_closed(reads_stdin=inputs[0] == "-", writes_stdout=output in (None, "-"))  # before the model loads
        upscaler = make_upscaler()
        if output is None and inputs[0] != "-":
            output = str(_target(Path(inputs[0]), None, f"_x{scale:g}" if scale else f"_x{upscaler.scale}"))
        if output not in (None, "-") and _skip(Path(output), skip_existing, overwrite, quiet):
            return
        stream.run_cli(inputs, output, fmt.lower(), upscaler, scale=scale, overwrite=overwrite)
        return
    source = Path(inputs[0])
    label = f"{scale:g}" if scale else None

    def tag() -> str:  # --suffix or a target size: the name images get too (it was _x4 regardless)
        return name_suffix if name_suffix is not None else f"_x{label or upscaler.scale}"

    def settled_before_the_model(suffix: str, animation: bool) -> bool:
        """An output that exists is skipped or refused before the model is fetched, where its name
        does not wait for the model's scale (it had been refused after a download and a conversion)."""
        if upscaler is not None:  # a batch's: loaded already, and the batch checked its outputs
            return False
        from ..models import expected_scale

        named = target is not None and not target.is_dir()  # the name is the user's: no tag in it
        known = "" if named else name_suffix if name_suffix is not None else f"_x{label}" if label else None
        if known is None:
            expected = expected_scale(model)
            known = f"_x{expected}" if expected else None
        return known is not None and _skip(_target(source, target, known, suffix), skip_existing, overwrite, quiet, source,
                                           animation=animation)

    target = Path(output) if output not in (None, "-") else None
    if output not in (None, "-") and output.endswith(("/", os.sep)) and not target.is_dir():
        from ..atomic import make_folder

        make_folder(target)  # -o new_folder/: made as for images, and removed again if nothing is written in it
    if output == "-" and source.suffix.lower() not in VIDEO_INPUTS:  # an animation: its bytes, as an image's
        _animation_to_stdout(source, make_upscaler(), fmt=fmt, scale=scale, size=size, quality=quality, frames=frames, quiet=quiet)
        return
    if output == "-":
        raise click.UsageError("a video cannot be written to standard output; use -o FILE (frame streams in y4m come "
                               "from standard input: ffmpeg -i clip.mp4 -f yuv4mpegpipe - | sr-filter - -o - --format y4m)")
    to_video = target is not None and not target.is_dir() and target.suffix.lower() in VIDEO_SUFFIXES
    if to_video and source.suffix.lower() == ".webp":
        raise VideoFormatError(f"{source}: an animated WebP can be written as .gif, .webp, .png or .avif, not as a video "
                               "(FFmpeg's libraries do not decode animated WebP)")
    if to_video and source.suffix.lower() == ".avif":
        from ..animation import is_animated

        if is_animated(source):  # FFmpeg gives its still picture as the first video stream: 1 frame had been written
            raise VideoFormatError(f"{source}: an animated AVIF can be written as .gif, .webp, .png or .avif, not as a "
                                   "video (FFmpeg reads its still picture first, and the frames only as a second stream)")
    if source.suffix.lower() not in VIDEO_INPUTS and not to_video:  # an animation; GIF/APNG to a video: FFmpeg reads them
        from .. import animation, imageio

        given = video_only(codec, crf, resume, skip_damaged=skip_damaged)
        if given:
            raise click.UsageError(f"{given} to videos; an animation written as GIF, WebP, PNG or AVIF "
                                   "takes --quality and --frames (or name a video output, e.g. -o out.mp4)")
        out_format = imageio.format_for("", fmt) if fmt is not None else None
        if out_format is not None and out_format not in animation.HOLDS_ANIMATION:
            raise VideoFormatError(f"an animation can be written as gif, webp, png or avif, not {fmt}")
        # (--format avif had written the AVIF into NAME_x4.gif, the source's suffix)
        suffix = {"GIF": ".gif", "WEBP": ".webp", "PNG": ".png", "AVIF": ".avif"}.get(out_format or "", source.suffix)
        if settled_before_the_model(suffix, animation=True):
            return
        upscaler = make_upscaler()
        target = _target(source, target, tag(), suffix)
        if _skip(target, skip_existing, overwrite, quiet, source, animation=True):
            return
        _announce(upscaler, quiet or in_batch)
        bar = _Bar(source.name, quiet)  # frames done (an animation had run without a bar: 10 s of silence)
        try:
            animation.upscale_animation(source, target, upscaler, scale=scale, overwrite=overwrite, quality=quality,
                                        size=size, out_format=out_format, frames=frames, progress=bar)
        finally:
            bar.close()
        return
    if quality is not None:  # it had changed nothing without a word
        said = QUALITY_IS_NOT_CRF
        if not in_batch:
            raise click.UsageError(QUALITY_REFUSED)
        if not quiet:
            click.echo(f"sr-filter: warning: {source.name}: {said}, so it changes nothing there", err=True)
    if fmt is not None:  # --format names image formats; a video's container comes from its output name
        given = target is not None and target.suffix.lower() in VIDEO_SUFFIXES  # then --format is the one to drop
        raise click.UsageError(f"--format {fmt} names an image format; {source.name} is written as a video, in the "
                               + (f"container its output name gives ({target.name}): leave out --format" if given else
                                  f"container its output name gives (e.g. -o NAME.mkv; .mp4, .mkv, .webm, .mov, .avi)"))
    if target is not None and not target.is_dir():  # an output name no container has: before the model loads
        from .encode import container_for
        from .job import refuse_stream

        refuse_stream(target)
        container_for(target)
    if any(size):
        from .job import scale_to_fit  # here: importing job imports PyAV, which an image run never needs

        scale = scale_to_fit(source, *size)
    if codec or crf is not None:  # a bad --codec/--crf is refused before the model loads
        from .job import check_codec

        check_codec(source, target if target is not None and not target.is_dir() else source, codec, crf)
    suffix = source.suffix if source.suffix.lower() in VIDEO_SUFFIXES else ".mkv"  # .ts, .flv, ...: written as mkv
    if settled_before_the_model(suffix, animation=False):
        return
    if upscaler is None:  # not a video we can read (a cover picture alone): said before the model loads
        from .source import open_video

        open_video(source).close()
    upscaler = make_upscaler()
    target = _target(source, target, tag(), suffix)
    if _skip(target, skip_existing, overwrite, quiet, source):
        return
    _announce(upscaler, quiet or in_batch)
    from .job import upscale_video

    bar = _Bar(source.name, quiet)
    named = f"{shown_path(source)}: " if in_batch else ""  # which video of a batch a notice is about (its line comes after)
    try:
        summary = upscale_video(source, target, upscaler=upscaler, scale=None if any(size) else scale,
                                width=size[0], height=size[1], codec=codec, crf=crf, frames=frames,
                                resume=resume, overwrite=overwrite, progress=bar,
                                notice=lambda text: None if quiet else click.echo(f"sr-filter: {_named(named, reword(text))}", err=True),  # -q: errors only
                                skip_damaged=skip_damaged)
    except OutputExistsError as exc:
        if isinstance(exc, OutputIsInputError) or not skip_existing or in_batch:  # (a batch says its own "skipped")
            raise
        if not quiet:  # what --resume (--skip-existing) asks: another run finished it meanwhile
            click.echo(f"sr-filter: skipping {shown_path(target)}: another run wrote it meanwhile", err=True)
        return
    except (KeyboardInterrupt, Terminated) as stop:
        from .resume import finished, parts_folder

        parts = parts_folder(target)
        kept = len(finished(parts)) if resume and parts.is_dir() else 0
        if kept:  # said in the one last line (it had been "interrupted" alone); a batch adds its count before it
            stop.batch_progress = (f"; {kept} finished segment(s) are kept in {parts}: run the same command again to continue")
        raise
    finally:
        bar.close()
    if not quiet and not in_batch:
        count, before = summary["frames"], summary.get("resumed_at") or 0
        # the rate of this run's own frames: those of the finished segments it continued after had
        # counted too (a run resumed at frame 96 of 300 said 20 frames/s where it upscaled 13.6)
        rate = (count - before) / summary["seconds"] if summary["seconds"] else 0.0
        kept = f" ({before} from the finished segments)" if before else ""
        speed = f", {rate:.2f} frames/s" if count > before else ""
        click.echo(f"sr-filter: {source} -> {target}: {count} frame{'' if count == 1 else 's'}{kept}, {summary['codec']} "
                   f"{summary['pix_fmt']}{speed}", err=True)


def _refuse_stream_name(output: str | None, fmt: str) -> None:
    """A frame stream under a name that says another format is refused: out.mp4 had held YUV4MPEG2
    without a word. Its own suffix (.y4m; .png, as a one-picture PNG stream is a PNG) and names
    without a known suffix are fine."""
    if output in (None, "-"):
        return
    from .. import imageio

    name, suffix = Path(output).name, Path(output).suffix.lower()
    own, writes = (".y4m", "a YUV4MPEG2 frame stream") if fmt == "y4m" else (".png", "concatenated PNG files")
    if suffix == own:
        return
    if suffix in VIDEO_INPUTS:
        said = "a YUV4MPEG2 frame stream" if suffix == ".y4m" else "a video file"
    elif imageio.suffix_conflict(output, "YUV4MPEG2" if fmt == "y4m" else "PNG"):
        said = f"a {imageio.suffix_format(suffix)} image"
    else:
        return
    pipe = "ffmpeg -i -" if fmt == "y4m" else "ffmpeg -f image2pipe -i -"
    video = name if said == "a video file" else "out.mp4"
    raise click.UsageError(f"{name} names {said}, but --format {fmt} writes {writes}; name it {own}"
                           f"{'' if fmt == 'y4m' else ' or without a suffix'}, or make the video with ffmpeg: "
                           f"sr-filter - -o - --format {fmt} | {pipe} {video}")


def _animation_to_stdout(source: Path, upscaler, *, fmt, scale, size, quality, frames, quiet: bool) -> None:
    """Every frame of an animated file on standard output, in its own format or ``--format``'s
    (one that holds animation), as ``-o -`` writes an image."""
    from .. import animation, imageio

    refuse_closed(writes_stdout=True)
    if sys.stdout.isatty():
        raise click.UsageError("refusing to write image data to a terminal; redirect standard output or use -o FILE")
    out_format = imageio.format_for("", fmt) if fmt is not None else animation.animated_format(source)
    if out_format not in animation.HOLDS_ANIMATION:
        raise VideoFormatError(f"an animation can be written as gif, webp or png, not {fmt}")
    _, data = animation.upscale_to_bytes(source, upscaler, out_format, scale=scale, size=size, quality=quality,
                                         frames=frames, before_work=lambda: _announce(upscaler, quiet), name=str(source))
    write_all(sys.stdout.buffer, data)
    sys.stdout.buffer.flush()


def _target(source: Path, target: Path | None, tag: str, suffix: str | None = None) -> Path:
    """The output: ``target`` when it names a file, else ``NAME{tag}.EXT`` (``_x4``, ``_w1920``, the
    user's ``--suffix``) beside the source or in the ``target`` folder (``suffix``: the extension
    to write, by default the source's)."""
    name = f"{source.stem}{tag}{source.suffix if suffix is None else suffix}"
    if target is None:
        return source.with_name(name)
    if target.is_dir():
        return target / name
    return target


def _skip(target: Path, skip_existing: bool, overwrite: bool, quiet: bool, source: Path | None = None,
          animation: bool = False) -> bool:
    if is_stream(target):  # a named pipe or device is written through (y4m, an animation's bytes)
        return False
    if source is not None and target.exists() and source.exists() and os.path.samefile(source, target):
        if not animation:  # a video is read while its output is written; an animation is read whole first
            raise OutputIsInputError(f"{target} is the input file, which is read while the output is written; choose another output name")
        if not overwrite:
            raise OutputIsInputError(f"{target} is the input file; use --overwrite to replace it or choose another -o")
        return False
    taken = target.exists() or target.is_symlink()  # a link to nothing is a taken name too (it failed after the work)
    if taken and skip_existing:
        if not quiet:
            click.echo(f"sr-filter: skipping existing output {shown_path(target)}", err=True)  # escaped, as for a picture
        return True
    if taken and not overwrite:
        raise OutputExistsError(f"{target} exists; use --overwrite to replace it, or --skip-existing")
    prepare_target(target, overwrite=True)  # its folders made (as for images), and writable; existence is settled above
    return False


def _announce(upscaler, quiet: bool) -> None:
    if not quiet:
        click.echo(f"sr-filter: using {upscaler.describe()}, licence {upscaler.model.license}", err=True)


def _named(named: str, text: str) -> str:
    """A batch's notice with the video's name in front, unless the line names it already (as a
    picture's warnings are named): "a.mkv: the frame range ends ..., but a.mkv has 6 frames"."""
    return text if named and named[:-2] in text else f"{named}{text}"


class _Bar:
    """tqdm on a terminal: frames done, frames per second and ETA."""

    def __init__(self, label: str, quiet: bool) -> None:
        self.label, self.quiet, self.bar = label, quiet, None

    def __call__(self, done: int, total: int) -> None:
        if self.quiet or not sys.stderr.isatty():
            return
        if self.bar is None:
            from tqdm import tqdm

            from ..progress import terminal_size

            # the terminal's size, as the image bars get it: on one that reports none tqdm hid the bar
            self.bar = tqdm(total=total or None, desc=self.label[:30], unit="frame", file=sys.stderr, leave=False, **terminal_size())
        if total and total != self.bar.total:  # the frames counted in the background, after an estimate (Matroska, AVI)
            self.bar.total = max(total, done)
        elif self.bar.total is not None and done > self.bar.total:  # the count was an estimate
            self.bar.total = done
        self.bar.update(done - self.bar.n)
        if total and done >= total:
            self.bar.refresh()  # the last frame can come within tqdm's redraw interval: show it

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
