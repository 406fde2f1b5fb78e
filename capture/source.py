"""`open_source`: a user's spec turned into a frame source (capture/frame_source.py).

A spec is a webcam (an int, "3" or "webcam:3"), a video file, or a folder of images.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from capture.frame_source import FrameSource
from capture.image_folder import ImageFolderSource
from capture.video_file import VideoFileSource
from capture.webcam import WebcamSource


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
        return WebcamSource(index, width=options.width, height=options.height, fps=options.fps)
    path = Path(spec)
    if path.is_dir():
        return ImageFolderSource(path, fps=options.fps or 25.0, pace=options.pace, loop=options.loop)
    return VideoFileSource(path, pace=options.pace, loop=options.loop)
