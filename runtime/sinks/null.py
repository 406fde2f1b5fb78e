"""A sink that discards frames (benchmarks measure the pipeline without an output device)."""
from __future__ import annotations

import numpy as np

from runtime.sinks.base import Sink, check_rgb


class NullSink(Sink):
    def __init__(self) -> None:
        self.frames_sent = 0

    def send(self, rgb: np.ndarray) -> None:
        check_rgb(rgb)
        self.frames_sent += 1

    def close(self) -> None:
        pass
