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

    def project(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """World points (N, 3) -> their pixel coordinates (N, 2), centres at +0.5, and depth (N,)."""
        x = points @ self.viewmat[:3, :3].T + self.viewmat[:3, 3]
        uv = x @ self.K.T
        return uv[:, :2] / uv[:, 2:].clamp_min(1e-6), x[:, 2]

    def pixel_under(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """For world points (N, 3): the column and row of the pixel each falls in (clamped into
        the image), whether it is in front of the camera and inside the image, and its depth."""
        uv, depth = self.project(points)
        pixel = uv.floor().long()
        inside = (depth > 0) & (pixel[:, 0] >= 0) & (pixel[:, 0] < self.width) & (pixel[:, 1] >= 0) \
            & (pixel[:, 1] < self.height)
        return pixel[:, 0].clamp(0, self.width - 1), pixel[:, 1].clamp(0, self.height - 1), inside, depth
