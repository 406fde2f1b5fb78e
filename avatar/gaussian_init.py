"""Gaussian initialisation from the mesh stage (seed 2.1 -> 2.2).

Positions: `num_points` points sampled uniformly (by area) on the extracted neutral DMTet mesh,
any `extra_points` the caller adds (training's eyelid points, avatar.face_model_prior), plus the
reference's extra points in a box around the mouth (GaussianHeadModel.from_points).
Features F0: the geometry MLP's feature at each point (the same pre-tanh feature the mesh stage
coloured its vertices with), zeros for the mouth points. P0: the mesh stage's optimised
landmarks. The deformation and colour MLPs are inherited as they are ("deformation and color
MLPs are also inherited"); the attribute MLPs start fresh, as in the reference, but with a
zero last layer.
"""
from __future__ import annotations

import torch

from avatar.config import ModelConfig
from avatar.dmtet import Mesh
from avatar.head_model import GaussianHeadModel
from avatar.mesh_stage import MeshHead

INHERITED_MLPS = ("exp_deform_mlp", "pose_deform_mlp", "exp_color_mlp", "pose_color_mlp")


def sample_surface(mesh: Mesh, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` points uniform over the mesh's area (area-weighted face choice, uniform barycentrics)."""
    tri = mesh.vertices.detach()[mesh.faces]
    area = 0.5 * torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1).norm(dim=-1)
    if mesh.num_faces == 0 or float(area.sum()) <= 0:
        raise ValueError("the mesh stage produced an empty mesh; cannot place Gaussians on it")
    face = torch.multinomial(area, count, replacement=True, generator=generator)
    u, v = torch.rand(count, generator=generator), torch.rand(count, generator=generator)
    flip = u + v > 1  # fold the unit square onto the triangle
    u, v = torch.where(flip, 1 - u, u), torch.where(flip, 1 - v, v)
    t = tri[face]
    return t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])


def gaussians_from_mesh_head(mesh_head: MeshHead, config: ModelConfig, seed: int = 0,
                             extra_points: torch.Tensor | None = None) -> GaussianHeadModel:
    if config.mlp_dims() != mesh_head.head.config.mlp_dims():
        raise ValueError("the mesh stage was trained with other MLP sizes; its MLPs cannot be inherited")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        mesh, _ = mesh_head.neutral_mesh()
        points = sample_surface(mesh, config.num_points, gen)
        if extra_points is not None:
            points = torch.cat([points, extra_points.to(points.dtype)])
        features = mesh_head.geometry_at(points)[2]
        model = GaussianHeadModel.from_points(config, points, mesh_head.head.landmarks.detach(),
                                              features=features, seed=seed)
        for name in INHERITED_MLPS:
            getattr(model, name).load_state_dict(getattr(mesh_head.head, name).state_dict())
        # The fresh attribute MLPs start at zero offsets, so the first frames render the
        # initialised Gaussians as they are rather than randomly rotated, resized and faded.
        for mlp in (model.exp_attributes_mlp, model.pose_attributes_mlp):
            mlp.zero_output()
    return model


def fit_colors(model: GaussianHeadModel, colors: torch.Tensor, weight: torch.Tensor, expressions: torch.Tensor,
               poses: torch.Tensor, steps: int, generator: torch.Generator, lr: float = 1e-2) -> float:
    """Adam on F0 and the colour MLPs so that the first three channels of C' match `colors` (N, 3)
    for the given frames' expressions (T, 53) and poses (T, 6); `weight` (N,) > 0 marks the
    Gaussians whose colour is known. Returns the last step's weighted mean L1."""
    params = [model.features] + list(model.exp_color_mlp.parameters()) + list(model.pose_color_mlp.parameters())
    opt = torch.optim.Adam([{"params": [model.features], "lr": lr},
                            {"params": params[1:], "lr": 0.1 * lr}])
    w = (weight / weight.sum().clamp_min(1e-12))[:, None]
    err = float("nan")
    for _ in range(steps):
        j = int(torch.randint(len(expressions), (1,), generator=generator))
        color = model.deform_points(model.positions, model.features, expressions[j], poses[j], skip_unblended=True,
                                    attributes=False).color[:, :3]
        loss = ((color - colors).abs() * w).sum() / 3
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        err = float(loss.detach())
    return err
