"""The tracking camera: an ideal pinhole centred in the image, focal length from a field of view.

Video files and webcams do not tell us their intrinsics, so the tracker assumes one field of view
(configurable). It is measured across the image **diagonal**, which keeps the same meaning for
landscape, portrait and square frames (webcams and phones are specified that way, ~55-80 deg).
Axes are OpenCV's: +x right, +y down, +z forward; pixel centres at +0.5, so the principal point
of a W x H image is (W/2, H/2) in the same pixel coordinates the landmark backends use.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PinholeCamera:
    width: int
    height: int
    fov_deg: float  # diagonal field of view

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera size must be positive, got {self.width}x{self.height}")
        if not 1.0 <= self.fov_deg <= 170.0:
            raise ValueError(f"field of view must be within [1, 170] degrees, got {self.fov_deg}")

    @property
    def focal(self) -> float:
        """Focal length in pixels (square pixels)."""
        half_diagonal = 0.5 * math.hypot(self.width, self.height)
        return half_diagonal / math.tan(math.radians(self.fov_deg) / 2)

    @property
    def principal_point(self) -> tuple[float, float]:
        return self.width / 2, self.height / 2

    def project(self, points: np.ndarray) -> np.ndarray:
        """Camera-space points (..., 3) -> pixel coordinates (..., 2)."""
        f = self.focal
        cx, cy = self.principal_point
        z = points[..., 2:3]
        return np.concatenate([f * points[..., 0:1] / z + cx, f * points[..., 1:2] / z + cy], -1)
