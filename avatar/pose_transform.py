"""The head-pose transform T(β) from the avatar's canonical space to the world (camera) space.

β = (axis-angle rotation (3), translation (3)), the `rotation` and `translation` of the
coefficient contract. Positions become R x + t; Gaussian rotations become q_β ⊗ q (the pose
applied after the Gaussian's own rotation), so a covariance R_q S² R_qᵀ becomes R Σ Rᵀ. Scales,
opacities and features do not depend on direction and pass through unchanged.

The torso (ModelConfig.torso_near / torso_far; not in the seed's model). A person's shoulders
do not turn when their head does, but T(β) turns every Gaussian, so without it the pose MLPs
have to learn to turn the torso back for every pose. `torso_pose_transform` blends, per
Gaussian, T(β) with a torso transform that keeps the avatar's rest rotation R̄ (the training
frames' mean head rotation) about a pivot under the chin and moves that pivot as T(β) does:

    X_torso = R̄ (X - p) + R p + t,    X = X_head + w (X_torso - X_head)

so the two agree at the pivot (the neck does not tear) and for a frame at the rest rotation.
Quaternions blend the same way: a head's turns are small next to 180°, so q_β and q_R̄ (both
with w = cos(angle/2) > 0) lie close together and the blend of q_β ⊗ q and q_R̄ ⊗ q stays far
from 0; the rasterizer takes quaternions of any norm.
"""
from __future__ import annotations

import torch

from core.rotations import axis_angle_to_matrix, axis_angle_to_quat, quat_multiply


def pose_points(points: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """R x + t: positions (..., 3) posed by (6,) pose, for points without an orientation."""
    return points @ axis_angle_to_matrix(pose[:3]).T + pose[3:]


def pose_transform(means: torch.Tensor, quats: torch.Tensor,
                   pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3) positions, (N, 4) w-x-y-z quaternions, (6,) pose -> transformed (means, quats)."""
    q = axis_angle_to_quat(pose[:3])
    return pose_points(means, pose), quat_multiply(q.expand_as(quats), quats)


def torso_pose_transform(means: torch.Tensor, quats: torch.Tensor, pose: torch.Tensor, weight: torch.Tensor,
                         pivot: torch.Tensor, rest_rotation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """T(β) blended with the torso's transform by weight (N, 1) in [0, 1] (1: torso), about
    pivot (3,) with the rest rotation (3,) axis-angle; the shapes are pose_transform's."""
    head_means, head_quats = pose_transform(means, quats, pose)
    pivot_world = pose_points(pivot, pose)
    torso_means, torso_quats = pose_transform(means - pivot, quats, torch.cat([rest_rotation, pivot_world]))
    return head_means + weight * (torso_means - head_means), head_quats + weight * (torso_quats - head_quats)
