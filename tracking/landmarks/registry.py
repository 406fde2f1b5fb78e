"""Landmark backends by name. Optional backends are imported only when asked for, so a missing
package costs nothing until someone selects it (and then gives a one-line BackendUnavailable)."""
from __future__ import annotations

from tracking.landmarks.base import IBUG_68, MEDIAPIPE_478, BackendUnavailable, LandmarkBackend

SCHEMES = {"mediapipe": MEDIAPIPE_478, "face-alignment": IBUG_68, "dlib": IBUG_68}  # name -> point scheme
BACKENDS = tuple(SCHEMES)


def create_backend(name: str = "mediapipe", **options) -> LandmarkBackend:
    if name == "mediapipe":
        from tracking.landmarks.mediapipe_mesh import MediaPipeMeshBackend
        return MediaPipeMeshBackend(**options)
    if name == "face-alignment":
        from tracking.landmarks.face_alignment_backend import FaceAlignmentBackend
        return FaceAlignmentBackend(**options)
    if name == "dlib":
        from tracking.landmarks.dlib_backend import DlibBackend
        return DlibBackend(**options)
    raise BackendUnavailable(f"unknown landmark backend {name!r}; choose one of {', '.join(BACKENDS)}")
