"""The landmark backend interface."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

MEDIAPIPE_478 = "mediapipe478"
IBUG_68 = "ibug68"
SCHEME_SIZES = {MEDIAPIPE_478: 478, IBUG_68: 68}  # points per detection


@dataclass
class Landmarks:
    points: np.ndarray  # (P, 2) float32 pixel coordinates (x right, y down), pixel centres at +0.5
    scheme: str  # MEDIAPIPE_478 or IBUG_68: which point is which
    image_size: tuple[int, int]  # (width, height) of the frame they were detected in


class LandmarkBackend(Protocol):
    name: str
    scheme: str

    def detect(self, rgb: np.ndarray, timestamp_ms: int | None = None) -> Landmarks | None:
        """Landmarks of the most prominent face in an RGB uint8 frame, or None if no face."""

    def close(self) -> None:
        ...


class BackendUnavailable(RuntimeError):
    """A landmark backend that cannot run here (package or weights missing); one-line message."""
