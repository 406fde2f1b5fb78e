"""dlib's 68-point shape predictor (Kazemi & Sullivan) on its HOG face detector, optional.

Not a dependency: `pip install dlib-bin face_recognition_models` (dlib-bin is dlib as a wheel;
`pip install dlib` builds the same from source). The predictor file
`shape_predictor_68_face_landmarks.dat` (about 100 MB; not redistributable for commercial use:
its iBUG 300-W training data forbids it) is found on the asset lookup path (tracking/assets.py),
else inside the `face_recognition_models` package, which ships it.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from core.paths import user_cache_dir
from tracking.assets import AssetNotFoundError, find_asset
from tracking.landmarks.base import IBUG_68, BackendUnavailable, Landmarks

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
PREDICTOR_URL = "http://dlib.net/files/shape_predictor_68_face_landmarks.dat.bz2"


def packaged_predictor() -> Path | None:
    """The predictor inside an installed face_recognition_models, found without importing it (its
    __init__ needs pkg_resources, which recent setuptools no longer has)."""
    spec = importlib.util.find_spec("face_recognition_models")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(folder) / "models" / PREDICTOR_FILE
        if candidate.is_file():
            return candidate
    return None


def find_predictor(explicit: str | os.PathLike | None = None) -> Path:
    try:
        return find_asset(PREDICTOR_FILE, explicit)
    except AssetNotFoundError as e:
        packaged = packaged_predictor() if explicit is None else None
        if packaged is not None:
            return packaged
        raise BackendUnavailable(f"dlib needs {PREDICTOR_FILE}: pip install face_recognition_models, or "
                                 f"download {PREDICTOR_URL} and unpack it (bunzip2) into {user_cache_dir()} "
                                 f"({e})") from None


class DlibBackend:
    name = "dlib"
    scheme = IBUG_68

    def __init__(self, predictor_path: str | os.PathLike | None = None, upsample: int = 0) -> None:
        try:
            import dlib
        except ImportError:
            raise BackendUnavailable("dlib is not installed (pip install dlib-bin face_recognition_models); "
                                     "or use the default mediapipe backend") from None
        path = find_predictor(predictor_path)
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(path))
        self.upsample = upsample  # detector upsampling: finds smaller faces, costs ~4x per step

    def detect(self, rgb: np.ndarray, timestamp_ms: int | None = None) -> Landmarks | None:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
        rgb = np.ascontiguousarray(rgb)
        faces = self._detector(rgb, self.upsample)
        if len(faces) == 0:
            return None
        face = max(faces, key=lambda r: r.width() * r.height())
        shape = self._predictor(rgb, face)
        h, w = rgb.shape[:2]
        # dlib's parts are integer pixel indices; Landmarks puts pixel centres at +0.5.
        points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], np.float32) + 0.5
        return Landmarks(points, IBUG_68, (w, h))

    def close(self) -> None:
        self._detector = self._predictor = None
