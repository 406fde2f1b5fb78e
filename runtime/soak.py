"""Resident memory and latency minute by minute over a long live-loop run (`splatcam bench --duration`).

`MinuteLog.tick(loop)` is called after every frame; each time a period (a minute) has passed it
records the process's resident memory (RSS) and the latency percentiles of that period's frames.
`soak_summary` compares the start of the run with its end: RSS growth from the first period to
the last, and the end-to-end p99 (the mean of the periods' p99) over the first and the last
`window` periods (5 minutes, or 1 when the run is shorter than 10 periods). issue 11's targets: growth under 2 %, p99 drift within 10 %.
"""
from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np

PERIOD_S = 60.0
SOAK_WINDOW = 5  # periods at each end compared for p99 drift


def resident_mb() -> float | None:
    """This process's resident set size in MB (Linux /proc), None where that is not available."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


class MinuteLog:
    def __init__(self, period_s: float = PERIOD_S, clock: Callable[[], float] = time.perf_counter,
                 rss: Callable[[], float | None] = resident_mb) -> None:
        self.period_s, self._clock, self._rss = period_s, clock, rss
        self.periods: list[dict] = []
        self._start: float | None = None
        self._frames_at_start = 0

    def tick(self, loop) -> None:
        """After a frame: close the period if it is over. `loop` is a LiveLoop (timed_frames,
        latency_of_last)."""
        timed = loop.timed_frames()
        now = self._clock()
        if timed == 0:
            return
        if self._start is None:
            self._start, self._frames_at_start = now, timed
            return
        if now - self._start < self.period_s:
            return
        frames = timed - self._frames_at_start
        if frames > 0:
            summary = loop.latency_of_last(frames)
            self.periods.append({
                "minute": len(self.periods) + 1, "seconds": round(now - self._start, 2), "frames": frames,
                "fps": frames / (now - self._start), "rss_mb": self._rss(),
                "end_to_end_ms": summary.end_to_end_ms.to_dict(),
            })
        self._start, self._frames_at_start = now, timed


def soak_summary(periods: list[dict], window: int = SOAK_WINDOW) -> dict | None:
    """RSS growth and p99 drift between the start and the end of the run (module docstring)."""
    if len(periods) < 2:
        return None
    window = window if len(periods) >= 2 * window else 1
    first, last = periods[:window], periods[-window:]
    p99_first = float(np.mean([p["end_to_end_ms"]["p99"] for p in first]))
    p99_last = float(np.mean([p["end_to_end_ms"]["p99"] for p in last]))
    out = {"periods": len(periods), "window_periods": window,
           "p99_first_ms": p99_first, "p99_last_ms": p99_last,
           "p99_drift_pct": 100.0 * (p99_last / p99_first - 1.0)}
    rss_first, rss_last = periods[0]["rss_mb"], periods[-1]["rss_mb"]
    if rss_first is not None and rss_last is not None:
        out.update(rss_first_mb=rss_first, rss_last_mb=rss_last,
                   rss_growth_pct=100.0 * (rss_last / rss_first - 1.0))
    return out
