"""Which detected points the fitter uses, and where each lies on the ICT mesh.

The detector's scheme decides (`Landmarks.scheme`). For MediaPipe's 478 points, three sources
are concatenated:
- the dense correspondence (tracking/correspondence.py): a few hundred MediaPipe points located
  on the ICT surface by barycentric coordinates;
- the 68 iBUG landmarks: MediaPipe's 68 points (tracking/landmarks/ibug68.py) tied to ICT's own
  68 landmark vertices, so the fitted model's landmarks land where the detector puts them;
- the two iris centres (MediaPipe 468 and 473, present with refine_landmarks) tied to the pupil
  vertex of each ICT eyeball, which is what makes the eyeLook* (gaze) weights observable.
For the 68 iBUG points of dlib or face-alignment only the second source exists: each detected
point is tied to ICT's landmark vertex of the same number (gaze is then not observable).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracking.face_model import FaceModelData
from tracking.landmarks.base import IBUG_68, MEDIAPIPE_478, SCHEME_SIZES

# MediaPipe's iris centres: 468 is the subject's right eye (image left), 473 the left.
IRIS_CENTRES = {"eyeball_right": 468, "eyeball_left": 473}
JAW_CONTOUR = slice(0, 17)  # iBUG-68 points 0-16: the face outline from ear to ear


@dataclass(frozen=True)
class FitPoints:
    scheme: str  # the detector's point scheme (tracking/landmarks/base.py) these ids index
    detection_ids: np.ndarray  # (K,) index into the detected points
    vertex_ids: np.ndarray  # (K, 3) ICT vertices around each point
    barycentric: np.ndarray  # (K, 3)
    weights: np.ndarray  # (K,)

    def __post_init__(self) -> None:
        k = self.detection_ids.shape[0]
        if self.vertex_ids.shape != (k, 3) or self.barycentric.shape != (k, 3) or self.weights.shape != (k,):
            raise ValueError("FitPoints arrays disagree in length")

    def select(self, detected: np.ndarray) -> np.ndarray:
        """The observed (K, 2) points out of one detection in this scheme."""
        expected = SCHEME_SIZES[self.scheme]
        if detected.shape != (expected, 2):
            raise ValueError(f"fit points for {self.scheme} need ({expected}, 2) detected points, "
                             f"got {detected.shape}")
        return detected[self.detection_ids]


def pupil_vertices(data: FaceModelData) -> dict[str, int]:
    """The front-most vertex of each eyeball (canonical -z faces the camera): the pupil centre."""
    out = {}
    for name in IRIS_CENTRES:
        r = data.region(name)
        out[name] = r.start + int(np.argmin(data.neutral[r, 2]))
    return out


def _vertex_points(detection_ids, vertex_ids, weights) -> tuple[np.ndarray, ...]:
    v = np.asarray(vertex_ids, np.int64)
    return (np.asarray(detection_ids, np.int64), np.stack([v, v, v], 1),
            np.tile([1.0, 0.0, 0.0], (v.size, 1)), np.broadcast_to(np.asarray(weights, np.float64), v.shape))


def _landmark_weights(landmark_weight: float, jaw_contour_weight: float) -> np.ndarray:
    """Each of the 68 landmarks gets `landmark_weight`, the 17 on the jaw contour their own: the
    detector's face outline is its least reliable part, and trusting it fully lets a wide-open
    mouth pull the head towards the camera."""
    weights = np.full(68, landmark_weight)
    weights[JAW_CONTOUR] = jaw_contour_weight
    return weights


def build_fit_points(data: FaceModelData, dense_mediapipe_ids: np.ndarray, dense_vertex_ids: np.ndarray,
                     dense_barycentric: np.ndarray, dense_weights: np.ndarray, ibug68_mediapipe_ids: np.ndarray,
                     landmark_weight: float, jaw_contour_weight: float, iris_weight: float) -> FitPoints:
    """MediaPipe's three sources (module docstring). Weights are relative: the dense points keep
    theirs; each landmark and iris point gets the given weight."""
    pupils = pupil_vertices(data)
    parts = [
        (np.asarray(dense_mediapipe_ids, np.int64), np.asarray(dense_vertex_ids, np.int64),
         np.asarray(dense_barycentric, np.float64), np.asarray(dense_weights, np.float64)),
        _vertex_points(ibug68_mediapipe_ids, data.landmarks68, _landmark_weights(landmark_weight, jaw_contour_weight)),
        _vertex_points(list(IRIS_CENTRES.values()), [pupils[n] for n in IRIS_CENTRES], iris_weight),
    ]
    return FitPoints(MEDIAPIPE_478, *(np.concatenate([p[i] for p in parts]) for i in range(4)))


def ibug68_fit_points(data: FaceModelData, landmark_weight: float, jaw_contour_weight: float) -> FitPoints:
    """The 68 iBUG points of dlib or face-alignment, each on ICT's landmark vertex of that number."""
    parts = _vertex_points(np.arange(68), data.landmarks68, _landmark_weights(landmark_weight, jaw_contour_weight))
    return FitPoints(IBUG_68, *(np.array(p) for p in parts))
