"""T(β) and the torso's blend against rotating positions and covariance matrices directly (scipy's rotations)."""
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from avatar.pose_transform import pose_transform, torso_pose_transform


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


def hamilton(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """w-x-y-z quaternion product a ⊗ b, written out."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)


def test_torso_transform_blends_the_head_and_the_rest_rotation_about_the_pivot():
    rng = np.random.default_rng(5)
    n = 60
    means, quats = rng.normal(size=(n, 3)), rng.normal(size=(n, 4))
    weight = np.clip(rng.uniform(-0.3, 1.3, size=(n, 1)), 0, 1)  # some exactly 0 and 1
    pivot, rest, rotvec, translation = rng.normal(size=3), rng.normal(size=3) * 0.3, rng.normal(size=3) * 0.3, \
        rng.normal(size=3)
    pose = torch.from_numpy(np.concatenate([rotvec, translation]))
    args = [torch.from_numpy(v) for v in (means, quats)]

    out_means, out_quats = torso_pose_transform(*args, pose, torch.from_numpy(weight), torch.from_numpy(pivot),
                                                torch.from_numpy(rest))

    r, r_rest = Rotation.from_rotvec(rotvec), Rotation.from_rotvec(rest)
    head = means @ r.as_matrix().T + translation
    torso = (means - pivot) @ r_rest.as_matrix().T + pivot @ r.as_matrix().T + translation
    np.testing.assert_allclose(out_means.numpy(), head + weight * (torso - head), atol=1e-12)
    q_head = hamilton(r.as_quat()[[3, 0, 1, 2]], quats)
    q_torso = hamilton(r_rest.as_quat()[[3, 0, 1, 2]], quats)
    np.testing.assert_allclose(out_quats.numpy(), q_head + weight * (q_torso - q_head), atol=1e-12)
    # Weight 0 is the head's own transform.
    plain_means, plain_quats = pose_transform(*args, pose)
    head_rows = weight[:, 0] == 0
    assert head_rows.sum() > 3
    torch.testing.assert_close(out_means[head_rows], plain_means[head_rows], rtol=0, atol=1e-12)
    torch.testing.assert_close(out_quats[head_rows], plain_quats[head_rows], rtol=0, atol=1e-12)
    # The pivot goes where the head puts it, whatever the weight: the neck does not tear.
    at_pivot, _ = torso_pose_transform(torch.from_numpy(pivot)[None], args[1][:1], pose,
                                       torch.ones(1, 1, dtype=torch.float64), torch.from_numpy(pivot),
                                       torch.from_numpy(rest))
    np.testing.assert_allclose(at_pivot.numpy()[0], pivot @ r.as_matrix().T + translation, atol=1e-12)


def test_torso_transform_at_the_rest_rotation_is_the_head_transform():
    rng = np.random.default_rng(6)
    means, quats = torch.from_numpy(rng.normal(size=(40, 3))), torch.from_numpy(rng.normal(size=(40, 4)))
    pose = torch.from_numpy(np.concatenate([rng.normal(size=3) * 0.3, rng.normal(size=3)]))
    weight = torch.from_numpy(rng.uniform(size=(40, 1)))
    out = torso_pose_transform(means, quats, pose, weight, torch.from_numpy(rng.normal(size=3)), pose[:3])
    for a, b in zip(out, pose_transform(means, quats, pose)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
