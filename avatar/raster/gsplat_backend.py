"""The gsplat backend (CUDA): gsplat 1.5.3's `rasterization` with the settings the CPU backend mirrors.

gsplat is imported here, on first use, never on the CPU path. It computes in float32; other
dtypes are converted on the way in and back on the way out.
"""
from __future__ import annotations

import torch

from avatar.raster.projection import EPS2D, FAR_PLANE, NEAR_PLANE

TILE_SIZE = 16


def rasterize_gsplat(means, quats, scales, opacities, features, viewmat, K, width, height, background):
    """(image (H, W, C), alpha (H, W, 1), depth (H, W, 1)); inputs already validated, on CUDA."""
    try:
        import gsplat
    except ImportError as e:
        raise ValueError("backend 'gsplat' needs the gsplat package (pip install 'splatcam[gpu]')") from e
    dtype = means.dtype
    f32 = [t.float() for t in (means, quats, scales, opacities, features, viewmat, K)]
    means, quats, scales, opacities, features, viewmat, K = f32
    # "RGB+ED" appends the expected depth (accumulated z / alpha, background 0) as a last channel.
    colors, alphas, _ = gsplat.rasterization(
        means, quats, scales, opacities, features, viewmat[None], K[None], width, height,
        near_plane=NEAR_PLANE, far_plane=FAR_PLANE, radius_clip=0.0, eps2d=EPS2D, packed=False,
        tile_size=TILE_SIZE, backgrounds=None if background is None else background.float()[None],
        render_mode="RGB+ED", rasterize_mode="classic")
    colors, alpha = colors[0].to(dtype), alphas[0].to(dtype)
    return colors[..., :-1], alpha, colors[..., -1:]


def gsplat_ready() -> str | None:
    """None when the gsplat backend can run here, else the reason it cannot."""
    if not torch.cuda.is_available():
        return "no CUDA GPU is available"
    try:
        import gsplat  # noqa: F401
    except ImportError:
        return "the gsplat package is not installed (pip install 'splatcam[gpu]')"
    return None
