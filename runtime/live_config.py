"""Every knob of the live loop in one place (runtime/live_loop.py says how each is used)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LiveConfig:
    fps: float | None = None  # output rate cap; None: as fast as the source delivers frames
    calibration_s: float = 1.0  # the driver's neutral is measured over this much tracking
    hold_s: float = 0.5  # face lost: keep the last expression this long (a hand passing by) ...
    ease_s: float = 1.0  # ... then ease to the avatar's neutral over this long
    recover_s: float = 0.2  # face back after easing began: blend into the tracked face this long
    follow_depth: bool = False  # move the avatar nearer / farther with the driver (runtime/pipeline.py)
    max_frames: int | None = None  # stop after this many frames (None: until the source ends)
    warmup_frames: int = 0  # frames run before timing starts (JIT compilation, first allocations)
    report_after_frames: int = 60  # print the latency report once after this many timed frames (0: never)
    latency_window: int | None = 300  # the report covers the last N frames (None: all)
    overlap: bool | None = None  # render frame t while tracking t+1 in a worker; None: on with CUDA
    stall_notice_s: float = 2.0  # say so when the source has delivered nothing for this long

    def __post_init__(self) -> None:
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        for name in ("calibration_s", "ease_s", "recover_s", "stall_notice_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.hold_s < 0:
            raise ValueError(f"hold_s must be >= 0, got {self.hold_s}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {self.max_frames}")
        if self.warmup_frames < 0 or self.report_after_frames < 0:
            raise ValueError("warmup_frames and report_after_frames must be >= 0")
