"""Gaussian rasterizers: `rasterize` / `render_gaussians` with a CPU (C++) and a gsplat (CUDA) backend."""
from avatar.raster.render import BACKENDS, RenderResult, rasterize, render_gaussians

__all__ = ["BACKENDS", "RenderResult", "rasterize", "render_gaussians"]
