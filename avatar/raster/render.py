"""The rasterizer interface: one call, several backends (see DESIGN.md, "Rasterization").

    rasterize(means, quats, scales, opacities, features, viewmat, K, width, height,
              background=None, backend="cpu") -> RenderResult

Backends: "cpu" (any machine; C++ tile rasterizer with autograd, avatar/raster/cpu.py) and
"gsplat" (CUDA; gsplat 1.5.3). Both follow gsplat's conventions, so they agree to rendering
tolerance. Depth is the expected view-space depth Σ w_i z_i / alpha (gsplat's "ED"), 0 where
alpha is 0. All inputs are computed in `means.dtype` (float32 or float64); viewmat and K are
moved to the Gaussians' device and dtype.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

from avatar.camera import Camera
from avatar.gaussians import GaussianSet

BACKENDS = ("cpu", "gsplat")


@dataclass
class RenderResult:
    image: torch.Tensor  # (H, W, C) features composited over the background
    alpha: torch.Tensor  # (H, W, 1) accumulated opacity
    depth: torch.Tensor  # (H, W, 1) expected camera-space z, 0 where nothing was drawn


def rasterize(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
              features: torch.Tensor, viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int,
              background: torch.Tensor | None = None, backend: str = "cpu") -> RenderResult:
    """Render N Gaussians (world space) with a pinhole camera (OpenCV axes); see the module doc."""
    _check_inputs(means, quats, scales, opacities, features, viewmat, K, width, height, background)
    _check_backend(backend, means.device)
    width, height = int(width), int(height)
    dtype, device = means.dtype, means.device
    quats, scales, opacities, features = (t.to(dtype) for t in (quats, scales, opacities, features))
    viewmat, K = viewmat.to(device=device, dtype=dtype), K.to(device=device, dtype=dtype)
    if background is not None:
        background = background.to(dtype)
    if backend == "cpu":
        from avatar.raster.cpu import rasterize_cpu as run
    else:
        from avatar.raster.gsplat_backend import rasterize_gsplat as run
    image, alpha, depth = run(means, quats, scales, opacities, features, viewmat, K, width, height, background)
    return RenderResult(image=image, alpha=alpha, depth=depth)


def render_gaussians(gaussians: GaussianSet, camera: Camera, background: torch.Tensor | None = None,
                     backend: str = "cpu") -> RenderResult:
    """`rasterize` for a GaussianSet seen by a Camera."""
    return rasterize(gaussians.means, gaussians.quats, gaussians.scales, gaussians.opacities,
                     gaussians.features, camera.viewmat, camera.K, camera.width, camera.height,
                     background=background, backend=backend)


def _check_backend(backend: str, device: torch.device) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown rasterizer backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "cpu" and device.type != "cpu":
        raise ValueError(f"backend 'cpu' needs CPU tensors, got tensors on {device}")
    if backend == "gsplat":
        if not torch.cuda.is_available():
            raise ValueError("backend 'gsplat' needs a CUDA GPU and none is available here; use backend='cpu'")
        if device.type != "cuda":
            raise ValueError(f"backend 'gsplat' needs CUDA tensors, got tensors on {device}")


def _check_inputs(means, quats, scales, opacities, features, viewmat, K, width, height, background) -> None:
    named = {"means": means, "quats": quats, "scales": scales, "opacities": opacities, "features": features,
             "viewmat": viewmat, "K": K}
    if background is not None:
        named["background"] = background
    for name, t in named.items():
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got {t.dtype}")
    if means.ndim != 2 or means.shape[1] != 3:
        raise ValueError(f"means must be (N, 3), got {tuple(means.shape)}")
    if means.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"means must be float32 or float64, got {means.dtype}")
    n = means.shape[0]
    for name, shape in (("quats", (n, 4)), ("scales", (n, 3)), ("opacities", (n,)), ("viewmat", (4, 4)),
                        ("K", (3, 3))):
        if tuple(named[name].shape) != shape:
            raise ValueError(f"{name} must be {shape}, got {tuple(named[name].shape)}")
    if features.ndim != 2 or features.shape[0] != n or features.shape[1] < 1:
        raise ValueError(f"features must be ({n}, C) with C >= 1, got {tuple(features.shape)}")
    if background is not None and tuple(background.shape) != (features.shape[1],):
        raise ValueError(f"background must be ({features.shape[1]},) to match features, got {tuple(background.shape)}")
    for name in ("quats", "scales", "opacities", "features") + (("background",) if background is not None else ()):
        if named[name].device != means.device:
            raise ValueError(f"{name} is on {named[name].device} but means is on {means.device}")
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    fx, fy = float(K[0, 0]), float(K[1, 1])
    if not (math.isfinite(fx) and math.isfinite(fy) and fx > 0 and fy > 0):
        raise ValueError(f"K must have positive finite focal lengths, got fx={fx}, fy={fy}")
