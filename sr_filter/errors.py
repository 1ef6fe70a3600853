"""Exceptions raised by sr_filter.

Every error a user can cause or fix is a subclass of :class:`SrFilterError`, whose
message says what went wrong and what to do. The CLI prints that message as one line
and exits non-zero; the GIMP plug-in shows it in an error dialog.
"""

from __future__ import annotations


class SrFilterError(Exception):
    """Base class of all errors sr_filter raises on purpose."""

    exit_code = 1


class UnknownModelError(SrFilterError):
    """A preset or model name that the manifest does not know."""


class ManifestError(SrFilterError):
    """weights_manifest.json is malformed or inconsistent."""


class DownloadError(SrFilterError):
    """Weights could not be downloaded (network, server, offline mode)."""


class ChecksumError(DownloadError):
    """A file's sha256 or size differs from the manifest's."""


class WeightsFormatError(SrFilterError):
    """A weights file cannot be read or is not a known architecture."""


class DeviceError(SrFilterError):
    """The requested device or precision is not available."""


class ImageFormatError(SrFilterError):
    """An image cannot be read, decoded or written."""


class ImageTooLargeError(ImageFormatError):
    """The input or the output would not fit in memory."""


class OutputExistsError(SrFilterError):
    """The output file exists and overwriting was not asked for."""


class OutOfMemoryError(SrFilterError):
    """Inference ran out of memory even at the smallest tile size."""


class CancelledError(SrFilterError):
    """The caller's progress callback asked to stop."""

    exit_code = 130


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none): the part of a
    third-party error worth putting into one of our one-line messages."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class CommunityModelError(WeightsFormatError):
    """A model file of an architecture we do not ship that cannot be used (unknown to spandrel,
    another task, other channels, spandrel not installed)."""


class DenoiseError(SrFilterError):
    """A denoise strength out of range, or asked of a model without a weak-denoise pair."""
