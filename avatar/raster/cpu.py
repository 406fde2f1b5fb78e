"""The CPU rasterizer backend: torch projection + the C++ tile rasterizer, with autograd.

The C++ part (tile_raster.cpp) is compiled on first use with torch's cpp_extension (g++,
ninja, OpenMP) and cached under $TORCH_EXTENSIONS_DIR, else the splatcam user cache
(~/.cache/splatcam/extensions); later processes load the cached library in milliseconds.
It runs on torch's intra-op thread count (torch.set_num_threads).

Depth is gsplat's "ED" expected depth: the composited view-space z divided by alpha
(clamped at 1e-10), 0 where nothing was drawn. As in gsplat's "RGB+ED" mode it is rendered
as one extra feature channel whose background is 0.
"""
from __future__ import annotations

import functools
import logging
import os
import shutil
import sys
import threading
from pathlib import Path

import torch

from avatar.raster.projection import project_gaussians
from core.paths import user_cache_dir

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("tile_raster.cpp")
MIN_ALPHA_FOR_DEPTH = 1e-10
_LOAD_LOCK = threading.Lock()  # the library registers its ops once per process


def _cpu_has(*flags: str) -> bool:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    present = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            present.update(line.split(":", 1)[1].split())
    return all(f in present for f in flags)


def _ops():
    with _LOAD_LOCK:
        return _build_and_load()


@functools.cache
def _build_and_load():
    from torch.utils import cpp_extension

    # AVX2/FMA make the per-pixel loops ~15% faster; the name keeps the two builds apart when
    # one cache directory serves machines with different CPUs.
    simd = _cpu_has("avx2", "fma")
    name = "splatcam_tile_raster" + ("_avx2" if simd else "")
    base = Path(os.environ.get("TORCH_EXTENSIONS_DIR", user_cache_dir() / "extensions"))
    build_dir = base / f"{name}-torch{torch.__version__}-py{sys.version_info.major}{sys.version_info.minor}"
    build_dir.mkdir(parents=True, exist_ok=True)
    venv_bin = Path(sys.executable).parent
    if shutil.which("ninja") is None and (venv_bin / "ninja").exists():
        # pip's ninja lives beside the interpreter, which is not on PATH without an activated venv.
        os.environ["PATH"] = f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"
    if not (build_dir / f"{name}.so").exists():
        logger.info("compiling the CPU rasterizer into %s (once, ~15 s)", build_dir)
    try:
        cpp_extension.load(name=name, sources=[str(SOURCE)], build_directory=str(build_dir),
                           extra_cflags=["-O3", "-fopenmp"] + (["-mavx2", "-mfma"] if simd else []),
                           extra_ldflags=["-fopenmp"], is_python_module=False, verbose=False)
    except Exception as e:  # compiler missing or failing: say so in one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RuntimeError(f"could not build the CPU rasterizer from {SOURCE} (needs g++ and ninja): {first}") from e
    return torch.ops.splatcam_raster


def build_extension() -> None:
    """Compile (or load) the C++ rasterizer now, e.g. before timing anything."""
    _ops()


class _TileRasterize(torch.autograd.Function):
    """Projected 2D Gaussians -> (image without background (H, W, D), alpha (H, W))."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, features, depths, radii, width, height):
        ops = _ops()
        means2d, conics = means2d.contiguous(), conics.contiguous()
        opacities, features = opacities.contiguous(), features.contiguous()
        offsets, ids = ops.bin_tiles(means2d, radii.contiguous(), depths, width, height)
        image, transmittance, last = ops.rasterize_forward(means2d, conics, opacities, features, offsets, ids,
                                                           width, height)
        ctx.save_for_backward(means2d, conics, opacities, features, offsets, ids, transmittance, last)
        ctx.size = (width, height)
        return image, 1.0 - transmittance

    @staticmethod
    def backward(ctx, v_image, v_alpha):
        means2d, conics, opacities, features, offsets, ids, transmittance, last = ctx.saved_tensors
        width, height = ctx.size
        if v_image is None:
            v_image = features.new_zeros(height, width, features.shape[1])
        v_alpha = torch.zeros_like(transmittance) if v_alpha is None else v_alpha
        v_image, v_alpha = v_image.contiguous(), v_alpha.contiguous()
        grads = _ops().rasterize_backward(means2d, conics, opacities, features, offsets, ids, transmittance, last,
                                          v_image, v_alpha, width, height)
        return (*grads, None, None, None, None)


def rasterize_cpu(means, quats, scales, opacities, features, viewmat, K, width, height, background):
    """(image (H, W, C), alpha (H, W, 1), depth (H, W, 1)); inputs already validated."""
    proj = project_gaussians(means, quats, scales, opacities, viewmat, K, width, height)
    channels = torch.cat([features.index_select(0, proj.index), proj.depths[:, None]], 1)
    rendered, alpha = _TileRasterize.apply(proj.means2d, proj.conics, opacities.index_select(0, proj.index),
                                           channels, proj.depths.detach(), proj.radii, width, height)
    alpha = alpha[..., None]
    image, depth_sum = rendered[..., :-1], rendered[..., -1:]
    if background is not None:
        image = image + (1.0 - alpha) * background
    return image, alpha, depth_sum / alpha.clamp_min(MIN_ALPHA_FOR_DEPTH)
