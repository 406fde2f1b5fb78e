"""A sink writing an MP4 (runtime/video_writer.py), sized by the first frame it receives."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from runtime.sinks.base import Sink, check_rgb
from runtime.video_writer import VideoWriter


class FileSink(Sink):
    """Frames to an H.264 MP4 at `fps`.

    `close()` always finalises the file with the frames written so far, also after Ctrl+C in the
    live loop: nothing recorded is lost. A sink closed before any frame leaves no file.
    """

    def __init__(self, path: str | os.PathLike, fps: float, crf: int = 18) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise ValueError(f"{self.path}: output video must end in .mp4")
        if fps <= 0:
            raise ValueError(f"output frame rate must be positive, got {fps}")
        self.fps, self.crf = fps, crf
        self._writer: VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames_written = 0
        self._closed = False

    def send(self, rgb: np.ndarray) -> None:
        if self._closed:
            raise RuntimeError(f"{self.path}: file sink already closed")
        if self._writer is None:
            rgb = check_rgb(rgb)
            self._size = rgb.shape[1], rgb.shape[0]
            self._writer = VideoWriter(self.path, self.fps, *self._size, crf=self.crf)
        else:
            rgb = check_rgb(rgb, *self._size)
        self._writer.write(rgb)
        self.frames_written += 1

    def close(self) -> None:
        self._closed = True
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        try:
            writer.close()
        except BaseException:
            writer.abort()
            raise
