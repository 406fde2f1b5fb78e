"""The sink interface: a sink takes RGB uint8 frames (H, W, 3) and is closed once at the end."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from core.errors import UserError


class SinkUnavailable(UserError):
    """A sink cannot work on this machine (no virtual camera device, no display)."""


@runtime_checkable
class Sink(Protocol):
    def send(self, rgb: np.ndarray) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()


def check_rgb(rgb: np.ndarray, width: int | None = None, height: int | None = None) -> np.ndarray:
    """`rgb` as a C-contiguous (H, W, 3) uint8 array, checked against an expected size."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        described = f"{rgb.shape} {rgb.dtype}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise ValueError(f"a sink takes (H, W, 3) uint8 RGB frames, got {described}")
    if (width is not None and rgb.shape[1] != width) or (height is not None and rgb.shape[0] != height):
        raise ValueError(f"frame is {rgb.shape[1]}x{rgb.shape[0]}, this sink was opened for {width}x{height}")
    return np.ascontiguousarray(rgb)
