"""The per-frame Gaussian set handed from the generator to a rasterizer."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class GaussianSet:
    means: torch.Tensor  # (N, 3) world/camera-space positions
    quats: torch.Tensor  # (N, 4) w-x-y-z, any norm
    scales: torch.Tensor  # (N, 3) linear (not log)
    opacities: torch.Tensor  # (N,) in [0, 1]
    features: torch.Tensor  # (N, C) C >= 3; the first three are low-resolution RGB

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        expected = {"means": (n, 3), "quats": (n, 4), "scales": (n, 3), "opacities": (n,)}
        for name, shape in expected.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"GaussianSet.{name} must be {shape}, got {tuple(getattr(self, name).shape)}")
        if self.features.ndim != 2 or self.features.shape[0] != n:
            raise ValueError(f"GaussianSet.features must be ({n}, C), got {tuple(self.features.shape)}")

    def __len__(self) -> int:
        return self.means.shape[0]
