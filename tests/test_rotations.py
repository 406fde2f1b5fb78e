"""core.rotations against scipy's Rotation (an independent implementation), near 0, in general
position and near pi, where axis-angle and quaternion conversions lose precision if done naively."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation, Slerp

from core import rotations as rot


def rotvecs(rng: np.random.Generator, count: int, angles: np.ndarray | None = None) -> np.ndarray:
    axes = rng.normal(size=(count, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = rng.uniform(0, np.pi, count) if angles is None else angles
    return axes * angles[:, None]


ANGLE_CASES = {
    "general": None,
    "near zero": np.geomspace(1e-9, 1e-3, 64),
    "near pi": np.pi - np.geomspace(1e-7, 1e-2, 64),
    "exactly pi": np.full(8, np.pi),
}


@pytest.fixture(params=list(ANGLE_CASES))
def case(request) -> np.ndarray:
    rng = np.random.default_rng(list(ANGLE_CASES).index(request.param))
    angles = ANGLE_CASES[request.param]
    return rotvecs(rng, 64 if angles is None else len(angles), angles)


def test_axis_angle_to_matrix(case):
    got = rot.axis_angle_to_matrix(torch.from_numpy(case)).numpy()
    np.testing.assert_allclose(got, Rotation.from_rotvec(case).as_matrix(), atol=1e-12)


def test_matrix_to_axis_angle_round_trips_the_rotation(case):
    # Near pi the sign of the axis is ambiguous (v and -v are the same rotation): compare matrices.
    matrices = Rotation.from_rotvec(case).as_matrix()
    back = rot.matrix_to_axis_angle(torch.from_numpy(matrices)).numpy()
    np.testing.assert_allclose(Rotation.from_rotvec(back).as_matrix(), matrices, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(back, axis=1), np.linalg.norm(case, axis=1), atol=1e-7)


def test_quaternions(case):
    q = rot.axis_angle_to_quat(torch.from_numpy(case)).numpy()
    ref = Rotation.from_rotvec(case).as_quat()[:, [3, 0, 1, 2]]  # scipy is x-y-z-w
    ref *= np.sign(ref[:, :1] + (ref[:, :1] == 0))  # q and -q are one rotation; compare with w >= 0
    q *= np.sign(q[:, :1] + (q[:, :1] == 0))
    np.testing.assert_allclose(np.abs(q), np.abs(ref), atol=1e-9)
    matrices = rot.quat_to_matrix(torch.from_numpy(3.0 * q)).numpy()  # any norm
    np.testing.assert_allclose(matrices, Rotation.from_rotvec(case).as_matrix(), atol=1e-9)
    from_matrix = rot.matrix_to_quat(torch.from_numpy(matrices)).numpy()
    np.testing.assert_allclose(Rotation.from_quat(from_matrix[:, [1, 2, 3, 0]]).as_matrix(), matrices, atol=1e-9)
    back = rot.quat_to_axis_angle(torch.from_numpy(q)).numpy()
    np.testing.assert_allclose(Rotation.from_rotvec(back).as_matrix(), matrices, atol=1e-9)


def test_quat_multiply_composes_like_scipy():
    rng = np.random.default_rng(3)
    a, b = Rotation.from_rotvec(rotvecs(rng, 32)), Rotation.from_rotvec(rotvecs(rng, 32))
    wxyz = [3, 0, 1, 2]
    got = rot.quat_multiply(torch.from_numpy(a.as_quat()[:, wxyz]), torch.from_numpy(b.as_quat()[:, wxyz]))
    np.testing.assert_allclose(rot.quat_to_matrix(got).numpy(), (a * b).as_matrix(), atol=1e-12)


def test_gradient_is_finite_at_zero_and_matches_finite_differences():
    zero = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    rot.axis_angle_to_matrix(zero).sum().backward()
    assert torch.isfinite(zero.grad).all()
    x = torch.tensor([0.3, -1.2, 2.9], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(rot.axis_angle_to_matrix, (x,))


def test_numpy_helpers(case):
    rng = np.random.default_rng(5)
    other = rotvecs(rng, len(case))
    ra, rb = Rotation.from_rotvec(case), Rotation.from_rotvec(other)
    np.testing.assert_allclose(rot.rotvec_to_matrix(case), ra.as_matrix(), atol=1e-12)
    back = rot.matrix_to_rotvec(ra.as_matrix())
    np.testing.assert_allclose(Rotation.from_rotvec(back).as_matrix(), ra.as_matrix(), atol=1e-9)
    np.testing.assert_allclose(rot.angle_between(case, other), (ra.inv() * rb).magnitude(), atol=1e-7)
    for t in (0.0, 0.25, 0.5, 1.0):
        expected = np.stack([Slerp([0, 1], Rotation.from_rotvec([x, y]))(t).as_matrix()
                             for x, y in zip(case, other)])
        np.testing.assert_allclose(rot.rotvec_to_matrix(rot.slerp(case, other, t)), expected, atol=1e-7)
