"""A capture thread that always holds only the newest frame.

Live processing must work on the most recent picture, never on a backlog: the thread reads the
source as fast as it delivers and keeps one slot. A frame replaced before anyone took it is
dropped and counted, so memory stays constant however slow the consumer is.
"""
from __future__ import annotations

import threading
import time

from capture.frame import Frame
from capture.frame_source import CaptureError, FrameSource


class LatestFrameGrabber:
    """Runs `source.read()` in a daemon thread; `get()` hands out the newest unseen frame.

    The grabber owns the source: `stop()` closes it (which interrupts a blocking read) and joins
    the thread. An exception in the thread is raised to the consumer by `get()` as CaptureError.
    """

    def __init__(self, source: FrameSource, join_timeout_s: float = 5.0) -> None:
        self.source = source
        self.join_timeout_s = join_timeout_s
        self._cond = threading.Condition()
        self._latest: Frame | None = None  # the newest frame, until a consumer takes it
        self._ended = False
        self._error: BaseException | None = None
        self.captured = 0  # frames read from the source
        self.delivered = 0  # frames handed out by get()
        self.dropped = 0  # frames replaced by a newer one before anyone took them
        self._thread = threading.Thread(target=self._run, name=f"capture:{source.name}", daemon=True)

    def start(self) -> "LatestFrameGrabber":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while (frame := self.source.read()) is not None:
                with self._cond:
                    self.captured += 1
                    if self._latest is not None:
                        self.dropped += 1
                    self._latest = frame
                    self._cond.notify_all()
        except BaseException as e:  # noqa: BLE001 - every failure must reach the consumer
            with self._cond:
                self._error = e
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    @property
    def ended(self) -> bool:
        """True once the source has ended (or failed) and its last frame was taken."""
        with self._cond:
            return self._ended and self._latest is None

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not handed out before; waits up to `timeout` seconds (None: forever).

        Returns None on timeout or once the source has ended (`ended` tells which).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._error is not None:
                    raise CaptureError(f"capture from {self.source.name} failed: "
                                       f"{type(self._error).__name__}: {self._error}") from self._error
                if self._latest is not None:
                    frame, self._latest = self._latest, None
                    self.delivered += 1
                    return frame
                if self._ended:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def stop(self) -> None:
        """Close the source and join the thread (idempotent)."""
        self.source.close()
        if self._thread.is_alive():
            self._thread.join(self.join_timeout_s)
            if self._thread.is_alive():
                raise CaptureError(f"capture thread for {self.source.name} did not stop within "
                                   f"{self.join_timeout_s:g} s")

    def __enter__(self) -> "LatestFrameGrabber":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()
