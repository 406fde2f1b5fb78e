"""MediaPipe FaceMesh: 478 points (468 mesh + 10 iris) with `refine_landmarks`, model bundled in
the mediapipe wheel (0.10.21), so it runs with no download."""
from __future__ import annotations

import numpy as np

from tracking.landmarks.base import MEDIAPIPE_478, BackendUnavailable, Landmarks
from tracking.native_log import FirstFacesHush, quiet_native_stderr


class MediaPipeMeshBackend:
    name = "mediapipe"
    scheme = MEDIAPIPE_478

    def __init__(self, static_image_mode: bool = False, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5) -> None:
        try:
            from mediapipe.python.solutions import face_mesh
        except ImportError as e:
            raise BackendUnavailable(f"MediaPipe is not installed ({e}); pip install mediapipe==0.10.21") from None
        # Tracking mode reuses the previous frame's face box: faster and steadier on video.
        with quiet_native_stderr():
            self._mesh = face_mesh.FaceMesh(static_image_mode=static_image_mode, max_num_faces=1,
                                            refine_landmarks=True,
                                            min_detection_confidence=min_detection_confidence,
                                            min_tracking_confidence=min_tracking_confidence)
            # A first (faceless) frame starts the graph now, while its notices are hushed.
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))
        self._hush = FirstFacesHush()  # the landmark model's first runs (frames with a face) print more

    def detect(self, rgb: np.ndarray, timestamp_ms: int | None = None) -> Landmarks | None:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
        with self._hush.around_call():
            result = self._mesh.process(np.ascontiguousarray(rgb))
        self._hush.saw_face(bool(result.multi_face_landmarks))
        if not result.multi_face_landmarks:
            return None
        h, w = rgb.shape[:2]
        marks = result.multi_face_landmarks[0].landmark
        # Normalised [0, 1] image coordinates span the pixel edges, so x * w is already in the
        # pixel-centres-at-+0.5 convention of Landmarks.
        points = np.array([(p.x * w, p.y * h) for p in marks], np.float32)
        return Landmarks(points, MEDIAPIPE_478, (w, h))

    def close(self) -> None:
        self._mesh.close()
