"""One captured frame: pixels plus the moment they were captured."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    rgb: np.ndarray  # (H, W, 3) uint8
    timestamp: float  # time.perf_counter() when the frame was captured, seconds
    index: int  # 0, 1, 2, ... in delivery order (keeps counting when a file source loops)
    source_time: float | None = None  # media time within a file, seconds; None for a live device

    def __post_init__(self) -> None:
        if self.rgb.dtype != np.uint8 or self.rgb.ndim != 3 or self.rgb.shape[2] != 3:
            raise ValueError(f"Frame.rgb must be (H, W, 3) uint8, got {self.rgb.shape} {self.rgb.dtype}")

    @property
    def width(self) -> int:
        return self.rgb.shape[1]

    @property
    def height(self) -> int:
        return self.rgb.shape[0]
