"""Releasing recorded frames at their media time, the way a camera delivers them."""
from __future__ import annotations

import threading
import time
from typing import Callable


class Pacer:
    """Waits until each frame is due: wall time advances with media time from the first frame.

    A reader that falls more than a frame period behind is re-anchored to now instead of being
    handed a burst of overdue frames; a camera never catches up either. `stop` interrupts a wait.
    """

    def __init__(self, fps: float, stop: threading.Event,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.period = 1.0 / fps
        self._stop = stop
        self._clock = clock
        self._wall0: float | None = None
        self._media0: float | None = None
        self._last_due: float | None = None

    def wait(self, media_time: float) -> bool:
        """Block until the frame at `media_time` is due; False if stopped meanwhile."""
        now = self._clock()
        if self._media0 is None:
            self._wall0 = now if self._last_due is None else self._last_due + self.period
            self._media0 = media_time
        due = self._wall0 + (media_time - self._media0)
        if now > due + self.period:
            self._wall0 += now - due
            due = now
        self._last_due = due
        if due > now:
            return not self._stop.wait(due - now)
        return not self._stop.is_set()

    def restart(self) -> None:
        """Media time starts over (a looped file): the next frame is due one period after the last."""
        self._media0 = None
