"""T(β) against rotating positions and covariance matrices directly (scipy's rotations)."""
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from avatar.pose_transform import pose_transform


def covariance(quat_wxyz: np.ndarray, scales: np.ndarray) -> np.ndarray:
    r = Rotation.from_quat(quat_wxyz[:, [1, 2, 3, 0]]).as_matrix()  # scipy wants x-y-z-w
    return r @ (scales[:, :, None] ** 2 * np.eye(3)) @ r.transpose(0, 2, 1)


@pytest.mark.parametrize("angle", [0.0, 1e-6, 0.4, 2.5])
def test_pose_transform_rotates_covariances_and_moves_positions(angle):
    rng = np.random.default_rng(3)
    n = 50
    means = rng.normal(size=(n, 3))
    quats = rng.normal(size=(n, 4))  # any norm
    scales = np.exp(rng.normal(size=(n, 3)))
    axis = rng.normal(size=3)
    rotvec = axis / np.linalg.norm(axis) * angle
    translation = rng.normal(size=3)
    pose = torch.from_numpy(np.concatenate([rotvec, translation]))

    new_means, new_quats = pose_transform(torch.from_numpy(means), torch.from_numpy(quats), pose)

    r = Rotation.from_rotvec(rotvec).as_matrix()
    np.testing.assert_allclose(new_means.numpy(), means @ r.T + translation, atol=1e-12)
    sigma = covariance(quats / np.linalg.norm(quats, axis=1, keepdims=True), scales)
    expected = r @ sigma @ r.T
    q = new_quats.numpy()
    np.testing.assert_allclose(covariance(q / np.linalg.norm(q, axis=1, keepdims=True), scales),
                               expected, atol=1e-10 * np.abs(expected).max())
    # A unit rotation keeps the quaternion norm: the transform only rotates.
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), np.linalg.norm(quats, axis=1), rtol=1e-12)
