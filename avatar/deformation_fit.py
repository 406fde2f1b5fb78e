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


class DeformationPriorLoss:
    """How far f_def^exp is from `surface`'s motion, on points sampled where the motion is.

    Most of the head barely moves: each of the 53 expressions (one at a time at full weight, gaze
    included) gets the same share of the samples, spread over the points in proportion to how far
    it moves them, so a blink's few eyelid points are seen as often as the jaw's thousands; plus a
    floor everywhere. Squared errors are relative to how far each point can move (floored), so
    that an eyelid's millimetres weigh as much as the jaw's centimetres. The rest positions and
    blend weights are the model's as they are now (detached: the loss is about the MLP), so the
    loss also holds while training moves the Gaussians a little.
    """

    def __init__(self, surface: DeformationTarget) -> None:
        self.surface = surface
        self.rest = torch.as_tensor(surface.points)
        with torch.no_grad():
            motion = (surface.deformed(torch.eye(N_EXPRESSION)) - self.rest).norm(dim=-1)  # (53, N)
            share = motion / motion.sum(1, keepdim=True).clamp_min(1e-12)
        weights = share.sum(0)
        self.weights = weights + 0.1 * weights.mean()
        self.inv_scale2 = motion.max(0).values.clamp_min(MOTION_FLOOR).pow(-2)

    def __call__(self, model: GaussianHeadModel, expressions: torch.Tensor, per: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean relative squared error, offset errors (B·per, 3)) for `expressions` (B, 53), `per`
        sampled points each."""
        c = model.config
        device = model.positions.device
        groups = expressions.shape[0]
        idx = torch.multinomial(self.weights, groups * per, replacement=True, generator=generator).reshape(groups, per)
        with torch.no_grad():
            target = (self.surface.deformed(expressions.cpu(), idx) - self.rest[idx]).to(device)
            points = model.positions.detach()[idx.reshape(-1).to(device)]
            x_enc = positional_encoding(points, c.pos_freqs)
            lam = model.blend(points)[0]
        e = expressions.to(device)
        inputs = torch.cat([x_enc, e[:, None, :].expand(-1, per, -1).reshape(-1, N_EXPRESSION)], -1)
        diff = c.deform_scale * lam * model.exp_deform_mlp(inputs) - target.reshape(-1, 3)
        loss = ((diff * diff).sum(-1) * self.inv_scale2[idx].reshape(-1).to(device)).mean()
        return loss, diff.detach()


def fit_expression_deformation(model: GaussianHeadModel, surface: DeformationTarget, steps: int, batch: int,
                               lr: float, generator: torch.Generator,
                               progress: Callable[[int], None] | None = None,
                               expressions: Callable[[int, torch.Generator], torch.Tensor] = random_expressions
                               ) -> float:
    """Adam on f_def^exp: the model's canonical offset against `surface`'s offset for
    `expressions(count, generator)` ((count, 53)); returns the last step's mean offset error
    (canonical units, over the importance-sampled points)."""
    opt = torch.optim.Adam(model.exp_deform_mlp.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    prior = DeformationPriorLoss(surface)
    groups = 64
    err = float("nan")
    for _ in range(steps):
        loss, diff = prior(model, expressions(groups, generator), batch // groups, generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        err = float(diff.norm(dim=-1).mean())
        if progress is not None:
            progress(1)
    return err
