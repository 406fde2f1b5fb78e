"""Held-out evaluation: PSNR / SSIM of renders against ground truth, and the mean-image baseline.

Everything is compared at the avatar's output resolution (SR_FACTOR x its render size), on the
white-composited ground truth of the held-out frames, with the tracked pose and expression of
each frame (no per-frame refinement: those frames were never trained on). The baseline renders
nothing: it predicts the mean training image for every held-out frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from avatar.metrics import psnr, ssim
from avatar.training_data import TrainingData


@dataclass
class EvalResult:
    psnr: float
    ssim: float
    frames: int


def evaluate_renders(render: Callable[[int], torch.Tensor], data: TrainingData, resolution: int,
                     on_frame: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
                     progress: Callable[[Iterator, str, int], Iterator] | None = None) -> EvalResult:
    """Mean PSNR / SSIM of `render(j)` ((H, W, 3) in [0, 1]) against sample j's ground truth."""
    wrap = progress or (lambda it, label, total: it)
    psnrs, ssims = [], []
    for j in wrap(range(len(data)), "evaluate", len(data)):
        with torch.no_grad():
            pred = render(j).detach().clamp(0, 1).cpu().double().numpy()
        gt = data.image(j, resolution).double().numpy()
        psnrs.append(psnr(pred, gt))
        ssims.append(ssim(pred, gt))
        if on_frame is not None:
            on_frame(j, pred, gt)
    return EvalResult(float(np.mean(psnrs)), float(np.mean(ssims)), len(psnrs))


def mean_image(data: TrainingData, resolution: int) -> torch.Tensor:
    total = torch.zeros(resolution, resolution, 3, dtype=torch.float64)
    for j in range(len(data)):
        total += data.image(j, resolution).double()
    return (total / max(1, len(data))).float()


def mean_image_baseline(train: TrainingData, heldout: TrainingData, resolution: int) -> EvalResult:
    mean = mean_image(train, resolution)
    return evaluate_renders(lambda j: mean, heldout, resolution)
