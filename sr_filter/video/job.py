"""``upscale_video``: one video file in, its upscaled copy out, written atomically."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import av

from ..atomic import is_stream, new_folders, open_atomic, prepare_target, replacing
from ..errors import (OVERWRITE_ADVICE, ImageFormatError, OutputExistsError, OutputIsInputError, VideoDamagedError,
                      VideoEndsEarlyError, VideoFormatError, first_line)
from ..frames import parse_range
from ..liblogs import told
from ..progress import cancels
from ..sizing import scaled_length, target_scale
from . import batches, encode, pipeline, source
from .encode import even_dimension as _even

log = logging.getLogger("sr_filter")

#: called with (frames done, frames expected or 0 when unknown); returning False stops the job
VideoProgress = Callable[[int, int], Any]


@new_folders()  # folders made for an output that is never written are removed
def upscale_video(
    src: str | Path,
    dst: str | Path,
    preset: str | None = None,
    *,
    model: str | os.PathLike | None = None,
    upscaler: Any = None,
    scale: float | None = None,
    width: int | None = None,
    height: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    backend: str = "auto",
    tile: int | str = "auto",
    offline: bool | None = None,
    tta: bool = False,
    denoise: float | None = None,
    colour_fix: bool | None = None,
    batch: int | None = None,
    codec: str | None = None,
    crf: int | None = None,
    frames: str | tuple[int, int | None] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: VideoProgress | None = None,
    notice: Callable[[str], None] | None = None,
    skip_damaged: bool = False,
) -> dict:
    """Upscale every frame of ``src`` into ``dst`` (container from its suffix), keeping timestamps,
    colour tags, rotation and aspect ratio, and copying audio/subtitle/attachment streams.

    ``preset`` (photo, cartoon, face) or ``model`` (a manifest name or weights file; it wins over
    ``preset``) picks the network, as in :func:`sr_filter.upscale_file` (or pass a ready ``upscaler``; ``tta``, ``denoise`` and ``colour_fix`` are
    :class:`~sr_filter.upscaler.Upscaler`'s); ``width``/``height`` pick the scale that fits the
    picture, as players show it, inside them instead of ``scale``; ``batch`` is the number of frames that go through
    the network together (default :data:`~sr_filter.video.batches.FRAME_BATCH`); ``codec`` one of
    :data:`~sr_filter.video.encode.CODECS`; ``crf`` the encoder's quality number; ``frames`` a
    ``"START:END"`` range or a ``(start, end)`` pair. ``progress(frames_done, frames_expected)`` is
    called after each frame, on the thread that encodes (not the caller's: a GUI must hand it to its
    own thread); returning False cancels (as for images). ``resume`` writes finished keyframe-aligned segments beside ``dst``
    and, when run again after an interruption, continues after the last one. Streams the output container cannot hold are reported through
    ``notice`` (default: the log), as are text subtitles converted to a codec it holds (SubRip into .mp4 as mov_text), before
    the upscale, and every other warning of the job (loading the model included); like ``progress``, ``notice`` may be called
    on the job's decoding or encoding thread. ``skip_damaged`` leaves out a packet the decoder cannot read, as a
    player shows the rest, and says so; without it a damaged packet is an error. Returns a summary:
    frames written, seconds, dropped and converted streams. ``src`` and ``dst`` may start with ``~``,
    the home folder.
    """
    from ..upscaler import check_callback, check_dst_file, check_flag, check_path, given_or_loaded

    from ..sizing import check_size_request

    given = dst
    src, dst = check_path("src", src), check_path("dst", dst)
    check_dst_file(given, src, overwrite=True)  # a folder is said to be one (the input itself is refused below)
    width, height = check_size_request(scale, width, height)
    overwrite, resume = check_flag("overwrite", overwrite), check_flag("resume", resume)
    skip_damaged = check_flag("skip_damaged", skip_damaged)
    check_callback("progress", progress)
    check_callback("notice", notice)
    loading = dict(device=device, precision=precision, tile=tile, offline=offline, backend=backend, tta=tta, denoise=denoise,
                   colour_fix=colour_fix)
    name = model if model is not None else preset
    if upscaler is not None:  # checked before any work; a model or a loading setting beside it had been ignored
        upscaler = given_or_loaded(upscaler, name, **loading)
    refuse_stream(dst)
    muxer = encode.container_for(dst)
    start, end = parse_range(frames)
    batch = batches.check_batch(batch)
    if resume and (start or end is not None):
        raise VideoFormatError("resuming works on whole videos; leave out the frame range")
    if dst.exists() and src.exists() and os.path.samefile(src, dst):  # before "exists": overwriting would not help
        raise OutputIsInputError(f"{dst} is the input file, which is read while the output is written; choose another output name")
    if dst.exists() and not overwrite:
        raise OutputExistsError(f"{dst} exists; {OVERWRITE_ADVICE}")
    try:
        prepare_target(dst, overwrite=True)  # missing folders made, as for pictures; existence is settled above
    except ImageFormatError as exc:  # (a video's errors are VideoFormatErrors, as before it made folders)
        raise exc if isinstance(exc, VideoFormatError) else VideoFormatError(str(exc)) from None
    container = source.open_video(src)
    with told(notice):  # what loading and running the model warn of comes through the same callback
        try:
            return _upscale(container, src, dst, muxer, name, upscaler, loading, codec=codec, crf=crf, scale=scale,
                            width=width, height=height, start=start, end=end, batch=batch, resume=resume,
                            overwrite=overwrite, progress=progress, notice=notice or log.warning,
                            skip_damaged=skip_damaged)
        finally:
            container.close()


def _upscale(container, src: Path, dst: Path, muxer: str, name, upscaler, loading: dict, *, codec, crf, scale, width,
             height, start, end, batch, resume, overwrite, progress, notice, skip_damaged) -> dict:
    """:func:`upscale_video` once its arguments are checked and ``container`` is open."""
    from ..upscaler import given_or_loaded

    family = encode.choose_codec(codec, source.codec_name(container), muxer)
    ignored = encode.check_crf(family, crf)
    if ignored:
        notice(ignored)
    if upscaler is None:
        upscaler = given_or_loaded(None, name, **loading)
    asked = rotation = None  # the scale that fits width/height exactly, as a picture would be sized
    keeps_sar = encode.keeps_sar(muxer, encode.ENCODERS[family][0])
    if width or height:  # the picture as players show it fits inside them, on even sizes
        scale, asked, rotation = _fitting(src, width, height, keeps_sar=keeps_sar)
    factor = upscaler.check_scale(scale)
    info = source.describe(container, str(src), scale=factor)
    encode.settle_alpha(info, family, muxer)
    info.steady = encode.steady_time_base(src, muxer, notice)
    for line in encode.notices(info, family, muxer):
        notice(line)
    width, height = _even(info.width * factor), _even(info.height * factor)
    rounded = size_notice(info, factor, keeps_sar, lambda: _first_look(src)[2] if rotation is None else rotation, asked)
    if rounded:
        notice(rounded)
    if resume:
        return _write_resumable(container, src, dst, muxer, family, info, upscaler, scale, (width, height),
                                crf=crf, batch=batch, overwrite=overwrite, progress=progress, notice=notice,
                                skip_damaged=skip_damaged)
    summary = _write(container, src, dst, muxer, family, info, upscaler, scale, (width, height),
                     crf=crf, batch=batch, start=start, end=end, overwrite=overwrite, progress=progress,
                     notice=notice, skip_damaged=skip_damaged)
    if not start and end is None:  # a whole run only: a range is no reason to drop a resumable job's work
        _drop_stale_parts(dst, notice)
    return summary


def size_notice(info: source.VideoInfo, factor: float, keeps_sar: bool, rotation: Callable[[], int],
                asked: float | None = None) -> str | None:
    """The notice for an output size rounded to the even sizes encoders take (None: not rounded),
    as players show the picture: a turned clip's sizes had come stored, and a non-square sample
    aspect ratio (where the output keeps it) widens it. ``rotation`` gives the display rotation
    when it is needed; ``asked``: the exact scale a width or height asked for."""
    width, height = _even(info.width * factor), _even(info.height * factor)
    stretch = info.pixel_aspect if keeps_sar else Fraction(1)
    written = (round(width * stretch), height)
    exact = (scaled_length(info.width * stretch, asked or factor), scaled_length(info.height, asked or factor))
    if written == exact:
        return None
    # it had been rounded without a word (63x47 at x3: 188x140; --width 101: 100 wide)
    shown = (written[::-1], exact[::-1]) if rotation() % 180 != 0 else (written, exact)
    return f"the video is written {shown[0][0]}x{shown[0][1]}, not {shown[1][0]}x{shown[1][1]}: video encoders take even picture sizes"


def check_codec(src: str | Path, dst: str | Path, codec: str | None, crf: int | None, *,
                unreadable_ok: bool = False) -> str | None:
    """The encoder family ``upscale_video`` will use, refusing a codec the output container cannot
    hold or a quality number its encoder does not take, before a model is loaded. With
    ``unreadable_ok`` (a batch, where a damaged file fails alone later), None for a source that
    cannot be opened."""
    muxer = encode.container_for(dst)
    try:
        container = source.open_video(src)
    except VideoFormatError:
        if unreadable_ok:
            return None
        raise
    try:
        family = encode.choose_codec(codec, source.codec_name(container), muxer)
    finally:
        container.close()
    encode.check_crf(family, crf)
    return family


def _write(container, src: Path, dst: Path, muxer: str, family: str, info: source.VideoInfo, upscaler, scale,
           size: tuple[int, int], *, crf, batch, start, end, overwrite, progress, notice, skip_damaged=False) -> dict:
    expected = source.FrameTotal(src, container, info, start, end)
    cut = end is not None and (container.chapters() or container.streams.subtitles)  # another pass over the packets
    state = {"frames": 0, "output": None, "shift": None, "held": [],  # chapters and subtitles are cut where a range ends
             "until": source.frame_time(src, end) if cut else None}
    started = time.monotonic()

    def produce() -> Iterator[list[Any]]:
        items = source.items(container, str(src), info, start=start, end=end, copy=encode.copyable(container),
                             skip_damaged=skip_damaged, notice=notice)
        return batches.chunks(items, batch)

    def work(chunk: list[Any]) -> list[Any]:
        return batches.upscale_chunk(chunk, upscaler, scale, lambda array: batches.fit(array, size))

    def consume(results: Iterable[list[Any]]) -> None:
        for item in batches.flatten(results):
            if isinstance(item, source.Frame):
                _encode_frame(item, state, tmp, muxer, family, info, container, size, crf, notice)
                state["frames"] += 1
                if progress is not None and cancels(progress(state["frames"], expected())):
                    from ..errors import CancelledError

                    raise CancelledError("stopped by the progress callback; nothing was written")
            elif state["output"] is None:
                state["held"].append(item)
            else:
                state["output"].write_packet(item, state["shift"])
        if state["output"] is None:
            raise VideoFormatError(f"{src} contains no video frames")
        state["output"].finish()

    with written(dst, overwrite) as path:
        tmp = str(path)
        try:
            pipeline.run(produce(), work, consume, depth=batches.queue_depth(batch))
        finally:
            expected.stop()
            if state["output"] is not None:
                state["output"].abandon()
    return {"frames": state["frames"], "seconds": time.monotonic() - started, "codec": family,
            "pix_fmt": state["output"].pix_fmt, "dropped": state["output"].dropped,
            "converted": state["output"].converted, "path": str(dst)}


def refuse_stream(dst: Path) -> None:
    """A video goes to a regular file: its container is finished by seeking back. A named pipe had
    been replaced by a file under --overwrite, and /dev/null was an "unknown video container"."""
    if is_stream(dst):
        raise VideoFormatError(f"{dst} is a pipe, device or open descriptor; a video is written to a file (its container "
                               "is finished by seeking back): name a file, or send frames down a pipe with --format y4m")


def _drop_stale_parts(dst: Path, notice) -> None:
    """An earlier --resume run of this output, stopped and not resumed, left its segments in a
    hidden folder (gigabytes for a long video) that nothing removed: ``dst`` is complete now."""
    from . import resume

    parts = resume.parts_folder(dst)
    try:
        stale = parts.is_dir() and (parts / "job.json").exists()
    except OSError:  # the output is written; tidying must not turn it into a failure
        return
    if stale:
        shutil.rmtree(parts, ignore_errors=True)
        notice(f"removed {parts}, the segments of an earlier run with resume=True of {dst.name}, now written whole")


def _write_resumable(container, src: Path, dst: Path, muxer: str, family: str, info, upscaler, scale, size, *,
                     crf, batch, overwrite, progress, notice, skip_damaged=False) -> dict:
    from . import resume

    with _sole_writer(resume.parts_folder(dst), dst, overwrite):
        return _write_segments(container, src, dst, muxer, family, info, upscaler, scale, size, crf=crf, batch=batch,
                               overwrite=overwrite, progress=progress, notice=notice, skip_damaged=skip_damaged)


@contextmanager
def _sole_writer(parts: Path, dst: Path, overwrite: bool) -> Iterator[None]:
    """One resumable run per output at a time: a second one, started while the first ran, had
    shared its segments folder and failed when the first removed it, saying the segments were
    kept there for a rerun."""
    from ..cachelock import CacheLock, LockTimeout

    lock = CacheLock(parts, timeout=0)
    try:
        lock.acquire()
    except LockTimeout:
        holder = lock.holder()
        raise VideoFormatError(f"another sr-filter run{f' (process {holder})' if holder else ''} is writing {dst.name} "
                               "from its segments now; wait for it to finish, or choose another output") from None
    except OSError:  # a folder that takes no lock file takes no segments either: said when they are written
        lock = None
    try:
        if dst.exists() and not overwrite:  # a run that held the lock finished it meanwhile: not encoded again
            raise OutputExistsError(f"{dst} was written by another run meanwhile; {OVERWRITE_ADVICE}")
        yield
    finally:
        if lock is not None:
            lock.release()


def _write_segments(container, src: Path, dst: Path, muxer: str, family: str, info, upscaler, scale, size, *,
                    crf, batch, overwrite, progress, notice, skip_damaged) -> dict:
    from . import resume

    started = time.monotonic()
    try:
        with written(dst, overwrite) as tmp:
            summary = resume.run(container, src, dst, str(tmp), muxer, family, info, upscaler, scale, size,
                                 crf=crf, batch=batch, progress=progress, notice=notice, skip_damaged=skip_damaged)
    except (VideoEndsEarlyError, VideoDamagedError) as exc:
        # the file itself stops the run: the advised frame range was refused beside resuming, and
        # where skipping cannot help every rerun stopped at the same frame, its segments kept "for a
        # rerun" that could not use them
        if exc.lasting and not exc.skippable:
            shutil.rmtree(resume.parts_folder(dst), ignore_errors=True)
            raise exc.resumed() from None
        _say_kept(exc.resumed(), resume.parts_folder(dst))
    except VideoFormatError as exc:  # say where the finished segments wait: they had stayed without a word
        _say_kept(exc, resume.parts_folder(dst))
    shutil.rmtree(summary.pop("parts"), ignore_errors=True)
    summary.update(seconds=time.monotonic() - started, path=str(dst))
    return summary


def _say_kept(exc: VideoFormatError, parts: Path) -> NoReturn:
    """Raise ``exc`` saying where the finished segments wait for a rerun (they had stayed without
    a word); with none, the folder is removed."""
    from . import resume

    kept = len(resume.finished(parts)) if parts.is_dir() else 0
    if not kept:
        shutil.rmtree(parts, ignore_errors=True)
        raise exc from None
    raise VideoFormatError(f"{exc}; {kept} finished segment(s) are kept in {parts} for a rerun "
                           "(delete that folder to start over)") from None


def _encode_frame(item: source.Frame, state: dict, tmp: str, muxer: str, family: str, info: source.VideoInfo,
                  container, size: tuple[int, int], crf, notice) -> None:
    if state["output"] is None:
        state["output"] = encode.Output(tmp, muxer, family, info, container, width=size[0], height=size[1],
                                        crf=crf, copy=encode.copyable(container), notice=notice)
        state["first"] = item.index
        if item.pts is not None and item.index > 0:  # a frame range: it starts at zero, with the copied streams
            state["shift"] = Fraction(item.pts * item.time_base)
        else:  # a constant-rate output starts its video at zero: the copied streams move with it
            state["shift"] = source.start_time(container) if info.steady else Fraction(0)
        state["output"].keep_chapters(state["shift"], state["until"])
        encode.say_changes(state["output"].dropped, state["output"].converted, notice)
        for packet in state["held"]:
            state["output"].write_packet(packet, state["shift"])
        state["held"].clear()
    state["output"].add(item, first=state["first"], shift=state["shift"])


def written(dst: Path, overwrite: bool) -> AbstractContextManager[Path]:
    """A temporary ``.part`` file beside ``dst`` that becomes ``dst`` when the block succeeds
    (:func:`sr_filter.atomic.replacing`); FFmpeg's and the system's errors are one-line
    VideoFormatErrors, and nothing is left behind on any error or interrupt."""
    return replacing(dst, overwrite=overwrite, error=VideoFormatError, suffix=".part", failures=(av.error.FFmpegError, OSError))


def atomic_file(dst: Path, overwrite: bool = False) -> AbstractContextManager[BinaryIO]:
    """A binary file that appears as ``dst`` only when the block finishes without an error; a device
    or FIFO is written through (:func:`sr_filter.atomic.open_atomic`, errors as VideoFormatError)."""
    return open_atomic(dst, overwrite=overwrite, error=VideoFormatError)


def scale_to_fit(path: Path, width: int | None, height: int | None, *, keeps_sar: bool = True) -> float:
    """The scale that makes a video's picture, as players show it (its samples widened by a
    non-square sample aspect ratio where the output keeps that, then turned by the rotation),
    ``width`` wide or ``height`` high (both: fit inside both), on the even sizes encoders take."""
    return _fitting(path, width, height, keeps_sar=keeps_sar)[0]


def _first_look(path: Path) -> tuple[int, int, int, Fraction]:
    """(width, height, display rotation, sample aspect ratio) of a video's frames: the rotation
    comes with the frames."""
    container = source.open_video(path)
    try:
        info = source.describe(container, str(path), scale=1.0)
        first = source.first_frame(container)
        return info.width, info.height, source.rotation(first), info.pixel_aspect
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoFormatError(f"{path}: cannot read the first frame ({first_line(exc)})") from None
    finally:
        container.close()


def _fitting(path: Path, width: int | None, height: int | None, *, keeps_sar: bool = True) -> tuple[float, float, int]:
    """:func:`scale_to_fit`'s scale, the one that fits exactly (as a picture is sized), and the
    display rotation they were worked out with."""
    stored_w, stored_h, rotation, sar = _first_look(path)
    # (stored side, how much wider players show it) across and down the picture as shown: a DVD's
    # 720x480 at 32:27 shows 853 wide, and --width 1920 had made it show 2276 wide
    stretch = sar if keeps_sar else Fraction(1)
    across, down = ((stored_w, stretch), (stored_h, Fraction(1)))[:: -1 if rotation % 180 else 1]
    shown = [side * factor for side, factor in (across, down)]
    shown = [int(length) if length.denominator == 1 else round(float(length), 2) for length in shown]
    scale = exact = target_scale(width, height, (shown[1], shown[0]), str(path))
    # inside what was asked, where encoders need even sizes: an odd bound gives the even size below
    # it (75 high had become 76 with both given; --width 1001 alone had given 1002)
    for bound, (side, factor) in ((width, across), (height, down)):
        if bound and _even(side * scale) * factor > bound:
            scale = min(scale, max(2, int(bound / factor) // 2 * 2) / side)  # frames are at least 2 px: --width 1 gives 2
    return scale, exact, rotation
