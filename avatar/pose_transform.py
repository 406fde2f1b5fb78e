"""The head-pose transform T(β) from the avatar's canonical space to the world (camera) space.

β = (axis-angle rotation (3), translation (3)), the `rotation` and `translation` of the
coefficient contract. Positions become R x + t; Gaussian rotations become q_β ⊗ q (the pose
applied after the Gaussian's own rotation), so a covariance R_q S² R_qᵀ becomes R Σ Rᵀ. Scales,
opacities and features do not depend on direction and pass through unchanged.
"""
from __future__ import annotations

import torch

from core.rotations import axis_angle_to_matrix, axis_angle_to_quat, quat_multiply


def pose_transform(means: torch.Tensor, quats: torch.Tensor,
                   pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3) positions, (N, 4) w-x-y-z quaternions, (6,) pose -> transformed (means, quats)."""
    rotation, translation = pose[:3], pose[3:]
    r = axis_angle_to_matrix(rotation)
    q = axis_angle_to_quat(rotation)
    return means @ r.T + translation, quat_multiply(q.expand_as(quats), quats)
