"""Relative driving: the driver's neutral face and head pose map onto the avatar's neutral.

`NeutralCalibrator` collects the driver's neutral over the first `duration_s` seconds of tracked
frames (again whenever `request()` is called, e.g. on a key press): per expression channel the
median weight, the median translation, and the chordal mean rotation (the rotation nearest to the
average rotation matrix). Until the window is full its running estimate is used, so driving
starts at once and settles within the window.

`retarget` then maps, per expression channel, the driver's range [0, n, 1] piecewise-linearly
onto the avatar's [0, a, 1] (n: driver neutral, a: avatar neutral, usually 0). Why a rescale and
not `clamp(e - n, 0, 1)`: a driver whose resting face already reads eyeBlink 0.2 must still be
able to close the avatar's eyes fully (1 -> 1), and their resting face must read as the avatar's
(n -> a). The slope above the neutral is capped at MAX_GAIN: a channel that already reads 0.9 at
rest carries mostly fitting bias, and a 1 / (1 - n) slope would amplify its jitter tenfold (a
neutral driver would make the avatar pucker); such a channel keeps a short, calm range instead
of reaching 1. Rotation: the driver's rotation relative to their neutral, taken in the head's own
frame (so a nod stays a nod about the head's ear-to-ear axis even if the driver sits off-axis),
is applied to the avatar's neutral rotation. Translation: the driver's offset from their neutral
position, in camera axes, is added to the avatar's neutral position.
"""
from __future__ import annotations

import numpy as np

from core.rotations import matrix_to_rotvec, rotvec_to_matrix
from tracking.driving_frame import DrivingFrame


def chordal_mean_rotation(rotations: np.ndarray) -> np.ndarray:
    """The rotation (axis-angle) closest in Frobenius norm to the mean of the rotation matrices."""
    mean = rotvec_to_matrix(rotations).mean(0)
    u, _, vt = np.linalg.svd(mean)
    d = np.sign(np.linalg.det(u @ vt))
    return matrix_to_rotvec(u @ np.diag([1.0, 1.0, d]) @ vt)


class NeutralCalibrator:
    """Collects the driver's neutral over a time window (see the module docstring)."""

    def __init__(self, duration_s: float = 1.0) -> None:
        if duration_s <= 0:
            raise ValueError(f"calibration window must be positive, got {duration_s} s")
        self.duration_s = duration_s
        self.request()

    def request(self) -> None:
        """Start a new calibration window at the next frame."""
        self._frames: list[DrivingFrame] = []
        self._start: float | None = None
        self._neutral: DrivingFrame | None = None
        self.complete = False

    def add(self, frame: DrivingFrame, timestamp: float) -> None:
        """Offer a tracked frame; it is used while the window is open."""
        if self.complete:
            return
        if self._start is None:
            self._start = timestamp
        if timestamp - self._start >= self.duration_s and self._frames:
            self.complete = True
            return
        self._frames.append(frame)
        self._neutral = None  # recomputed lazily from the frames so far

    @property
    def neutral(self) -> DrivingFrame | None:
        """The neutral so far (final once `complete`); None before any frame."""
        if self._neutral is None and self._frames:
            self._neutral = DrivingFrame(
                expression=np.median([f.expression for f in self._frames], axis=0),
                rotation=chordal_mean_rotation(np.array([f.rotation for f in self._frames])),
                translation=np.median([f.translation for f in self._frames], axis=0))
        return self._neutral


MAX_GAIN = 2.0  # largest slope of the map above the driver's neutral (module docstring)


def retarget_expression(expression: np.ndarray, driver_neutral: np.ndarray,
                        avatar_neutral: np.ndarray) -> np.ndarray:
    """Per channel, the piecewise-linear map [0, n, 1] -> [0, a, 1], slope above n capped at
    MAX_GAIN (module docstring)."""
    e = np.clip(np.asarray(expression, np.float64), 0.0, 1.0)
    n = np.clip(np.asarray(driver_neutral, np.float64), 0.0, 1.0)
    a = np.clip(np.asarray(avatar_neutral, np.float64), 0.0, 1.0)
    below = a * e / np.maximum(n, 1e-6)
    above = a + (1 - a) * (e - n) * np.minimum(1.0 / np.maximum(1 - n, 1e-6), MAX_GAIN)
    return np.where(e < n, np.minimum(below, a), np.clip(above, a, 1.0)).astype(np.float32)


def retarget(frame: DrivingFrame, driver_neutral: DrivingFrame, avatar_neutral: DrivingFrame) -> DrivingFrame:
    """The driver's frame expressed relative to their neutral, applied to the avatar's neutral."""
    relative = rotvec_to_matrix(driver_neutral.rotation).T @ rotvec_to_matrix(frame.rotation)
    return DrivingFrame(
        expression=retarget_expression(frame.expression, driver_neutral.expression, avatar_neutral.expression),
        rotation=matrix_to_rotvec(rotvec_to_matrix(avatar_neutral.rotation) @ relative),
        translation=avatar_neutral.translation + (frame.translation - driver_neutral.translation),
    )


class Retargeter:
    """Calibrates on the incoming frames and retargets each one onto `avatar_neutral`."""

    def __init__(self, avatar_neutral: DrivingFrame, calibration_s: float = 1.0) -> None:
        self.avatar_neutral = avatar_neutral
        self.calibrator = NeutralCalibrator(calibration_s)

    def recalibrate(self) -> None:
        self.calibrator.request()

    def __call__(self, frame: DrivingFrame, timestamp: float) -> DrivingFrame:
        self.calibrator.add(frame, timestamp)
        return retarget(frame, self.calibrator.neutral, self.avatar_neutral)
