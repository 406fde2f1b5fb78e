"""face-alignment (Bulat & Tzimiropoulos, FAN): 68 iBUG points, optional.

Not a dependency: `pip install face-alignment`. Its networks (the S3FD face detector and 2DFAN-4)
download into torch hub's cache on first use; this backend looks for them there first and raises
BackendUnavailable naming the files, their URLs and the folder, so nothing starts a download (or
hangs) on a machine without internet.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tracking.landmarks.base import IBUG_68, BackendUnavailable, Landmarks

# The package's own tables (face_alignment/api.py, detection/sfd/sfd_detector.py, 1.3-1.5), used
# when the installed version does not expose them.
_FAN_URLS_BY_TORCH = {
    "1.6": "https://www.adrianbulat.com/downloads/python-fan/2DFAN4_1.6-c827573f02.zip",
    "1.5": "https://www.adrianbulat.com/downloads/python-fan/2DFAN4_1.5-a60332318a.zip",
}
_FAN_URL_DEFAULT = "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-cd938726ad.zip"
_S3FD_URL = "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth"


def _torch_version_key(version: str) -> str:
    """"2.13.0+cpu" -> "2.13", as face_alignment keys its model table."""
    return version.rsplit(".", 2)[0] if "dev" in version else version.rsplit(".", 1)[0]


def required_weights(torch_version: str) -> list[str]:
    """URLs of the two networks face_alignment would load for this torch version (2D, sfd detector)."""
    try:
        from face_alignment import api
        from face_alignment.detection.sfd import sfd_detector
        fan = api.models_urls.get(_torch_version_key(torch_version), api.default_model_urls)["2DFAN-4"]
        s3fd = sfd_detector.models_urls["s3fd"]
    except (ImportError, AttributeError, KeyError):
        fan = _FAN_URLS_BY_TORCH.get(_torch_version_key(torch_version), _FAN_URL_DEFAULT)
        s3fd = _S3FD_URL
    return [fan, s3fd]


def missing_weights(checkpoint_dir: Path, urls: list[str]) -> list[str]:
    """The URLs whose file (named as in the URL) is not in torch hub's checkpoint folder."""
    return [u for u in urls if not (checkpoint_dir / u.rsplit("/", 1)[-1]).is_file()]


def checkpoint_dir() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


class FaceAlignmentBackend:
    name = "face-alignment"
    scheme = IBUG_68

    def __init__(self, device: str = "cpu") -> None:
        try:
            import face_alignment
        except ImportError:
            raise BackendUnavailable("face-alignment is not installed (pip install face-alignment); "
                                     "or use the default mediapipe backend") from None
        import torch

        folder = checkpoint_dir()
        missing = missing_weights(folder, required_weights(torch.__version__))
        if missing:
            names = ", ".join(f"{u.rsplit('/', 1)[-1]} ({u})" for u in missing)
            raise BackendUnavailable(f"face-alignment weights are not cached and are downloaded on first use; "
                                     f"put {names} in {folder}{os.sep}")
        kind = getattr(face_alignment.LandmarksType, "TWO_D", None) or face_alignment.LandmarksType._2D
        self._fa = face_alignment.FaceAlignment(kind, device=device, face_detector="sfd")

    def detect(self, rgb: np.ndarray, timestamp_ms: int | None = None) -> Landmarks | None:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
        found = self._fa.get_landmarks_from_image(rgb, return_bboxes=True)
        points, _, boxes = found if isinstance(found, tuple) else (found, None, None)
        if not points:
            return None
        # The most prominent face: the largest detector box (the first one without boxes).
        best = 0 if boxes is None else int(np.argmax([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]))
        h, w = rgb.shape[:2]
        # FAN's coordinates count whole pixels from 0; Landmarks puts pixel centres at +0.5.
        return Landmarks(np.asarray(points[best], np.float32)[:, :2] + 0.5, IBUG_68, (w, h))

    def close(self) -> None:
        self._fa = None
