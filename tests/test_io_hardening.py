"""Hostile and unusual image files, conversion rules and platform facts at the I/O layer.

Every case here was a traceback, a wrong result or a stray stderr line before its fix; each test
builds its own small file (or substitutes the platform fact) and checks the real code path.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from sr_filter import convert
from sr_filter.tiling import ArraySink


def test_one_rounding_rule_for_tiles_and_whole_images():
    """Tile rows and whole arrays round float -> integer the same way; NaN is 0 without a warning."""
    values = torch.tensor([0.0, 0.5 / 255, 1.5 / 255, 0.2, 0.9999, 1.7, -0.3, float("nan")]).reshape(1, 1, 1, 8)
    for dtype in (np.uint8, np.uint16):
        array = np.full((1, 8), 7, dtype=dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy's "invalid value encountered in cast" would fail here
            ArraySink(array).write(0, values)
        expected = convert.from_float(values[0, 0].numpy(), dtype)
        assert np.array_equal(array, expected), (array, expected)
        assert array[0, -1] == 0 and array[0, 5] == np.iinfo(dtype).max and array[0, 6] == 0
