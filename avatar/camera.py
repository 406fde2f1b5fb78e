"""Pinhole camera: intrinsics K in pixels, world-to-camera extrinsics in OpenCV axes."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Camera:
    K: torch.Tensor  # (3, 3)
    viewmat: torch.Tensor  # (4, 4) world -> camera, +z forward, +y down
    width: int
    height: int

    @classmethod
    def looking_at_origin(cls, width: int, height: int, fov_deg: float = 20.0,
                          distance: float = 4.0) -> "Camera":
        """Camera on the -z axis looking at the canonical head (which faces -z)."""
        f = 0.5 * width / torch.tan(torch.deg2rad(torch.tensor(fov_deg / 2)))
        K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=torch.float32)
        viewmat = torch.eye(4)
        viewmat[2, 3] = distance
        return cls(K=K, viewmat=viewmat, width=width, height=height)

    def to(self, device: str | torch.device) -> "Camera":
        return Camera(K=self.K.to(device), viewmat=self.viewmat.to(device), width=self.width, height=self.height)

    def scaled(self, factor: float) -> "Camera":
        """The same view at `factor` times the resolution."""
        K = self.K.clone()
        K[:2] *= factor
        return Camera(K=K, viewmat=self.viewmat, width=round(self.width * factor),
                      height=round(self.height * factor))
