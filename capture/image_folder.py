"""A folder of images, in file-name order, as a frame source."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import cv2

from capture.frame import Frame
from capture.pacing import Pacer
from capture.frame_source import FrameSource

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class ImageFolderSource(FrameSource):
    """Every image in a folder (not its subfolders), sorted by name, at a nominal `fps`.

    Images may differ in size; `width` and `height` are the first image's. `pace` and `loop`
    behave as for a video file. An unreadable image raises ValueError naming it.
    """

    def __init__(self, folder: str | os.PathLike, *, fps: float = 25.0, pace: bool = False,
                 loop: bool = False) -> None:
        self.folder = Path(folder)
        self.name = str(self.folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder}: no such folder")
        if fps <= 0:
            raise ValueError(f"image folder frame rate must be positive, got {fps}")
        self.files = sorted(p for p in self.folder.iterdir()
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise ValueError(f"{self.folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
        self.fps, self.loop = float(fps), loop
        self._stop = threading.Event()
        self._pacer = Pacer(self.fps, self._stop) if pace else None
        self._index = 0
        first = self._load(self.files[0])
        self.height, self.width = first.shape[:2]

    def _load(self, path: Path):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{path}: not a readable image")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def read(self) -> Frame | None:
        if self._stop.is_set():
            return None
        position = self._index % len(self.files)
        if self._index >= len(self.files):
            if not self.loop:
                return None
            if position == 0 and self._pacer is not None:
                self._pacer.restart()
        rgb = self._load(self.files[position])
        media_time = position / self.fps
        if self._pacer is not None and not self._pacer.wait(media_time):
            return None
        frame = Frame(rgb, time.perf_counter(), self._index, media_time)
        self._index += 1
        return frame

    def close(self) -> None:
        self._stop.set()
