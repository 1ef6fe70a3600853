"""GIF output: on/off transparency cut at alpha 128, the same rule for a still image and an animation."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from sr_filter import animation
from sr_filter.encode import encode_image


def soft_edges() -> np.ndarray:
    """A 16x24 picture: a shadow (black, alpha 60) on the left, nothing on the right, and a row of
    every alpha step from 0 to 255 at the bottom (faint edges a network leaves around a shape)."""
    rgba = np.zeros((16, 24, 4), np.uint8)
    rgba[:8, :12, 3] = 60
    rgba[8:, :, :3] = (200, 40, 90)
    rgba[8:, :, 3] = np.linspace(0, 255, 24).round().astype(np.uint8)[None, :]
    return rgba


def alpha_of(data: bytes, frame: int = 0) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.seek(frame)
        return np.asarray(image.convert("RGBA"))[..., 3]


def test_a_still_gif_is_transparent_below_alpha_128_like_an_animated_one():
    rgba = soft_edges()
    expected = rgba[..., 3] >= 128
    still = alpha_of(encode_image(rgba, "GIF"))
    assert np.array_equal(still > 0, expected)  # the 24 %-opaque shadow and faint edges are not opaque blocks
    moving = animation.encode_animation(animation.Animation([rgba, rgba[::-1].copy()], [100, 100]), "GIF")
    assert np.array_equal(alpha_of(moving) > 0, still > 0)
    grey = np.dstack([rgba[..., 0], rgba[..., 3]])  # grey + alpha gets the same rule
    assert np.array_equal(alpha_of(encode_image(grey, "GIF")) > 0, expected)
