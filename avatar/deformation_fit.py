"""Fitting f_def^exp to a known expression deformation (a 3DMM's blendshapes).

Used by the demo mannequin (whose Gaussians sit on the face model) and by training, where the
tracked face model's blendshapes give the deformation MLP its start (avatar.face_model_prior).
"""
from __future__ import annotations

from typing import Callable, Protocol

import numpy as np
import torch

from avatar.encoding import positional_encoding
from avatar.head_model import GaussianHeadModel
from tracking.params import N_EXPRESSION

MOTION_FLOOR = 0.02  # canonical units (~5 mm): the f_def^exp fit weighs errors relative to max(motion, this)


class DeformationTarget(Protocol):
    """Where the model's Gaussians should go: their rest positions and positions per expression."""

    points: np.ndarray  # (N, 3) rest positions, the model's X0

    def deformed(self, expression: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 53) -> (B, N, 3) deformed positions; with `index` (B, M) only those points."""


def random_expressions(count: int, generator: torch.Generator) -> torch.Tensor:
    """(count, 53) sparse random expressions: each channel active with probability 0.15 at a
    uniform weight; a tenth of the rows are single channels at a uniform weight, a twentieth
    are neutral (all zeros)."""
    active = torch.rand(count, N_EXPRESSION, generator=generator) < 0.15
    e = torch.rand(count, N_EXPRESSION, generator=generator) * active
    kind = torch.rand(count, generator=generator)
    single = kind < 0.1
    if single.any():
        k = torch.randint(0, N_EXPRESSION, (int(single.sum()),), generator=generator)
        rows = torch.zeros(int(single.sum()), N_EXPRESSION)
        rows[torch.arange(len(k)), k] = torch.rand(len(k), generator=generator)
        e[single] = rows
    e[(kind >= 0.1) & (kind < 0.15)] = 0.0
    return e


def fit_expression_deformation(model: GaussianHeadModel, surface: DeformationTarget, steps: int, batch: int,
                               lr: float, generator: torch.Generator,
                               progress: Callable[[int], None] | None = None,
                               expressions: Callable[[int, torch.Generator], torch.Tensor] = random_expressions
                               ) -> float:
    """Adam on f_def^exp: the model's canonical offset against `surface`'s offset for
    `expressions(count, generator)` ((count, 53)); returns the last step's mean offset error
    (canonical units, over the importance-sampled points)."""
    mlp = model.exp_deform_mlp
    opt = torch.optim.Adam(mlp.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.05)
    c = model.config
    with torch.no_grad():
        x_enc = positional_encoding(model.positions, c.pos_freqs)
        lam = model.blend()[0]
        rest = torch.as_tensor(surface.points)
    # Most of the head barely moves: sample points where the motion is. Each of the 53
    # expressions (one at a time at full weight, gaze included) gets the same share of the
    # samples, spread over the points in proportion to how far it moves them, so a blink's few
    # eyelid points are seen as often as the jaw's thousands; plus a floor everywhere.
    with torch.no_grad():
        motion = (surface.deformed(torch.eye(N_EXPRESSION)) - rest).norm(dim=-1)  # (53, N)
        share = motion / motion.sum(1, keepdim=True).clamp_min(1e-12)
    weights = share.sum(0)
    weights = weights + 0.1 * weights.mean()
    # Squared errors relative to how far each point can move (floored), so that an eyelid's
    # millimetres weigh as much as the jaw's centimetres.
    inv_scale2 = motion.max(0).values.clamp_min(MOTION_FLOOR).pow(-2)
    groups = 64
    per = batch // groups
    err = float("nan")
    for step in range(steps):
        e = expressions(groups, generator)
        idx = torch.multinomial(weights, groups * per, replacement=True, generator=generator).reshape(groups, per)
        with torch.no_grad():
            target = surface.deformed(e, idx) - rest[idx]
        inputs = torch.cat([x_enc[idx], e[:, None, :].expand(-1, per, -1)], -1).reshape(-1, x_enc.shape[1] + N_EXPRESSION)
        pred = c.deform_scale * lam[idx].reshape(-1, 1) * mlp(inputs)
        diff = pred - target.reshape(-1, 3)
        loss = ((diff * diff).sum(-1) * inv_scale2[idx].reshape(-1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        err = float(diff.detach().norm(dim=-1).mean())
        if progress is not None:
            progress(1)
    return err
