"""Accuracy and stability measures of a tracked sequence (the acceptance numbers of the tracker).

- Landmark error: distance between the fitted model's 68 landmarks, projected, and a reference
  detector's 68 iBUG points, divided by that frame's inter-ocular distance measured on the
  reference points (outer eye corners, iBUG 36 and 45: the 300-W convention); reported as the
  median over all points of all frames with a face. Against the tracker's own detector this is a
  fit residual (the fit minimises it); against another detector (dlib) it is an accuracy measure.
- Jitter, on windows fixed by the frame count alone, never by the tracker's output: the video is
  cut into consecutive one-second windows from frame 0 (a last partial second is dropped), and
  only windows whose frames all have a face count. Per window: the RMS of the head rotation's
  deviation from constant angular velocity (the angle between frame t+1 and frame t moved on by
  the step from t-1 to t), which smooth head motion barely touches and tracker noise drives;
  and, for comparison, the RMS frame-to-frame rotation (head motion plus noise). Reported as
  the median over windows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.rotations import angle_between, matrix_to_rotvec, rotvec_to_matrix

OUTER_EYE_CORNERS = (36, 45)


def landmark_errors(fitted68: np.ndarray, reference68: np.ndarray) -> np.ndarray:
    """Per-point errors (N, 68) in inter-ocular distances, for frames where both are finite."""
    ok = np.isfinite(fitted68).all((1, 2)) & np.isfinite(reference68).all((1, 2))
    fitted68, reference68 = fitted68[ok], reference68[ok]
    iod = np.linalg.norm(reference68[:, OUTER_EYE_CORNERS[0]] - reference68[:, OUTER_EYE_CORNERS[1]], axis=1)
    return np.linalg.norm(fitted68 - reference68, axis=2) / iod[:, None]


def step_angles_deg(rotations: np.ndarray) -> np.ndarray:
    """Angle of the rotation between consecutive axis-angle rotations (T, 3) -> (T - 1,) degrees."""
    rotations = np.asarray(rotations, np.float64)
    return np.degrees(angle_between(rotations[:-1], rotations[1:]))


def acceleration_angles_deg(rotations: np.ndarray) -> np.ndarray:
    """(T, 3) -> (T - 2,) degrees: how far frame t+1 is from frame t moved on by the step t-1 -> t."""
    R = rotvec_to_matrix(np.asarray(rotations, np.float64))
    step = np.swapaxes(R[:-2], -1, -2) @ R[1:-1]  # head-frame step from t-1 to t
    predicted = matrix_to_rotvec(R[1:-1] @ step)
    return np.degrees(angle_between(predicted, np.asarray(rotations[2:], np.float64)))


def second_windows(count: int, fps: float) -> list[slice]:
    """Consecutive one-second windows of frames from frame 0; a last partial second is dropped."""
    n = max(3, int(round(fps)))
    return [slice(start, start + n) for start in range(0, count - n + 1, n)]


@dataclass(frozen=True)
class Jitter:
    acceleration_deg: float  # median over windows of the RMS deviation from constant angular velocity
    step_deg: float  # median over windows of the RMS frame-to-frame rotation
    windows: int  # windows measured (every frame with a face)


def window_jitter(rotations: np.ndarray, valid: np.ndarray, fps: float) -> Jitter | None:
    """Jitter over the fixed one-second windows (module docstring); None if no window has a face
    in every frame."""
    accel, steps = [], []
    for window in second_windows(len(rotations), fps):
        if not valid[window].all():
            continue
        r = rotations[window]
        accel.append(np.sqrt(np.mean(np.square(acceleration_angles_deg(r)))))
        steps.append(np.sqrt(np.mean(np.square(step_angles_deg(r)))))
    if not accel:
        return None
    return Jitter(float(np.median(accel)), float(np.median(steps)), len(accel))
