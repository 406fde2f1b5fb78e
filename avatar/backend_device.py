"""The torch device a rasterizer backend renders on (kept apart from avatar.raster so commands
can check their arguments before the rasterizer is loaded)."""
from __future__ import annotations

import torch


def backend_device(backend: str, option: str = "--backend") -> torch.device:
    """CUDA for gsplat, the CPU for cpu; a one-line error naming `option` when there is no GPU."""
    if backend == "gsplat":
        if not torch.cuda.is_available():
            raise ValueError(f"{option} gsplat needs a CUDA GPU; none is available here (use {option} cpu)")
        return torch.device("cuda")
    if backend != "cpu":
        raise ValueError(f"unknown backend {backend!r}; choose cpu or gsplat")
    return torch.device("cpu")
