"""One frame of driving signal (DESIGN.md, the coefficient contract, without the per-person identity
and the diagnostic landmarks): what smoothing, retargeting and the avatar work on."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracking.params import N_EXPRESSION


@dataclass
class DrivingFrame:
    expression: np.ndarray  # (53,) float32, 0..1
    rotation: np.ndarray  # (3,) float32 axis-angle, canonical head -> camera
    translation: np.ndarray  # (3,) float32 canonical units

    def __post_init__(self) -> None:
        for name, size in (("expression", N_EXPRESSION), ("rotation", 3), ("translation", 3)):
            value = np.asarray(getattr(self, name), np.float32)
            if value.shape != (size,):
                raise ValueError(f"DrivingFrame.{name} must have shape ({size},), got {value.shape}")
            setattr(self, name, value)
