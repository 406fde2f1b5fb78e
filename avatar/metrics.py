"""Image quality metrics for evaluation: PSNR and SSIM.

Images are float arrays/tensors in [0, 1], (H, W, C). SSIM is Wang et al. 2004 with the usual
constants: an 11x11 Gaussian window of σ = 1.5, K1 = 0.01, K2 = 0.03, data range 1, computed
per channel over the "valid" region (no padding) and averaged.
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def _as_tensor(x) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64)


def mse(a, b) -> float:
    return float(((_as_tensor(a) - _as_tensor(b)) ** 2).mean())


def psnr(a, b) -> float:
    """Peak signal-to-noise ratio in dB for data range 1 (inf for identical images)."""
    m = mse(a, b)
    return math.inf if m == 0 else 10 * math.log10(1.0 / m)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x * x / (2 * sigma * sigma))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(a, b, window: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> float:
    """Mean SSIM of two (H, W, C) or (H, W) images in [0, 1]."""
    x, y = _as_tensor(a), _as_tensor(b)
    if x.shape != y.shape:
        raise ValueError(f"SSIM needs images of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    if min(x.shape[:2]) < window:
        raise ValueError(f"SSIM needs images of at least {window}x{window} pixels, got {tuple(x.shape[:2])}")
    c = x.shape[2]
    # The 2-D Gaussian window is separable: two 1-D passes cost 2k instead of k² per pixel.
    g = gaussian_window(window, sigma).sum(0)
    wy = g.reshape(1, 1, -1, 1).expand(c, 1, -1, -1)
    wx = g.reshape(1, 1, 1, -1).expand(c, 1, -1, -1)
    x, y = x.permute(2, 0, 1)[None], y.permute(2, 0, 1)[None]

    def filt(t):
        return F.conv2d(F.conv2d(t, wy, groups=c), wx, groups=c)

    mx, my = filt(x), filt(y)
    sxx = filt(x * x) - mx * mx
    syy = filt(y * y) - my * my
    sxy = filt(x * y) - mx * my
    c1, c2 = k1 ** 2, k2 ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())
