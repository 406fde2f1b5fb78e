"""A video file as a frame source (PyAV), optionally paced to emulate a webcam."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from capture.frame import Frame
from capture.pacing import Pacer
from capture.frame_source import FrameSource

FALLBACK_FPS = 30.0  # for streams that state no rate


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


class VideoFileSource(FrameSource):
    """Decodes a video frame by frame as RGB.

    `pace=True` releases each frame at its presentation time (real time from the first read),
    so a file can stand in for a webcam; `loop=True` starts over at the end. A missing file
    raises FileNotFoundError and a file that is not a readable video ValueError, each with a
    one-line message naming the file.
    """

    def __init__(self, path: str | os.PathLike, *, pace: bool = False, loop: bool = False) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self.loop = loop
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such video file")
        self._lock = threading.Lock()  # decoding vs close() from another thread
        self._stop = threading.Event()
        self._container: av.container.InputContainer | None = None
        self._decoded: Iterator[av.VideoFrame] | None = None
        self._open()
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else FALLBACK_FPS
        self.width, self.height = stream.codec_context.width, stream.codec_context.height
        self.frame_count = int(stream.frames or 0)  # as the container states it; 0 when unknown
        if not self.width or not self.height:
            self.close()
            raise ValueError(f"{self.path}: not a video (no frame size)")
        self._pacer = Pacer(self.fps, self._stop) if pace else None
        self._index = 0

    def _open(self) -> None:
        try:
            container = av.open(str(self.path))
        except (av.error.FFmpegError, UnicodeDecodeError) as e:
            raise ValueError(f"{self.path}: not a readable video ({_one_line(e)})") from None
        if not container.streams.video:
            container.close()
            raise ValueError(f"{self.path}: not a video (no video stream)")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        self._container = container
        self._decoded = container.decode(stream)
        self._first_time: float | None = None
        self._in_pass = 0  # frames decoded since the file was (re)opened

    def _next_decoded(self) -> tuple[np.ndarray, float] | None:
        """The next frame's pixels and media time (seconds from the file's first frame)."""
        while True:
            try:
                frame = next(self._decoded)
            except StopIteration:
                if not self.loop or self._in_pass == 0:
                    return None
                self._container.close()
                self._open()
                if self._pacer is not None:
                    self._pacer.restart()
                continue
            except av.error.FFmpegError as e:
                raise ValueError(f"{self.path}: cannot decode frame {self._in_pass} ({_one_line(e)})") from None
            t = float(frame.time) if frame.time is not None else self._in_pass / self.fps
            if self._first_time is None:
                self._first_time = t
            self._in_pass += 1
            return frame.to_ndarray(format="rgb24"), t - self._first_time

    def read(self) -> Frame | None:
        with self._lock:
            if self._stop.is_set():
                return None
            decoded = self._next_decoded()
        if decoded is None:
            return None
        rgb, media_time = decoded
        if self._pacer is not None and not self._pacer.wait(media_time):
            return None
        frame = Frame(rgb, time.perf_counter(), self._index, media_time)
        self._index += 1
        return frame

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._container is not None:
                self._container.close()
                self._container = None
