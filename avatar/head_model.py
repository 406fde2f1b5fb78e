"""The dynamic Gaussian head model of Gaussian Head Avatar (seed section 2.3, DESIGN.md "The avatar").

Neutral Gaussians {X0, F0, Q0, S0, A0} and six per-point MLPs produce the Gaussians of one frame
from expression θ (53 ICT weights) and head pose β = (axis-angle, translation):

    λ_exp = blend(X0, P0),  λ_pose = 1 - λ_exp                                 (avatar.blend)
    X' = X0 + s_def · (λ_exp f_def^exp(γ(X0), θ) + λ_pose f_def^pose(γ(X0), γ(β)))
    C' = λ_exp f_col^exp(F, θ) + λ_pose f_col^pose(F, γ(β))
    ΔA = s_att · (λ_exp f_att^exp(F, θ) + λ_pose f_att^pose(F, γ(β)))  = (Δq 4, Δlog s 3, Δlogit a 1)
    Q' = normalise(Q0 + Δq),  S' = exp(S0 + Δlog s),  A' = sigmoid(A0 + Δlogit a)
    {X, Q} = T({X', Q'}, β),  {C, S, A} = {C', S', A'}                           (avatar.pose_transform)

with F = tanh(F0). Storage follows the reference so its learning rates mean the same thing:
F0 is kept before tanh (features stay in (-1, 1) whatever Adam does), S0 as log-scales (scales
stay positive and the attribute offset is multiplicative), A0 as logits (opacity stays in (0, 1)).
Both deform MLPs see the canonical X0: the pose deformation is not chained after the expression
one (DESIGN.md; the seed's formulas differ by typos).

With a torso (ModelConfig.torso_far > 0, beyond the seed), T is blended below the chin with a
transform that keeps the rest rotation R̄ (avatar.pose_transform.torso_pose_transform).

Colour: the 32-channel feature of a Gaussian is C' above, the λ-blend of the two colour MLPs,
with no final activation (as the reference): the rasterizer composites it over a background of
1.0 in every channel, the SR CNN reads all 32 channels, and the first three are compared with
the white-composited ground truth as the low-resolution RGB.

The forward pass has no data-dependent Python control flow (every MLP runs on every Gaussian;
the reference's masking by λ only skips work whose result is multiplied by zero), so it traces
and exports to ONNX as is.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import nn
from torch.nn import functional as F

from avatar.blend import blend_weights
from avatar.config import POSE_DIM, ModelConfig, TrainingConfig
from avatar.encoding import positional_encoding
from avatar.gaussians import GaussianSet
from avatar.mlp import PointMLP
from avatar.pose_transform import pose_transform, torso_pose_transform
from tracking.params import N_EXPRESSION, N_LANDMARKS

INITIAL_OPACITY = 0.3
MOUTH_LANDMARKS = slice(48, 68)  # iBUG 68: outer and inner lip contours
CHIN_LANDMARK = 8  # iBUG 68: the lowest point of the jaw line
MOUTH_BOX_SCALE = 1.6  # box side = this x the largest per-axis spread of the mouth landmarks
FEATURE_INIT_STD = 0.1  # pre-tanh noise on features that are not given, to tell points apart


@dataclass
class Deformation:
    """The parts of one frame's deformation, for losses (L_def) and for inspection."""

    lam_exp: torch.Tensor  # (N, 1)
    exp_deform: torch.Tensor  # (N, 3) f_def^exp output, before λ and the deform scale
    pose_deform: torch.Tensor  # (N, 3) f_def^pose output, before λ and the deform scale
    offset: torch.Tensor  # (N, 3) X' - X0
    color: torch.Tensor  # (N, C) C'
    # (N, 8) ΔA: quaternion (4), log-scale (3), opacity logit (1); None when not asked for
    attribute_offsets: torch.Tensor | None


class GaussianHeadModel(nn.Module):
    def __init__(self, config: ModelConfig, num_gaussians: int) -> None:
        super().__init__()
        self.config = config
        n = int(num_gaussians)
        self.positions = nn.Parameter(torch.zeros(n, 3))  # X0, canonical space
        self.features = nn.Parameter(torch.zeros(n, config.feature_dim))  # F0, before tanh
        self.rotations = nn.Parameter(torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(n, 1))  # Q0 w-x-y-z
        self.log_scales = nn.Parameter(torch.zeros(n, 3))  # S0 = log(scale)
        self.opacity_logits = nn.Parameter(torch.zeros(n, 1))  # A0 = logit(opacity)
        # P0: fitted in the geometry-guided initialisation, frozen in the Gaussian stage (as in
        # the reference), hence no gradient unless a training stage turns it on.
        self.landmarks = nn.Parameter(torch.zeros(N_LANDMARKS, 3), requires_grad=False)
        # R̄ (axis-angle): the torso's rotation, set from the training frames' poses (avatar.train).
        self.rest_rotation = nn.Parameter(torch.zeros(3), requires_grad=False) if config.has_torso else None
        dims = config.mlp_dims()
        self.exp_color_mlp = PointMLP(dims["exp_color"])
        self.pose_color_mlp = PointMLP(dims["pose_color"])
        self.exp_attributes_mlp = PointMLP(dims["exp_attributes"])
        self.pose_attributes_mlp = PointMLP(dims["pose_attributes"])
        self.exp_deform_mlp = PointMLP(dims["exp_deform"], final_tanh=True)
        self.pose_deform_mlp = PointMLP(dims["pose_deform"], final_tanh=True)

    @property
    def num_gaussians(self) -> int:
        return self.positions.shape[0]

    @classmethod
    def from_points(cls, config: ModelConfig, points: torch.Tensor | np.ndarray,
                    landmarks: torch.Tensor | np.ndarray, features: torch.Tensor | np.ndarray | None = None,
                    colors: torch.Tensor | np.ndarray | None = None, seed: int = 0) -> "GaussianHeadModel":
        """Initialise from canonical surface points and the neutral landmarks P0 (68, 3).

        `features` (N, feature_dim) are taken as F0 (pre-tanh); otherwise F0 is small noise and,
        when `colors` (N, 3) in [0, 1] are given, its first three entries encode them so that
        tanh(F0)[:, :3] = 2·colour - 1 gives the colour MLPs a direct path to learn. Then, as in
        the reference: `config.num_mouth_points` extra points uniform in a box around the mouth
        landmarks (zero features), identity rotations, opacity 0.3, and every scale set to the
        RMS distance to the 3 nearest neighbours.
        """
        pts = torch.as_tensor(np.asarray(points, np.float32))
        lmk = torch.as_tensor(np.asarray(landmarks, np.float32))
        if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] < 1:
            raise ValueError(f"points must be (N, 3), got {tuple(pts.shape)}")
        if tuple(lmk.shape) != (N_LANDMARKS, 3):
            raise ValueError(f"landmarks must be ({N_LANDMARKS}, 3), got {tuple(lmk.shape)}")
        if features is not None and colors is not None:
            raise ValueError("give features or colors, not both")
        gen = torch.Generator().manual_seed(seed)
        n = pts.shape[0]
        if features is not None:
            feat = torch.as_tensor(np.asarray(features, np.float32))
            if tuple(feat.shape) != (n, config.feature_dim):
                raise ValueError(f"features must be ({n}, {config.feature_dim}), got {tuple(feat.shape)}")
        else:
            feat = FEATURE_INIT_STD * torch.randn(n, config.feature_dim, generator=gen)
            if colors is not None:
                col = torch.as_tensor(np.asarray(colors, np.float32))
                if tuple(col.shape) != (n, 3):
                    raise ValueError(f"colors must be ({n}, 3), got {tuple(col.shape)}")
                feat[:, :3] = torch.atanh((2 * col - 1).clamp(-0.99, 0.99))

        mouth = mouth_box_points(lmk, config.num_mouth_points, gen)
        pts = torch.cat([pts, mouth])
        feat = torch.cat([feat, torch.zeros(mouth.shape[0], config.feature_dim)])

        model = cls(config, pts.shape[0])
        with torch.no_grad():
            model.positions.copy_(pts)
            model.features.copy_(feat)
            model.log_scales.copy_(torch.log(knn_scale(pts))[:, None].expand(-1, 3))
            model.opacity_logits.fill_(float(np.log(INITIAL_OPACITY / (1 - INITIAL_OPACITY))))
            model.landmarks.copy_(lmk)
        return model

    def mlps(self) -> list[nn.Module]:
        return [self.exp_color_mlp, self.pose_color_mlp, self.exp_attributes_mlp,
                self.pose_attributes_mlp, self.exp_deform_mlp, self.pose_deform_mlp]

    def pose_shape_mlps(self) -> list[nn.Module]:
        """The MLPs that move and reshape Gaussians with the head pose: f_def^pose, f_att^pose."""
        return [self.pose_deform_mlp, self.pose_attributes_mlp]

    def parameter_groups(self, training: TrainingConfig) -> list[dict]:
        """Adam parameter groups with the Gaussian-stage learning rates (P0 is not included)."""
        return [
            {"name": "mlp", "lr": training.lr_mlp,
             "params": [p for m in self.mlps() if m not in self.pose_shape_mlps() for p in m.parameters()]},
            {"name": "pose_mlp", "params": [p for m in self.pose_shape_mlps() for p in m.parameters()],
             "lr": training.lr_mlp if training.lr_pose_mlp is None else training.lr_pose_mlp},
            {"name": "position", "params": [self.positions], "lr": training.lr_position},
            {"name": "feature", "params": [self.features], "lr": training.lr_feature},
            {"name": "rotation", "params": [self.rotations], "lr": training.lr_rotation},
            {"name": "scale", "params": [self.log_scales], "lr": training.lr_scale},
            {"name": "opacity", "params": [self.opacity_logits], "lr": training.lr_opacity},
        ]

    def blend(self, points: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(λ_exp, λ_pose) of every Gaussian, or of other canonical `points`, (N, 1) each."""
        c = self.config
        return blend_weights(self.positions if points is None else points, self.landmarks, c.blend_near,
                             c.blend_far, c.blend_kind, c.squared_distance)

    def deformation(self, expression: torch.Tensor, pose: torch.Tensor, skip_unblended: bool = False
                    ) -> Deformation:
        """Evaluate the six MLPs on this model's Gaussians for expression (53,) or (1, 53) and pose (6,).

        `skip_unblended` runs each MLP only on the Gaussians whose λ for it is non-zero (about
        60 % of the work on a head): the same result, but with data-dependent shapes, so it is for
        training, not for export or compilation. Its `exp_deform` / `pose_deform` are 0 where
        their λ is.
        """
        return self.deform_points(self.positions, self.features, expression, pose, skip_unblended)

    def deform_points(self, points: torch.Tensor, features: torch.Tensor, expression: torch.Tensor,
                      pose: torch.Tensor, skip_unblended: bool = False, attributes: bool = True) -> Deformation:
        """The deformation formula for any canonical points (N, 3) with their own pre-tanh features
        (N, F): the Gaussians' (`deformation`) and the mesh stage's vertices (avatar.mesh_stage).
        `attributes=False` skips the attribute MLPs (the mesh stage has no attributes to offset);
        `attribute_offsets` is then None.
        """
        c = self.config
        n = points.shape[0]
        dtype = points.dtype
        theta = expression.to(dtype).reshape(1, N_EXPRESSION).expand(n, -1)
        beta = positional_encoding(pose.to(dtype).reshape(1, POSE_DIM), c.pos_freqs).expand(n, -1)
        feat = torch.tanh(features)
        x_enc = positional_encoding(points, c.pos_freqs)
        lam_exp, lam_pose = self.blend(points)
        exp_rows = _nonzero_rows(lam_exp) if skip_unblended else None
        pose_rows = _nonzero_rows(lam_pose) if skip_unblended else None

        exp_in = torch.cat([feat, theta], -1)
        pose_in = torch.cat([feat, beta], -1)
        color = (lam_exp * _run(self.exp_color_mlp, exp_in, exp_rows)
                 + lam_pose * _run(self.pose_color_mlp, pose_in, pose_rows))
        offsets = None
        if attributes:
            offsets = c.attributes_scale * (lam_exp * _run(self.exp_attributes_mlp, exp_in, exp_rows)
                                            + lam_pose * _run(self.pose_attributes_mlp, pose_in, pose_rows))
        exp_deform = _run(self.exp_deform_mlp, torch.cat([x_enc, theta], -1), exp_rows)
        pose_deform = _run(self.pose_deform_mlp, torch.cat([x_enc, beta], -1), pose_rows)
        offset = c.deform_scale * (lam_exp * exp_deform + lam_pose * pose_deform)
        return Deformation(lam_exp=lam_exp, exp_deform=exp_deform, pose_deform=pose_deform,
                           offset=offset, color=color, attribute_offsets=offsets)

    def canonical_tensors(self, expression: torch.Tensor, pose: torch.Tensor, skip_unblended: bool = False
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Un-posed {X', Q', S', A', C'}: (N,3), (N,4) unit w-x-y-z, (N,3) linear, (N,), (N,C)."""
        d = self.deformation(expression, pose, skip_unblended)
        means = self.positions + d.offset
        quats = F.normalize(self.rotations + d.attribute_offsets[:, 0:4], dim=-1)
        scales = torch.exp(self.log_scales + d.attribute_offsets[:, 4:7])
        opacities = torch.sigmoid(self.opacity_logits + d.attribute_offsets[:, 7:8]).reshape(-1)
        return means, quats, scales, opacities, d.color

    def forward_tensors(self, expression: torch.Tensor, pose: torch.Tensor, skip_unblended: bool = False
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The posed Gaussians as a tuple (for ONNX export): means, quats, scales, opacities, features."""
        means, quats, scales, opacities, color = self.canonical_tensors(expression, pose, skip_unblended)
        pose = pose.to(means.dtype).reshape(POSE_DIM)
        if self.rest_rotation is None:
            means, quats = pose_transform(means, quats, pose)
        else:
            weight, pivot = self.torso_weight()
            means, quats = torso_pose_transform(means, quats, pose, weight, pivot, self.rest_rotation.to(means.dtype))
        return means, quats, scales, opacities, color

    def torso_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each Gaussian's torso weight (N, 1), from 0 at torso_near below the chin to 1 at torso_far
        (canonical y points down), and the pivot (3,): below the head's centre, level with the chin."""
        c = self.config
        chin = self.landmarks[CHIN_LANDMARK]
        below = self.positions[:, 1:2] - chin[1]
        weight = ((below - c.torso_near) / (c.torso_far - c.torso_near)).clamp(0.0, 1.0)
        pivot = torch.stack([torch.zeros_like(chin[1]), chin[1], torch.zeros_like(chin[1])])
        return weight, pivot

    def forward(self, expression: torch.Tensor, pose: torch.Tensor, skip_unblended: bool = False) -> GaussianSet:
        """One frame's Gaussians in world space: expression (53,) or (1, 53), pose (6,)."""
        return GaussianSet(*self.forward_tensors(expression, pose, skip_unblended))

    def canonical_gaussians(self, expression: torch.Tensor, pose: torch.Tensor) -> GaussianSet:
        """The frame's Gaussians before the head-pose transform T (pose still conditions the MLPs)."""
        return GaussianSet(*self.canonical_tensors(expression, pose))

    def deform_landmarks(self, expression: torch.Tensor) -> torch.Tensor:
        """P = P0 + s_def · f_def^exp(γ(P0), θ): the expression-deformed landmarks (68, 3) for L_def."""
        c = self.config
        p0 = self.landmarks
        theta = expression.to(p0.dtype).reshape(1, N_EXPRESSION).expand(p0.shape[0], -1)
        inputs = torch.cat([positional_encoding(p0, c.pos_freqs), theta], -1)
        return p0 + c.deform_scale * self.exp_deform_mlp(inputs)


def _nonzero_rows(lam: torch.Tensor) -> torch.Tensor:
    return (lam.detach()[:, 0] != 0).nonzero()[:, 0]


def _run(mlp: nn.Module, inputs: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """mlp(inputs), or only on `rows` with zeros elsewhere."""
    if rows is None:
        return mlp(inputs)
    out = mlp(inputs.index_select(0, rows))
    return out.new_zeros(inputs.shape[0], out.shape[1]).index_copy(0, rows, out)


def mouth_box_points(landmarks: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` points uniform in a box around the mouth landmarks, reaching into the mouth.

    As in the reference: the box is centred on the mean of the mouth landmarks, moved in depth to
    the deepest of them (largest z here, since the canonical face looks along -z), with side 1.6x
    the largest per-axis deviation from that centre.
    """
    mouth = landmarks[MOUTH_LANDMARKS]
    center = mouth.mean(0)
    center[2] = mouth[:, 2].max()
    spread = (mouth - center).abs().max(0).values
    return (torch.rand(count, 3, generator=generator) - 0.5) * MOUTH_BOX_SCALE * spread + center


def knn_scale(points: torch.Tensor) -> torch.Tensor:
    """(N,) RMS distance of each point to its 3 nearest other points (the reference's distCUDA2)."""
    pts = points.detach().cpu().numpy().astype(np.float64)
    if pts.shape[0] < 2:
        raise ValueError("a Gaussian's initial scale needs at least two points")
    k = min(4, pts.shape[0])  # the query point itself plus up to three neighbours
    dist, _ = cKDTree(pts).query(pts, k=k)
    mean_sq = np.maximum((dist[:, 1:] ** 2).mean(1), 1e-7)
    return torch.as_tensor(np.sqrt(mean_sq), dtype=points.dtype)
