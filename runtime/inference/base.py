"""The interface every inference backend implements, and the shared tensor plumbing."""
from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import torch

from avatar.checkpoint import Avatar
from avatar.config import POSE_DIM
from avatar.gaussians import GaussianSet
from tracking.params import N_EXPRESSION


@runtime_checkable
class InferenceBackend(Protocol):
    name: str
    device: torch.device

    def generate(self, expression: torch.Tensor, pose: torch.Tensor) -> GaussianSet:
        """(53,), (6,) float32 -> world-space Gaussians for the avatar's camera."""
        ...

    def upsample(self, features: torch.Tensor) -> torch.Tensor:
        """(H, W, C) rasterized image -> (fH, fW, 3) RGB in [0, 1]."""
        ...


class BackendBase:
    """Input checks and layout changes around `_generate` / `_upsample`, which subclasses provide.

    `_generate(θ (53,), β (6,))` returns the five generator tensors; `_upsample` maps a
    (1, C, H, W) image to (1, 3, fH, fW). Both get contiguous float32 tensors on `device`.
    `reason` says why this backend is the one in use (set by `auto`); `forget_choice`, set by
    `auto` when it took a remembered pick, drops that memory so the next start races again.
    """

    name = "base"

    def __init__(self, avatar: Avatar, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.num_gaussians = avatar.model.num_gaussians
        self.channels = avatar.config.color_channels
        self.reason = "requested"
        self.forget_choice: Callable[[], None] | None = None

    def _generate(self, expression: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def _upsample(self, image: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _input(self, tensor: torch.Tensor, size: int, what: str) -> torch.Tensor:
        if tensor.numel() != size:
            raise ValueError(f"{what} must have {size} values, got shape {tuple(tensor.shape)}")
        return tensor.to(self.device, torch.float32).reshape(size).contiguous()

    def generate(self, expression: torch.Tensor, pose: torch.Tensor) -> GaussianSet:
        outputs = self._generate(self._input(expression, N_EXPRESSION, "expression"),
                                 self._input(pose, POSE_DIM, "pose"))
        return GaussianSet(*outputs)

    def upsample(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 3 or features.shape[2] != self.channels:
            raise ValueError(f"upsample takes an (H, W, {self.channels}) image, got {tuple(features.shape)}")
        image = features.to(self.device, torch.float32).permute(2, 0, 1)[None].contiguous()
        return self._upsample(image)[0].permute(1, 2, 0)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} on {self.device}>"
