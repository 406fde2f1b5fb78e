"""Held-out evaluation: PSNR / SSIM of renders against ground truth, and the mean-image baseline.

Everything is compared at the avatar's output resolution (SR_FACTOR x its render size), on the
white-composited ground truth of the held-out frames, with the tracked pose and expression of
each frame (no per-frame refinement: those frames were never trained on). Where the dataset's
crop reaches past the video's frame, the render is cut to that frame first (render_sample with
avatar.video_frame), as the ground truth was: the padding there is white in every frame
and says nothing about the person. The baseline renders nothing: it predicts the mean training
image for every held-out frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from avatar.metrics import psnr, ssim
from avatar.training_data import TrainingData, resized


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


def mean_image(images: Iterable[torch.Tensor], resolution: int) -> torch.Tensor:
    """(R, R, 3) float mean of (S, S, 3) uint8 images, each area-averaged to R first; the images
    are streamed, so a long training set never has to be in memory at once."""
    total = torch.zeros(resolution, resolution, 3, dtype=torch.float64)
    count = 0
    for image in images:
        total += resized(image.float() / 255, resolution).double()
        count += 1
    return (total / max(1, count)).float()


def mean_image_baseline(mean: torch.Tensor, heldout: TrainingData, resolution: int) -> EvalResult:
    """Scores of predicting `mean` (mean_image of the training frames) for every held-out frame."""
    return evaluate_renders(lambda j: mean, heldout, resolution)
