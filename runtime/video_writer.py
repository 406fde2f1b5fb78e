"""H.264 MP4 writing that never leaves a half-written file behind."""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


class VideoWriter:
    """Context manager writing RGB uint8 frames (H, W, 3) to an MP4.

    Frames go to a temporary file beside the target, renamed into place only when the
    writer closes cleanly; on an exception (Ctrl+C included) the partial file is removed.
    """

    def __init__(self, path: str | os.PathLike, fps: float, width: int, height: int,
                 crf: int = 18) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() != ".mp4":
            raise ValueError(f"{self.path}: output video must end in .mp4")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.width, self.height = width + width % 2, height + height % 2  # yuv420p needs even sizes
        self._tmp = self.path.with_name(f".{self.path.name}.partial.mp4")
        self._container = av.open(str(self._tmp), mode="w")
        self._stream = self._container.add_stream("libx264", rate=Fraction(round(float(fps) * 1000), 1000))
        self._stream.width, self._stream.height = self.width, self.height
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        self.frames_written = 0

    def write(self, rgb: np.ndarray) -> None:
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"VideoWriter.write wants (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        if rgb.shape[:2] != (self.height, self.width):
            padded = np.zeros((self.height, self.width, 3), np.uint8)
            padded[: rgb.shape[0], : rgb.shape[1]] = rgb[: self.height, : self.width]
            rgb = padded
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._container.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
