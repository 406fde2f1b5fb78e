"""A source of plain frames at a fixed rate, for drivers that need a clock but no camera (the
procedural driver of `splatcam demo`). Frames carry media time like a video file's."""
from __future__ import annotations

import threading
import time

import numpy as np

from capture.frame import Frame
from capture.frame_source import FrameSource
from capture.pacing import Pacer


class SyntheticSource(FrameSource):
    """`count` frames of one grey `width` x `height` image at `fps`; paced in real time if `pace`."""

    def __init__(self, width: int = 320, height: int = 240, fps: float = 25.0, count: int | None = None,
                 pace: bool = True, level: int = 40) -> None:
        if width <= 0 or height <= 0 or fps <= 0:
            raise ValueError(f"synthetic source needs a positive size and rate, got {width}x{height} at {fps}")
        self.name = "procedural"
        self.width, self.height, self.fps, self.count = width, height, float(fps), count
        self._image = np.full((height, width, 3), level, np.uint8)
        self._index = 0
        self._closed = threading.Event()
        self._pacer = Pacer(fps, self._closed) if pace else None

    def read(self) -> Frame | None:
        if self._closed.is_set() or (self.count is not None and self._index >= self.count):
            return None
        i = self._index
        if self._pacer is not None and not self._pacer.wait(i / self.fps):
            return None
        self._index += 1
        return Frame(self._image.copy(), time.perf_counter(), i, source_time=i / self.fps)

    def close(self) -> None:
        self._closed.set()
