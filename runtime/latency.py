"""Per-stage and end-to-end latency of the live loop, as p50 / p95 / p99.

    recorder = LatencyRecorder(cuda_stages={"generate", "rasterize", "sr"})
    with recorder.frame(frame.timestamp) as timing:   # 'capture' = the frame's age right now
        with timing.stage("track"): ...
        with timing.stage("sink"): sink.send(rgb)
    recorder.dropped = grabber.dropped
    recorder.summary().to_json_dict()

Stages run on the host are timed with time.perf_counter(). Stages named in `cuda_stages` are
timed with a pair of CUDA events on the current stream, which measures the GPU work they
enqueue rather than the (asynchronous) launch time; the events are read once they have
completed (polled without blocking after each frame) or, at the latest, in `summary()`, so
timing adds no synchronisation to the loop. End-to-end latency runs from the capture timestamp
to the end of the frame on the host; sinks take host arrays, so the GPU work is done by then.
"""
from __future__ import annotations

import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

CAPTURE = "capture"
QUANTILES = (50, 95, 99)


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p95: float
    p99: float

    @classmethod
    def of(cls, values: Iterable[float]) -> "Percentiles":
        p50, p95, p99 = np.percentile(np.asarray(list(values), dtype=np.float64), QUANTILES)
        return cls(float(p50), float(p95), float(p99))

    def to_dict(self) -> dict[str, float]:
        return {"p50": self.p50, "p95": self.p95, "p99": self.p99}


@dataclass(frozen=True)
class LatencySummary:
    frames: int
    fps: float  # frames completed per second of wall time, first frame start to last frame end
    dropped: int  # frames the capture thread replaced before the loop took them
    end_to_end_ms: Percentiles
    stages_ms: dict[str, Percentiles]  # in the order the stages first ran

    def to_json_dict(self) -> dict:
        """One backend's entry of the `splatcam bench` JSON (DESIGN.md), plus frames and dropped."""
        return {"fps": self.fps, "end_to_end_ms": self.end_to_end_ms.to_dict(),
                "stages_ms": {name: p.to_dict() for name, p in self.stages_ms.items()},
                "frames": self.frames, "dropped": self.dropped}


@dataclass
class _FrameRecord:
    start: float  # host clock when the loop took the frame
    end: float = 0.0
    end_to_end: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)  # host-timed and resolved GPU stages
    events: list[tuple[str, object, object]] = field(default_factory=list)  # (stage, start, end) pending

    def add(self, stage: str, seconds: float) -> None:
        # A stage that runs twice in a frame (two sinks) counts once, with the total time.
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def resolve(self, block: bool) -> bool:
        """Read the frame's CUDA events into `seconds`; False if some have not completed."""
        while self.events:
            stage, start, end = self.events[0]
            if not block and not end.query():
                return False
            end.synchronize()
            self.add(stage, start.elapsed_time(end) / 1000.0)
            self.events.pop(0)
        return True


class FrameTiming:
    """The stage timers of one frame (made by LatencyRecorder.frame)."""

    def __init__(self, record: _FrameRecord, clock: Callable[[], float], cuda_stages: frozenset[str],
                 stage_order: dict[str, None]) -> None:
        self._record, self._clock, self._cuda_stages = record, clock, cuda_stages
        self._stage_order = stage_order

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._stage_order.setdefault(name)
        if name in self._cuda_stages:
            import torch

            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
            self._record.events.append((name, start, end))
        else:
            t0 = self._clock()
            yield
            self._record.add(name, self._clock() - t0)

    def record(self, name: str, seconds: float) -> None:
        """A duration measured elsewhere."""
        self._stage_order.setdefault(name)
        self._record.add(name, seconds)


class LatencyRecorder:
    """Collects per-frame stage times; `window` keeps only the last N frames (None: all)."""

    def __init__(self, cuda_stages: Iterable[str] = (), window: int | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.cuda_stages = frozenset(cuda_stages)
        if self.cuda_stages:
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"CUDA timing asked for stages {sorted(self.cuda_stages)}, "
                                 "but no CUDA device is available")
        if window is not None and window < 1:
            raise ValueError(f"latency window must be at least one frame, got {window}")
        self._clock = clock
        self._frames: deque[_FrameRecord] = deque(maxlen=window)
        self._unresolved: deque[_FrameRecord] = deque()
        self._stage_order: dict[str, None] = {CAPTURE: None}  # stages in the order they first ran
        self.dropped = 0  # set by the loop from its capture thread's count
        self.recorded = 0  # frames timed so far, the window's evicted ones included

    @contextmanager
    def frame(self, capture_timestamp: float) -> Iterator[FrameTiming]:
        """Time one frame. On entry the frame's age is recorded as the 'capture' stage; a frame
        whose body raises is not recorded."""
        record = _FrameRecord(start=self._clock())
        record.add(CAPTURE, record.start - capture_timestamp)
        yield FrameTiming(record, self._clock, self.cuda_stages, self._stage_order)
        record.end = self._clock()
        record.end_to_end = record.end - capture_timestamp
        self._frames.append(record)
        self.recorded += 1
        if record.events:
            self._unresolved.append(record)
        while self._unresolved and self._unresolved[0].resolve(block=False):
            self._unresolved.popleft()

    @property
    def frames(self) -> int:
        return len(self._frames)

    def summary(self, last: int | None = None) -> LatencySummary:
        """Over the frames kept (the window), or only the `last` N of them."""
        if not self._frames:
            raise ValueError("no frames were timed")
        while self._unresolved:
            self._unresolved.popleft().resolve(block=True)
        frames = list(self._frames)
        if last is not None:
            if not 1 <= last <= len(frames):
                raise ValueError(f"asked for the last {last} frames of {len(frames)} kept")
            frames = frames[-last:]
        stages: dict[str, list[float]] = {}
        for record in frames:
            for name, seconds in record.seconds.items():
                stages.setdefault(name, []).append(seconds * 1000.0)
        wall = frames[-1].end - frames[0].start
        return LatencySummary(
            frames=len(frames),
            fps=len(frames) / wall if wall > 0 else float("inf"),
            dropped=self.dropped,
            end_to_end_ms=Percentiles.of(r.end_to_end * 1000.0 for r in frames),
            stages_ms={name: Percentiles.of(stages[name]) for name in self._stage_order if name in stages})
