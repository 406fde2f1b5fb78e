"""Temporal smoothing of tracked coefficients: the One Euro filter, per channel.

The One Euro filter (Casiez, Roussel, Vogel, CHI 2012) is an exponential low-pass whose cutoff
rises with the signal's speed: cutoff = min_cutoff + beta * |filtered derivative|. Slow drifts
(jitter at rest) are smoothed hard; fast motions (a blink, a head turn) pass with little lag.
Every channel has its own filter state; `min_cutoff`, `beta` and `d_cutoff` are exposed per group
(expression, rotation, translation) in `SmoothingConfig`. Variant: the speed is estimated from the
change since the previous *filtered* value (as in the widely used Python reference; some C++ ports
use the previous raw sample instead); the first sample passes through unchanged.

Rotation is filtered on the rotation group, never on axis-angle numbers: each new rotation is
expressed relative to the last filtered one (a small rotation vector in the head's frame, far
from the +-pi wrap), that vector is filtered per channel like any other signal whose previous
filtered value is 0, and the filtered step is composed back. Nothing can flip at +-pi.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from core.rotations import matrix_to_rotvec, rotvec_to_matrix
from tracking.driving_frame import DrivingFrame
from tracking.params import N_EXPRESSION


@dataclass(frozen=True)
class OneEuroConfig:
    min_cutoff: float = 1.0  # Hz: the cutoff at rest (lower = smoother, more lag at rest)
    beta: float = 0.0  # cutoff increase per unit of speed (higher = less lag when moving)
    d_cutoff: float = 1.0  # Hz: cutoff of the derivative estimate

    def __post_init__(self) -> None:
        if self.min_cutoff <= 0 or self.d_cutoff <= 0 or self.beta < 0:
            raise ValueError(f"One Euro filter needs min_cutoff > 0, d_cutoff > 0, beta >= 0; got {self}")


@dataclass(frozen=True)
class SmoothingConfig:
    # beta is per unit of speed: expression weights, radians, canonical units (25 cm) per second.
    # Expression: a fast derivative (d_cutoff 5 Hz) and a high beta let a 100 ms blink through at
    # ~95 % of its fitted depth while weights at rest are smoothed at 2 Hz. Pose: tuned on the 30
    # test videos (BENCHMARKS.md, Tracking) for steadiness at rest against lag in head turns.
    expression: OneEuroConfig = OneEuroConfig(min_cutoff=2.0, beta=5.0, d_cutoff=5.0)
    rotation: OneEuroConfig = OneEuroConfig(min_cutoff=0.5, beta=0.5, d_cutoff=1.0)
    translation: OneEuroConfig = OneEuroConfig(min_cutoff=0.5, beta=4.0, d_cutoff=1.0)


def smoothing_factor(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Weight of the new sample in an exponential low-pass with this cutoff (Hz) at step dt (s)."""
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class AdaptiveGain:
    """The One Euro filter's speed-dependent smoothing factor, with its derivative estimate."""

    def __init__(self, config: OneEuroConfig, channels: int) -> None:
        self.config = config
        self._derivative = np.zeros(channels)

    def reset(self) -> None:
        self._derivative[:] = 0.0

    def __call__(self, change: np.ndarray, dt: float) -> np.ndarray:
        """Weight of a new sample that differs from the last filtered value by `change` after dt s."""
        c = self.config
        self._derivative += smoothing_factor(c.d_cutoff, dt) * (change / dt - self._derivative)
        return smoothing_factor(c.min_cutoff + c.beta * np.abs(self._derivative), dt)


class OneEuroFilter:
    """One Euro filter over a vector of independent channels."""

    def __init__(self, config: OneEuroConfig, channels: int) -> None:
        self.channels = channels
        self._gain = AdaptiveGain(config, channels)
        self.reset()

    def reset(self) -> None:
        self._gain.reset()
        self._value: np.ndarray | None = None
        self._time = 0.0

    def __call__(self, x: np.ndarray, timestamp: float) -> np.ndarray:
        """Filter sample x (channels,) taken at `timestamp` seconds; returns the filtered sample."""
        x = np.asarray(x, np.float64).reshape(self.channels)
        if self._value is None:
            self._value, self._time = x.copy(), timestamp
            return self._value.copy()
        dt = timestamp - self._time
        if dt <= 0:  # a repeated or out-of-order timestamp carries no new information
            return self._value.copy()
        self._time = timestamp
        change = x - self._value
        self._value = self._value + self._gain(change, dt) * change
        return self._value.copy()


class OneEuroRotationFilter:
    """One Euro filter on rotations given as axis-angle vectors (see the module docstring)."""

    def __init__(self, config: OneEuroConfig) -> None:
        self._gain = AdaptiveGain(config, 3)
        self.reset()

    def reset(self) -> None:
        self._gain.reset()
        self._R: np.ndarray | None = None
        self._time = 0.0

    def __call__(self, rotation: np.ndarray, timestamp: float) -> np.ndarray:
        R = rotvec_to_matrix(rotation)
        if self._R is None:
            self._R, self._time = R, timestamp
            return matrix_to_rotvec(R)
        dt = timestamp - self._time
        if dt <= 0:
            return matrix_to_rotvec(self._R)
        self._time = timestamp
        step = matrix_to_rotvec(self._R.T @ R)  # from the last filtered rotation to the new one, head frame
        self._R = self._R @ rotvec_to_matrix(self._gain(step, dt) * step)
        return matrix_to_rotvec(self._R)


@dataclass
class CoefficientSmoother:
    """Smooths expression, rotation and translation separately, each channel on its own."""

    config: SmoothingConfig = field(default_factory=SmoothingConfig)

    def __post_init__(self) -> None:
        self._expression = OneEuroFilter(self.config.expression, N_EXPRESSION)
        self._rotation = OneEuroRotationFilter(self.config.rotation)
        self._translation = OneEuroFilter(self.config.translation, 3)

    def reset(self) -> None:
        self._expression.reset()
        self._rotation.reset()
        self._translation.reset()

    def __call__(self, frame: DrivingFrame, timestamp: float) -> DrivingFrame:
        return DrivingFrame(expression=self._expression(frame.expression, timestamp),
                            rotation=self._rotation(frame.rotation, timestamp),
                            translation=self._translation(frame.translation, timestamp))
