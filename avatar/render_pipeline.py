"""generate -> rasterize -> SR: the one path every use of an avatar renders through.

    pipeline = RenderPipeline(ModuleStages(avatar.model, avatar.sr), raster="cpu")
    out = pipeline.render(expression, pose, avatar.camera)   # (53,), (6,) tensors
    out.features  # (H, W, C) rasterized feature image; its first three channels are the low-res RGB
    out.rgb       # (fH, fW, 3) SR output, not clamped

The networks are a `Stages`: the avatar's own torch modules (`ModuleStages`: training, where
gradients flow, and offline rendering) or a runtime inference backend (torch, torch.compile,
ONNX Runtime, TensorRT; runtime/inference), which has the same two methods. The rasterizer is
avatar.raster ("cpu" or "gsplat") on a white background in every channel (DESIGN.md). Each
stage runs inside `timing.stage(name)` so the live loop can time it; NO_TIMING does nothing.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from avatar.camera import Camera
from avatar.gaussians import GaussianSet
from avatar.raster import render_gaussians
from avatar.super_resolution import SuperResolution

GENERATE, RASTERIZE, SR = "generate", "rasterize", "sr"
STAGES = (GENERATE, RASTERIZE, SR)


class Stages(Protocol):
    """The two networks of an avatar."""

    def generate(self, expression: torch.Tensor, pose: torch.Tensor) -> GaussianSet:
        """(53,), (6,) -> world-space Gaussians for the avatar's camera."""
        ...

    def upsample(self, features: torch.Tensor) -> torch.Tensor:
        """(H, W, C) rasterized image -> (fH, fW, 3) RGB."""
        ...


class ModuleStages:
    """The avatar's torch modules as they are (their device, their train/eval mode, autograd on).

    `skip_unblended` (training) runs each MLP only where its blend weight is non-zero
    (GaussianHeadModel.deformation)."""

    def __init__(self, model: torch.nn.Module, sr: SuperResolution, skip_unblended: bool = False) -> None:
        self.model, self.sr = model, sr
        self.skip_unblended = skip_unblended

    def generate(self, expression: torch.Tensor, pose: torch.Tensor) -> GaussianSet:
        return self.model(expression, pose, self.skip_unblended)

    def upsample(self, features: torch.Tensor) -> torch.Tensor:
        return self.sr(features.permute(2, 0, 1)[None])[0].permute(1, 2, 0)


class _NoTiming:
    """Stands in for a per-frame timing record where nothing is timed."""

    @contextlib.contextmanager
    def stage(self, name: str):
        yield

    def record(self, name: str, seconds: float) -> None:
        pass


NO_TIMING = _NoTiming()


@dataclass
class Rendered:
    features: torch.Tensor  # (H, W, C) the rasterized feature image over the white background
    rgb: torch.Tensor  # (fH, fW, 3) the SR output, not clamped
    alpha: torch.Tensor  # (H, W, 1) the rasterized opacity


class RenderPipeline:
    """One avatar's networks and a rasterizer; renders (expression, pose) seen by a camera."""

    def __init__(self, stages: Stages, raster: str = "cpu") -> None:
        self.stages = stages
        self.raster = raster

    def render(self, expression: torch.Tensor, pose: torch.Tensor, camera: Camera, timing=NO_TIMING) -> Rendered:
        return self.rasterize_and_upsample(self.generate(expression, pose, timing), camera, timing)

    def generate(self, expression: torch.Tensor, pose: torch.Tensor, timing=NO_TIMING) -> GaussianSet:
        """The first stage alone: a live loop may run it on another thread than the other two."""
        with timing.stage(GENERATE):
            return self.stages.generate(expression, pose)

    def rasterize_and_upsample(self, gaussians: GaussianSet, camera: Camera, timing=NO_TIMING) -> Rendered:
        with timing.stage(RASTERIZE):
            features = gaussians.features
            background = torch.ones(features.shape[1], dtype=features.dtype, device=features.device)
            result = render_gaussians(gaussians, camera, background=background, backend=self.raster)
        with timing.stage(SR):
            rgb = self.stages.upsample(result.image)
        return Rendered(features=result.image, rgb=rgb, alpha=result.alpha)


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """(H, W, 3) RGB in [0, 1] (clamped) -> uint8 numpy on the host, rounded to nearest."""
    return (rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
