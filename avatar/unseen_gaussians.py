"""Which Gaussians some training frame shows: the others are dropped from the saved avatar.

Where the dataset's crop reaches past the video's frame, training cuts every render to that frame
(training_data.cut_to_frame), so Gaussians that only ever land on the padding (the neck below the
video's bottom edge, say) get no gradient and keep whatever they started with. A live render is
not cut, and there they would show as a smudge under the chin; dropping them lets the neck fade
out as it did before the cut.
"""
from __future__ import annotations

import numpy as np
import torch

from avatar.head_model import GaussianHeadModel
from avatar.training_data import TrainingData

# Training frames spread over the video whose views are checked: a head's motion in one video
# moves a Gaussian by a few pixels, so a few dozen views see every one that any frame does.
VIEWS = 32


def seen_in_frame(model: GaussianHeadModel, data: TrainingData, resolution: int, views: int = VIEWS) -> torch.Tensor:
    """(N,) bool: the Gaussians whose posed centre falls inside the video's frame (window >= 0.5)
    in at least one of `views` training frames at `resolution`; all of them without a window."""
    window = data.frame_window(resolution)
    n = model.num_gaussians
    if window is None:
        return torch.ones(n, dtype=torch.bool)
    device = model.positions.device
    window = window.to(device)
    seen = torch.zeros(n, dtype=torch.bool, device=device)
    picks = np.linspace(0, len(data) - 1, min(views, len(data))).round().astype(int)
    with torch.no_grad():
        for j in picks:
            j = int(j)
            means = model(data.expression[j].to(device), data.pose[j].to(device)).means
            col, row, inside, _ = data.camera(j, resolution).to(device).pixel_under(means)
            seen |= inside & (window[row, col] >= 0.5)
    return seen.cpu()
