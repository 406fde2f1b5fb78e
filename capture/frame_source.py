"""The frame-source interface every capture source implements, and the error of a failed capture."""
from __future__ import annotations

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
