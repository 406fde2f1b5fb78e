"""Driving an avatar with the tracking of another recording of the same person.

Each recording is tracked on its own, so each has its own fitted ICT identity, and the 3DMM
places a different identity's neutral head slightly differently in canonical space (a longer
nose or a larger skull moves the landmarks the pose is solved from). The avatar lives in the
canonical space of the identity it was trained with; another recording's poses put *its*
identity's head into its camera. `recording_alignment` finds the rigid transform A taking the
other identity's canonical space to the avatar's: Kabsch (least-squares rotation and
translation, no scale, since a pose has no scale) between the two identities' neutral face
vertices, which correspond one to one. A vertex x of the avatar then sits where the other
recording's head had A⁻¹x, so each of its poses (R, t) becomes (R·Rₐᵀ, t − R·Rₐᵀ·tₐ).
Expressions need no change: ICT keeps them apart from identity.
"""
from __future__ import annotations

import numpy as np
import torch

from tracking.face_model import FaceModel, FaceModelData, load_face_model_data
from tracking.params import N_EXPRESSION
from core.rotations import axis_angle_to_matrix, matrix_to_axis_angle

ALIGNED_REGION = "face"


def _neutral_face(identity: np.ndarray, data: FaceModelData) -> np.ndarray:
    model = FaceModel.from_data(data)
    with torch.no_grad():
        verts = model.vertices(torch.as_tensor(np.asarray(identity, np.float32))[None], torch.zeros(1, N_EXPRESSION))
    return verts[0].numpy()[data.region(ALIGNED_REGION)].astype(np.float64)


def kabsch(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R (3, 3), t (3,)) minimising Σ |R·source_i + t − target_i|² over rotations R."""
    cs, ct = source.mean(0), target.mean(0)
    u, _, vt = np.linalg.svd((source - cs).T @ (target - ct))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rotation = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return rotation, ct - rotation @ cs


def recording_alignment(avatar_identity: np.ndarray, other_identity: np.ndarray,
                        data: FaceModelData | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A = (R, t): the other identity's canonical space -> the avatar identity's."""
    data = load_face_model_data() if data is None else data
    return kabsch(_neutral_face(other_identity, data), _neutral_face(avatar_identity, data))


def aligned_poses(poses: torch.Tensor, alignment: tuple[np.ndarray, np.ndarray]) -> torch.Tensor:
    """(T, 6) poses of the other recording -> poses that put the avatar's head where its head was."""
    r_a = torch.as_tensor(alignment[0], dtype=poses.dtype)
    t_a = torch.as_tensor(alignment[1], dtype=poses.dtype)
    rotation = axis_angle_to_matrix(poses[:, :3]) @ r_a.T
    translation = poses[:, 3:] - rotation @ t_a
    return torch.cat([matrix_to_axis_angle(rotation), translation], 1)
