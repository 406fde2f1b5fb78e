"""A video file for the tracker: capture's VideoFileSource, optionally narrowed and resized.

The tracker reads files through `capture.video_file.VideoFileSource` (RGB frames with their media
time). This adds what tracking and its benchmark need on top: a run of frames (`clip`, e.g. the
acceptance test's two-second windows) and a fixed output size (`resized`, e.g. to benchmark at
webcam size). Frames keep the source's `index` (position in the file) and `source_time`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import cv2

from capture.frame import Frame
from capture.video_file import VideoFileSource


@dataclass(frozen=True)
class VideoFrames:
    path: Path
    fps: float
    width: int  # of the frames yielded (after any resize)
    height: int
    frame_count: int  # frames that will be yielded, as far as the container says (0 if unknown)
    start: int = 0
    stop: int | None = None
    resize: bool = False

    def clip(self, start: int, count: int) -> "VideoFrames":
        """Only frames start .. start + count - 1 (of this reader's frames)."""
        available = self.frame_count - start if self.frame_count else count
        return replace(self, start=self.start + start, stop=self.start + start + count,
                       frame_count=max(0, min(count, available)))

    def resized(self, width: int, height: int) -> "VideoFrames":
        return replace(self, width=width, height=height, resize=True)

    def frames(self) -> Iterator[Frame]:
        with VideoFileSource(self.path) as source:
            for frame in source:
                if frame.index < self.start:
                    continue
                if self.stop is not None and frame.index >= self.stop:
                    break
                if self.resize and (frame.width, frame.height) != (self.width, self.height):
                    rgb = cv2.resize(frame.rgb, (self.width, self.height), interpolation=cv2.INTER_AREA)
                    frame = Frame(rgb, frame.timestamp, frame.index, frame.source_time)
                yield frame


def open_video(path: str | os.PathLike) -> VideoFrames:
    """Open a video; a missing file or a non-video raises with a one-line message naming it."""
    with VideoFileSource(path) as source:
        return VideoFrames(Path(path), source.fps, source.width, source.height, source.frame_count)
