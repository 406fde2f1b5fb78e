"""Which detected MediaPipe points the fitter uses, and where each lies on the ICT mesh.

Three sources, concatenated:
- the dense correspondence (tracking/correspondence.py): a few hundred MediaPipe points located
  on the ICT surface by barycentric coordinates;
- the 68 iBUG landmarks: MediaPipe's 68 points (tracking/landmarks/ibug68.py) tied to ICT's own
  68 landmark vertices, so the fitted model's landmarks land where the detector puts them (this
  is also what the acceptance metric measures);
- the two iris centres (MediaPipe 468 and 473, present with refine_landmarks) tied to the pupil
  vertex of each ICT eyeball, which is what makes the eyeLook* (gaze) weights observable.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracking.face_model import FaceModelData

# MediaPipe's iris centres: 468 is the subject's right eye (image left), 473 the left.
IRIS_CENTRES = {"eyeball_right": 468, "eyeball_left": 473}
JAW_CONTOUR = slice(0, 17)  # iBUG-68 points 0-16: the face outline from ear to ear


@dataclass(frozen=True)
class FitPoints:
    mediapipe_ids: np.ndarray  # (K,) index into the 478 detected points
    vertex_ids: np.ndarray  # (K, 3) ICT vertices around each point
    barycentric: np.ndarray  # (K, 3)
    weights: np.ndarray  # (K,)

    def __post_init__(self) -> None:
        k = self.mediapipe_ids.shape[0]
        if self.vertex_ids.shape != (k, 3) or self.barycentric.shape != (k, 3) or self.weights.shape != (k,):
            raise ValueError("FitPoints arrays disagree in length")

    def select(self, points478: np.ndarray) -> np.ndarray:
        """The observed (K, 2) points out of a (478, 2) detection."""
        return points478[self.mediapipe_ids]


def pupil_vertices(data: FaceModelData) -> dict[str, int]:
    """The front-most vertex of each eyeball (canonical -z faces the camera): the pupil centre."""
    out = {}
    for name in IRIS_CENTRES:
        r = data.region(name)
        out[name] = r.start + int(np.argmin(data.neutral[r, 2]))
    return out


def _vertex_points(mediapipe_ids, vertex_ids, weight: float) -> tuple[np.ndarray, ...]:
    v = np.asarray(vertex_ids, np.int64)
    return (np.asarray(mediapipe_ids, np.int64), np.stack([v, v, v], 1),
            np.tile([1.0, 0.0, 0.0], (v.size, 1)), np.full(v.size, weight))


def build_fit_points(data: FaceModelData, dense_mediapipe_ids: np.ndarray, dense_vertex_ids: np.ndarray,
                     dense_barycentric: np.ndarray, dense_weights: np.ndarray, ibug68_mediapipe_ids: np.ndarray,
                     landmark_weight: float, jaw_contour_weight: float, iris_weight: float) -> FitPoints:
    """Concatenate the three sources (module docstring). Weights are relative: the dense points keep
    theirs; each landmark and iris point gets the given weight. The 17 jaw-contour landmarks get
    their own: the detector's face outline is its least reliable part, and trusting it fully lets
    a wide-open mouth pull the head towards the camera."""
    dense_weights = np.asarray(dense_weights, np.float64)
    pupils = pupil_vertices(data)
    landmark_weights = np.full(68, landmark_weight)
    landmark_weights[JAW_CONTOUR] = jaw_contour_weight
    ids, tri, bary, _ = _vertex_points(ibug68_mediapipe_ids, data.landmarks68, 0.0)
    parts = [
        (np.asarray(dense_mediapipe_ids, np.int64), np.asarray(dense_vertex_ids, np.int64),
         np.asarray(dense_barycentric, np.float64), dense_weights),
        (ids, tri, bary, landmark_weights),
        _vertex_points(list(IRIS_CENTRES.values()), [pupils[n] for n in IRIS_CENTRES], iris_weight),
    ]
    return FitPoints(*(np.concatenate([p[i] for p in parts]) for i in range(4)))
