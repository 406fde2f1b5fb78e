"""A built-in driving signal for when there is no webcam and no driver video.

A scripted performance, in seconds: a neutral start (the live loop calibrates the driver's neutral
on the first second, so it must be at rest), then a smile, two blinks, a wide jaw opening, a
pucker, a look to each side and a head turn and nod. Each gesture rises and falls with a
smoothstep so the avatar moves like a person, not a switch. `ProceduralTracker` hands these
frames to the live loop in place of a LiveTracker: it ignores the pixels it is given and reads
the script at the frame's timestamp.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracking.driving_frame import DrivingFrame
from tracking.params import N_EXPRESSION, expression_index
from tracking.tracker import FrameResult

# Where the scripted head sits: facing the camera, 2.4 canonical units (60 cm) away.
REST_TRANSLATION = np.array([0.0, 0.0, 2.4], np.float32)


@dataclass(frozen=True)
class Gesture:
    start: float  # seconds
    end: float
    channels: dict[str, float]  # expression name -> peak weight
    rotation: tuple[float, float, float] = (0.0, 0.0, 0.0)  # peak axis-angle (radians)
    ramp: float = 0.3  # seconds to rise and to fall


SCRIPT: tuple[Gesture, ...] = (
    Gesture(1.5, 3.5, {"mouthSmile_L": 0.9, "mouthSmile_R": 0.9, "cheekSquint_L": 0.4, "cheekSquint_R": 0.4}),
    Gesture(4.0, 4.25, {"eyeBlink_L": 1.0, "eyeBlink_R": 1.0}, ramp=0.08),
    Gesture(4.7, 4.95, {"eyeBlink_L": 1.0, "eyeBlink_R": 1.0}, ramp=0.08),
    Gesture(5.5, 7.3, {"jawOpen": 0.85, "mouthFunnel": 0.2}),
    Gesture(7.6, 8.8, {"mouthPucker": 0.9}),
    Gesture(9.0, 10.0, {"eyeLookOut_L": 0.8, "eyeLookIn_R": 0.8}),
    Gesture(10.0, 11.0, {"eyeLookIn_L": 0.8, "eyeLookOut_R": 0.8}),
    Gesture(11.3, 13.0, {}, rotation=(0.0, 0.45, 0.0), ramp=0.6),  # turn (yaw)
    Gesture(13.2, 14.6, {"browInnerUp_L": 0.6, "browInnerUp_R": 0.6}, rotation=(0.25, 0.0, 0.0), ramp=0.5),  # nod
)
DURATION_S = 15.5


def _envelope(t: float, g: Gesture) -> float:
    """0 outside the gesture, 1 on its plateau, smoothstep ramps in between."""
    if t <= g.start or t >= g.end:
        return 0.0
    rise = min(1.0, (t - g.start) / g.ramp)
    fall = min(1.0, (g.end - t) / g.ramp)
    s = min(rise, fall)
    return s * s * (3.0 - 2.0 * s)


def scripted_frame(t: float, loop: bool = True) -> DrivingFrame:
    """The driving frame at `t` seconds from the start (the script repeats when `loop`)."""
    if loop:
        t = t % DURATION_S
    expression = np.zeros(N_EXPRESSION, np.float32)
    rotation = np.zeros(3, np.float32)
    for g in SCRIPT:
        w = _envelope(t, g)
        if w == 0.0:
            continue
        for name, peak in g.channels.items():
            i = expression_index(name)
            expression[i] = max(expression[i], w * peak)
        rotation += w * np.asarray(g.rotation, np.float32)
    return DrivingFrame(expression, rotation, REST_TRANSLATION.copy())


class ProceduralTracker:
    """Stands in for tracking.tracker.LiveTracker: `process` returns the scripted frame at the
    given time, measured from the first frame it sees."""

    name = "procedural"
    identity_ready = True

    def __init__(self, loop: bool = True) -> None:
        self.loop = loop
        self._t0: float | None = None

    def process(self, rgb: np.ndarray, timestamp: float) -> FrameResult:
        if self._t0 is None:
            self._t0 = timestamp
        return FrameResult(scripted_frame(timestamp - self._t0, self.loop), None, True)

    def close(self) -> None:
        pass
