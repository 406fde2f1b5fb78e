"""MediaPipe FaceMesh indices of the 68 iBUG / Multi-PIE landmarks (dlib and face-alignment order).

One MediaPipe point per iBUG point, chosen on MediaPipe's canonical mesh as the vertex at the
landmark's anatomical place (eye corners and lids, lip corners and contours, brows, nose ridge
and base, the jaw outline). tests/test_landmarks.py checks the choice geometrically: after a
similarity alignment of the canonical mesh onto the ICT mean head, every point lies near the
ICT landmark vertex of the same number.
"""
from __future__ import annotations

import numpy as np

from tracking.landmarks.base import IBUG_68, MEDIAPIPE_478

# "Right"/"left" are the subject's: iBUG 17-21 and 36-41 are on the image's left for a frontal face.
JAW = (127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356)
RIGHT_BROW = (70, 63, 105, 66, 107)
LEFT_BROW = (336, 296, 334, 293, 300)
NOSE_RIDGE = (168, 197, 5, 4)
NOSE_BASE = (75, 97, 2, 326, 305)
RIGHT_EYE = (33, 160, 158, 133, 153, 144)
LEFT_EYE = (362, 385, 387, 263, 373, 380)
OUTER_LIPS = (61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181)
INNER_LIPS = (78, 82, 13, 312, 308, 317, 14, 87)

MEDIAPIPE_TO_IBUG68: tuple[int, ...] = (JAW + RIGHT_BROW + LEFT_BROW + NOSE_RIDGE + NOSE_BASE
                                        + RIGHT_EYE + LEFT_EYE + OUTER_LIPS + INNER_LIPS)

assert len(MEDIAPIPE_TO_IBUG68) == 68


def to_ibug68(points: np.ndarray | None, scheme: str) -> np.ndarray:
    """One detection's (68, 2) iBUG points, whatever its scheme; NaN for a frame without a face."""
    if points is None:
        return np.full((68, 2), np.nan, np.float32)
    if scheme == IBUG_68:
        return points
    if scheme == MEDIAPIPE_478:
        return points[np.asarray(MEDIAPIPE_TO_IBUG68)]
    raise ValueError(f"unknown landmark scheme {scheme!r}")
