"""Geometry-guided initialisation (seed section 2.1): an SDF over a tet grid, DMTet, and guidance MLPs.

`MeshHead` holds
- the geometry MLP g(γ(x)) -> (SDF, DMTet vertex offset, feature), evaluated at the vertices of
  a tet grid generated around the tracked 3DMM head (avatar.tetgrid);
- a `GaussianHeadModel` used only for its expression/pose deformation and colour MLPs and its
  neutral landmarks P0, so that the Gaussian stage inherits them as they are (same classes,
  same sizes, same formula).

One step: DMTet extracts the neutral mesh (avatar.dmtet); its vertices x get features from the
geometry MLP and are deformed and coloured by the Gaussians' own code (GaussianHeadModel.deform_points):
    x' = x + s_def (λ_exp f_def^exp(γ(x), θ) + λ_pose f_def^pose(γ(x), γ(β)))
    c  = λ_exp f_col^exp(tanh F, θ) + λ_pose f_col^pose(tanh F, γ(β))
then posed by T(β) and rendered (avatar.mesh_render) for RGB (first three channels, on white)
and silhouette (alpha). The loss is seed 2.1's (avatar.losses):
    L_RGB + λ_sil L_sil + λ_def L_def + λ_offset L_offset + λ_lmk L_lmk + λ_lap L_lap,
with the MLPs and P0 optimised jointly.

Before the images are used, the SDF is fitted to a first guess (fit_initial_sdf): an ellipsoid
around the tracked 3DMM head (the identity's neutral mesh) carved by the visual hull of the
training masks, a far better start for a monocular video than the reference's sphere. The
deform MLPs start with a zero last layer (no deformation), so that guess is what is rendered first.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from avatar.config import ModelConfig
from avatar.dmtet import Mesh, marching_tets, mesh_edges
from avatar.encoding import positional_encoding
from avatar.head_model import GaussianHeadModel
from avatar.losses import (deformation_loss, landmark_sdf_loss, laplacian_loss, offset_loss, rgb_loss,
                           silhouette_loss)
from avatar.mesh_render import render_mesh
from avatar.mlp import PointMLP
from avatar.pose_transform import pose_points
from avatar.tetgrid import make_tet_grid
from avatar.train_config import MeshStageConfig
from avatar.training_data import TrainingData
from tracking.params import N_EXPRESSION


ELLIPSOID_GROWTH = 1.1
HULL_ELLIPSOID_GROWTH = 1.4  # with a visual hull to carve it, the ellipsoid can be generous
HULL_SDF_SCALE = 0.2  # units of SDF per unit of (0.5 - hull value)


@dataclass
class HeadPrior:
    """What the tracked 3DMM says about the head, in canonical space."""

    vertices: np.ndarray  # (V, 3) the identity's neutral head (face + head/neck regions)
    landmarks: np.ndarray  # (68, 3) its neutral landmarks: P0's start


def head_prior(identity: np.ndarray, data=None) -> HeadPrior:
    from tracking.face_model import CanonicalLandmarks, FaceModel, load_face_model_data

    data = load_face_model_data() if data is None else data
    ids = np.r_[np.arange(data.region("face").start, data.region("face").stop),
                np.arange(data.region("head_neck").start, data.region("head_neck").stop)]
    model = FaceModel.from_data(data)
    with torch.no_grad():
        verts = model.vertices(torch.as_tensor(identity, dtype=torch.float32)[None],
                               torch.zeros(1, N_EXPRESSION))[0].numpy()
    return HeadPrior(vertices=verts[ids], landmarks=CanonicalLandmarks(data)(identity, np.zeros((1, N_EXPRESSION)))[0])


class MeshHead(nn.Module):
    def __init__(self, model_config: ModelConfig, config: MeshStageConfig, box_lower, box_upper) -> None:
        super().__init__()
        self.config = config
        grid = make_tet_grid(config.grid_resolution, tuple(box_lower), tuple(box_upper))
        self.register_buffer("grid_vertices", grid.vertices)
        self.register_buffer("tets", grid.tets)
        self.register_buffer("grid_edges", grid.edges)
        self.register_buffer("tet_edges", grid.tet_edges)
        self.cell_size = grid.cell_size
        self.box = (tuple(float(v) for v in box_lower), tuple(float(v) for v in box_upper))
        self.pos_freqs = model_config.pos_freqs
        width = 3 * (1 + 2 * model_config.pos_freqs)
        self.geometry = PointMLP([width, *config.sdf_hidden, 1 + 3 + model_config.feature_dim])
        self.head = GaussianHeadModel(model_config, 1)  # its MLPs and P0; its single Gaussian is unused
        # Start without deformation: a random deform MLP would warp the initial head by up to
        # deform_scale (0.3 units, a third of the head) in a random direction.
        for mlp in (self.head.exp_deform_mlp, self.head.pose_deform_mlp):
            mlp.zero_output()

    @classmethod
    def around(cls, prior: HeadPrior, model_config: ModelConfig, config: MeshStageConfig) -> "MeshHead":
        lo = prior.vertices.min(0) - config.box_margin
        hi = prior.vertices.max(0) + config.box_margin
        mesh_head = cls(model_config, config, lo, hi)
        with torch.no_grad():
            mesh_head.head.landmarks.copy_(torch.as_tensor(prior.landmarks))
        return mesh_head

    def geometry_at(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(SDF (N,), raw vertex offset (N, 3), feature before tanh (N, F)) at canonical points."""
        out = self.geometry(positional_encoding(points, self.pos_freqs))
        return out[:, 0], out[:, 1:4], out[:, 4:]

    def neutral_mesh(self) -> tuple[Mesh, torch.Tensor]:
        """The DMTet mesh of the current SDF and its vertex features (pre-tanh)."""
        sdf, offset, _ = self.geometry_at(self.grid_vertices)
        verts = self.grid_vertices + torch.tanh(offset) * self.config.max_offset * self.cell_size
        mesh = marching_tets(verts, self.tets, sdf, self.grid_edges, self.tet_edges)
        features = self.geometry_at(mesh.vertices)[2] if mesh.vertices.shape[0] else mesh.vertices.new_zeros(
            0, self.head.config.feature_dim)
        return mesh, features

    def deform(self, points: torch.Tensor, features: torch.Tensor, expression: torch.Tensor,
               pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Posed points (N, 3), colours (N, C) and canonical offsets (N, 3): the Gaussian head's
        deformation of arbitrary points with their own features."""
        d = self.head.deform_points(points, features, expression, pose, attributes=False)
        # The seed's rigid T(β), even for an avatar with a torso: posing the mesh stage with the
        # torso as well gained nothing (BENCHMARKS.md, seventeenth round).
        posed = pose_points(points + d.offset, pose)
        return posed, d.color, d.offset

    def guidance_parameters(self) -> list[nn.Parameter]:
        """Geometry MLP and the four MLPs the Gaussian stage inherits (not the attribute MLPs)."""
        h = self.head
        mods = [self.geometry, h.exp_deform_mlp, h.pose_deform_mlp, h.exp_color_mlp, h.pose_color_mlp]
        return [p for m in mods for p in m.parameters()]

    def render(self, mesh: Mesh, features: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor,
               camera, backend: str = "cpu"):
        posed, color, offset = self.deform(mesh.vertices, features, expression, pose)
        background = torch.ones(color.shape[1], dtype=color.dtype, device=color.device)
        return render_mesh(posed, mesh.faces, color, camera, background=background, backend=backend), offset


def ellipsoid_sdf(points: torch.Tensor, center: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """A smooth approximation of an ellipsoid's SDF (exact on the surface and for spheres)."""
    return ((points - center) / radii).norm(dim=-1).sub(1.0) * radii.min()


def silhouette_hull(points: torch.Tensor, data: TrainingData, views: int = 32, resolution: int = 64) -> torch.Tensor:
    """(N,) mean foreground-mask value of canonical points projected into `views` training frames
    (spread over the video) with their tracked poses: ~1 inside the visual hull, ~0 outside.
    A point projecting outside the crop counts as background (the crop holds the whole head); one
    on the crop's padding past the video's frame counts as foreground (the padding shows nothing)."""
    picks = np.linspace(0, len(data) - 1, min(views, len(data))).round().astype(int)
    window = data.frame_window(resolution)
    total = torch.zeros(points.shape[0])
    for j in picks:
        cam = data.camera(int(j), resolution)
        pose = data.pose[int(j)]
        uv, depth = cam.project(pose_points(points, pose))
        grid = (uv / resolution * 2 - 1)[None, None]  # pixel edges at 0 and R -> -1 and 1
        mask = data.mask(int(j), resolution)
        if window is not None:
            mask = torch.maximum(mask, 1.0 - window)
        mask = mask[None, None]
        sampled = torch.nn.functional.grid_sample(mask, grid, align_corners=False, padding_mode="zeros")
        total += sampled.reshape(-1) * (depth > 0)
    return total / len(picks)


def fit_initial_sdf(mesh_head: MeshHead, prior: HeadPrior, steps: int, data: TrainingData | None = None,
                    seed: int = 0, progress: Callable | None = None) -> float:
    """Fit the SDF to a first guess of the head; returns the final mean abs error.

    Runs on the mesh head's device: every step evaluates the SDF at all grid vertices (~570k in
    the `full` profile), which takes seconds per step on a CPU.

    The guess is the ellipsoid around the 3DMM head; with training frames it is grown by
    HULL_ELLIPSOID_GROWTH and carved by the visual hull of the frames' masks (silhouette_hull):
    target = max(ellipsoid SDF, HULL_SDF_SCALE · (0.5 - hull)), so the surface starts where the
    hair, ears and neck are in the images, which the silhouette loss alone moves to only slowly.
    """
    verts = torch.as_tensor(prior.vertices)
    center = (verts.min(0).values + verts.max(0).values) / 2
    growth = ELLIPSOID_GROWTH if data is None else HULL_ELLIPSOID_GROWTH
    radii = growth * (verts.max(0).values - verts.min(0).values) / 2
    gen = torch.Generator().manual_seed(seed)
    lo, hi = (torch.tensor(b) for b in mesh_head.box)
    device = mesh_head.grid_vertices.device
    fixed = mesh_head.grid_vertices.cpu()

    def target(pts: torch.Tensor) -> torch.Tensor:
        t = ellipsoid_sdf(pts, center, radii)
        if data is not None:
            t = torch.maximum(t, HULL_SDF_SCALE * (0.5 - silhouette_hull(pts, data)))
        return t

    # Targets for the grid vertices and a fixed pool of random points in the box, computed once
    # (on the CPU, where the masks are).
    pool = torch.cat([fixed, lo + (hi - lo) * torch.rand(16384, 3, generator=gen)])
    goal = target(pool).to(device)
    pool = pool.to(device)
    opt = torch.optim.Adam(mesh_head.geometry.parameters(), lr=5e-3)
    err = math.inf
    iterations = range(steps) if progress is None else progress(range(steps), "mesh stage: initial SDF", steps)
    for _ in iterations:
        pick = torch.cat([torch.arange(fixed.shape[0]),
                          fixed.shape[0] + torch.randint(pool.shape[0] - fixed.shape[0], (1024,), generator=gen)])
        pick = pick.to(device)
        sdf = mesh_head.geometry_at(pool[pick])[0]
        loss = (sdf - goal[pick]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        err = float(loss.detach())
    return err


@dataclass
class MeshStageLog:
    rows: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def mesh_stage_loss(mesh_head: MeshHead, data: TrainingData, j: int, resolution: int,
                    config: MeshStageConfig, backend: str = "cpu") -> tuple[torch.Tensor, dict[str, float]]:
    """Seed 2.1's total loss on training sample j."""
    mesh, features = mesh_head.neutral_mesh()
    camera = mesh_head_camera(data, j, resolution, mesh_head.grid_vertices.device)
    expression, pose = data.expression[j].to(camera.K.device), data.pose[j].to(camera.K.device)
    rendered, offset = mesh_head.render(mesh, features, expression, pose, camera, backend)
    gt = data.image(j, resolution).to(camera.K.device)
    gt_mask = data.mask(j, resolution).to(camera.K.device)
    p = mesh_head.head.deform_landmarks(expression)
    terms = {
        "rgb": rgb_loss(data.framed(rendered.image[..., :3], 1.0), gt),
        "sil": silhouette_loss(data.framed(rendered.alpha, 0.0)[..., 0], gt_mask),
        "def": deformation_loss(p, data.landmarks3d[j].to(p.device)),
        "offset": offset_loss(offset) if offset.shape[0] else offset.sum(),
        "lmk": landmark_sdf_loss(mesh_head.geometry_at(mesh_head.head.landmarks)[0]),
        "lap": laplacian_loss(mesh.vertices, mesh_edges(mesh.faces)[0]) if mesh.num_faces else offset.sum(),
    }
    total = (terms["rgb"] + config.lambda_sil * terms["sil"] + config.lambda_def * terms["def"]
             + config.lambda_offset * terms["offset"] + config.lambda_lmk * terms["lmk"]
             + config.lambda_lap * terms["lap"])
    return total, {k: float(v.detach()) for k, v in terms.items()}


def mesh_head_camera(data: TrainingData, j: int, resolution: int, device):
    """Training sample j's camera at `resolution`, on `device`."""
    return data.camera(j, resolution).to(device)


def train_mesh_stage(mesh_head: MeshHead, data: TrainingData, config: MeshStageConfig, backend: str = "cpu",
                     seed: int = 0, progress: Callable | None = None,
                     on_log: Callable[[int, dict], None] | None = None) -> MeshStageLog:
    """Optimise the guidance model on the training frames (random frame per step)."""
    mesh_head.head.landmarks.requires_grad_(True)
    opt = torch.optim.Adam([
        {"params": mesh_head.guidance_parameters(), "lr": config.lr},
        {"params": [mesh_head.head.landmarks], "lr": config.lr_landmarks},
    ])
    rng = np.random.default_rng(seed)
    log = MeshStageLog()
    start = time.perf_counter()
    steps = range(config.steps)
    if progress is not None:
        steps = progress(steps, "mesh stage", config.steps)
    try:
        for step in steps:
            j = int(rng.integers(len(data)))
            total, terms = mesh_stage_loss(mesh_head, data, j, config.resolution, config, backend)
            opt.zero_grad()
            total.backward()
            opt.step()
            row = {"step": step + 1, "total": float(total.detach()), **terms}
            log.rows.append(row)
            if on_log is not None:
                on_log(step + 1, row)
    finally:
        mesh_head.head.landmarks.requires_grad_(False)
        log.seconds = time.perf_counter() - start
    return log
