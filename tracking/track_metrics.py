"""Accuracy and stability measures of a tracked sequence (the acceptance numbers of the tracker).

- Landmark error: distance between the fitted model's 68 landmarks, projected, and the detector's
  68 points (MediaPipe mapped to iBUG-68), divided by that frame's inter-ocular distance measured
  on the detected points (outer eye corners, iBUG 36 and 45: the 300-W convention). Reported as
  the median over all points of all frames with a face.
- Jitter: the angle of the frame-to-frame rotation of the (smoothed) head pose, in degrees; the
  RMS over every window of one second of consecutive valid frames, and the smallest such value
  (the calmest second), where any remaining motion is tracker noise rather than head motion.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

OUTER_EYE_CORNERS = (36, 45)


def landmark_errors(fitted68: np.ndarray, detected68: np.ndarray) -> np.ndarray:
    """Per-point errors (N, 68) in inter-ocular distances, for frames where both are finite."""
    ok = np.isfinite(fitted68).all((1, 2)) & np.isfinite(detected68).all((1, 2))
    fitted68, detected68 = fitted68[ok], detected68[ok]
    iod = np.linalg.norm(detected68[:, OUTER_EYE_CORNERS[0]] - detected68[:, OUTER_EYE_CORNERS[1]], axis=1)
    return np.linalg.norm(fitted68 - detected68, axis=2) / iod[:, None]


def step_angles_deg(rotations: np.ndarray) -> np.ndarray:
    """Angle of the rotation between consecutive axis-angle rotations (T, 3) -> (T - 1,) degrees."""
    R = [cv2.Rodrigues(np.asarray(r, np.float64).reshape(3, 1))[0] for r in rotations]
    return np.array([np.degrees(np.linalg.norm(cv2.Rodrigues(a.T @ b)[0])) for a, b in zip(R[:-1], R[1:])])


@dataclass
class Jitter:
    degrees: float  # RMS frame-to-frame rotation over the calmest second
    start: int  # its first frame


def calmest_second_jitter(rotations: np.ndarray, valid: np.ndarray, fps: float) -> Jitter | None:
    """The calmest one-second window of consecutive valid frames; None if there is none."""
    n = max(2, int(round(fps)))
    steps = step_angles_deg(rotations)
    both_valid = valid[:-1] & valid[1:]
    best: Jitter | None = None
    for start in range(0, len(steps) - (n - 1) + 1):
        window = slice(start, start + n - 1)  # n frames -> n - 1 steps
        if not both_valid[window].all():
            continue
        value = float(np.sqrt(np.mean(np.square(steps[window]))))
        if best is None or value < best.degrees:
            best = Jitter(value, start)
    return best
