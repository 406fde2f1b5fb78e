"""The gsplat backend (CUDA): gsplat 1.5.3's `rasterization` with the settings the CPU backend mirrors.

gsplat is imported here, on first use, never on the CPU path. It computes in float32; other
dtypes are converted on the way in and back on the way out. gsplat's PyPI wheel compiles its
CUDA kernels on first import of `gsplat.cuda._backend` and leaves them unset (None) when it
finds no CUDA toolkit; that case is reported here in one line instead of failing later inside
gsplat with an AttributeError.
"""
from __future__ import annotations

import torch

from avatar.raster.projection import EPS2D, FAR_PLANE, NEAR_PLANE

TILE_SIZE = 16
INSTALL_HINT = "pip install 'splatcam[gpu]'"


def _gsplat():
    """The gsplat module with its CUDA kernels loaded (compiled on first use), else ValueError."""
    try:
        import gsplat
    except ImportError as e:
        raise ValueError(f"backend 'gsplat' needs the gsplat package ({INSTALL_HINT})") from e
    try:
        from gsplat.cuda._backend import _C
    except Exception as e:  # a failing JIT build or a stale library raises several types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"gsplat could not build or load its CUDA kernels: {first}") from e
    if _C is None:
        raise ValueError("gsplat is installed but has no CUDA kernels: it found no CUDA toolkit (nvcc) to "
                         "compile them; install the toolkit matching torch.version.cuda and set CUDA_HOME")
    return gsplat


def rasterize_gsplat(means, quats, scales, opacities, features, viewmat, K, width, height, background):
    """(image (H, W, C), alpha (H, W, 1), depth (H, W, 1)); inputs already validated, on CUDA."""
    gsplat = _gsplat()
    dtype = means.dtype
    f32 = [t.float() for t in (means, quats, scales, opacities, features, viewmat, K)]
    means, quats, scales, opacities, features, viewmat, K = f32
    # "RGB+ED" appends the expected depth (accumulated z / alpha, background 0) as a last channel.
    # channel_chunk: all channels in one pass. gsplat's default (32) would composite 32 features
    # + depth in two passes (32, then 1) although it has a 33-channel kernel; other counts are
    # padded to its next kernel size; a pass takes at most 512 channels here.
    colors, alphas, _ = gsplat.rasterization(
        means, quats, scales, opacities, features, viewmat[None], K[None], width, height,
        near_plane=NEAR_PLANE, far_plane=FAR_PLANE, radius_clip=0.0, eps2d=EPS2D, packed=False,
        tile_size=TILE_SIZE, backgrounds=None if background is None else background.float()[None],
        render_mode="RGB+ED", rasterize_mode="classic", channel_chunk=min(features.shape[-1] + 1, 512))
    colors, alpha = colors[0].to(dtype), alphas[0].to(dtype)
    return colors[..., :-1], alpha, colors[..., -1:]


def gsplat_ready() -> str | None:
    """None when the gsplat backend can run here, else the reason it cannot (compiles gsplat's
    kernels on the first call in a fresh environment, as the first render would)."""
    if not torch.cuda.is_available():
        return "no CUDA GPU is available"
    try:
        _gsplat()
    except ValueError as e:
        return str(e)
    return None
