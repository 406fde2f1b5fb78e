"""The frame-source interface and `open_source`, which turns a user's spec into a source.

A spec is a webcam (an int, "3" or "webcam:3"), a video file, or a folder of images.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol, runtime_checkable

from capture.frame import Frame


class CaptureError(RuntimeError):
    """Capture failed while running (a device gone for good, a capture thread that crashed)."""


@runtime_checkable
class FrameSource(Protocol):
    """Anything that hands out frames one by one.

    `read()` returns the next Frame, or None once the source has ended or was closed.
    `close()` may be called from another thread while `read()` blocks (the capture thread does
    this); it must make that `read()` return None promptly.
    """

    name: str
    fps: float  # nominal frame rate
    width: int  # nominal frame size
    height: int

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame


@dataclass(frozen=True)
class SourceOptions:
    pace: bool = False  # files and folders: deliver at their frame rate, like a camera
    loop: bool = False  # files and folders: start over at the end
    width: int | None = None  # webcam: requested capture size and rate (the device may differ)
    height: int | None = None
    fps: float | None = None  # webcam: requested rate; image folder: its frame rate (default 25)


def webcam_index(spec: int | str) -> int | None:
    """The device index a spec names, or None when it names a file or folder."""
    if isinstance(spec, int):
        return spec
    text = str(spec)
    if text.startswith("webcam:"):
        number = text[len("webcam:"):]
        if not number.isdigit():
            raise ValueError(f"{text!r}: a webcam is written webcam:N with N a device number, e.g. webcam:0")
        return int(number)
    if text.isdigit() and not os.path.exists(text):
        return int(text)
    return None


def open_source(spec: int | str | os.PathLike, options: SourceOptions = SourceOptions()) -> FrameSource:
    """A webcam, a video file or an image folder, chosen by what `spec` names."""
    index = webcam_index(spec) if not isinstance(spec, os.PathLike) else None
    if index is not None:
        from capture.webcam import WebcamSource
        return WebcamSource(index, width=options.width, height=options.height, fps=options.fps)
    path = Path(spec)
    if path.is_dir():
        from capture.image_folder import ImageFolderSource
        return ImageFolderSource(path, fps=options.fps or 25.0, pace=options.pace, loop=options.loop)
    from capture.video_file import VideoFileSource
    return VideoFileSource(path, pace=options.pace, loop=options.loop)
