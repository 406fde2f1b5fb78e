"""The source video's frame inside an avatar's view, and renders cut to it.

`prepare` crops one square around the head for the whole video; where the square reaches past the
video's frame it holds white padding (avatar.dataset.crop_square): a straight edge fixed in the
image, across the neck of a close-up, the same in every frame and nothing the person looks like.
So a render is cut to the frame the way the frame was: each pixel is the render times the share
of it inside the frame, plus white for the rest. Training and `evaluate` cut with the dataset's
frame; a trained avatar keeps it (`AvatarMetadata.frame`) and the live and offline renderers cut
with it, so the avatar comes out framed as its video was.
"""
from __future__ import annotations

import numpy as np
import torch

Rectangle = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels (pixel i spans [i, i + 1))


def frame_rectangle(crop: tuple[int, int, int], source_size: tuple[int, int], size: int) -> Rectangle:
    """The frame of a video of source_size = (width, height) in pixels of its crop (x0, y0, side)
    resized to size x size."""
    x0, y0, side = crop
    width, height = source_size
    s = size / side
    return (-x0 * s, -y0 * s, (width - x0) * s, (height - y0) * s)


def covers(rect: Rectangle, width: int, height: int) -> bool:
    """Whether `rect` holds every pixel of a width x height image."""
    return rect[0] <= 0 and rect[1] <= 0 and rect[2] >= width and rect[3] >= height


def rectangle_coverage(rect: Rectangle, width: int, height: int) -> np.ndarray:
    """(height, width) float32: the area share of each pixel inside `rect`."""
    x0, y0, x1, y1 = rect
    cols, rows = np.arange(width), np.arange(height)
    wx = np.clip(np.minimum(cols + 1, x1) - np.maximum(cols, x0), 0.0, 1.0)
    wy = np.clip(np.minimum(rows + 1, y1) - np.maximum(rows, y0), 0.0, 1.0)
    return (wy[:, None] * wx[None, :]).astype(np.float32)


def cut_to_frame(image: torch.Tensor, window: torch.Tensor | None, background: float) -> torch.Tensor:
    """`image` as the video shows it: `background` where it lies outside the frame. `window` (a
    rectangle_coverage) must broadcast against `image`; None leaves the image as it is."""
    if window is None:
        return image
    window = window.to(image)
    return image * window + background * (1.0 - window)
