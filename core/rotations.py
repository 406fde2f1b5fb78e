"""Rotation conversions, batched over leading dimensions: the one implementation splatcam uses.

Torch functions (differentiable, batched) and, below them, the same conversions for numpy
axis-angle head poses (fitting, smoothing, retargeting, metrics), one rotation at a time in
plain floats: the live loop converts a few rotations per frame, and a torch or vectorised numpy
call costs 0.1-0.3 ms each on a small CPU where this costs ~10 us. Quaternions are w-x-y-z.
Axis-angle vectors ("rotvec") have the angle in radians as their length.
"""
from __future__ import annotations

import math

import numpy as np
import torch


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula; (..., 3) -> (..., 3, 3), smooth through zero angle."""
    theta2 = (aa * aa).sum(-1, keepdim=True)
    theta = torch.sqrt(theta2.clamp_min(1e-24))
    small = theta2 < 1e-8
    # Taylor series near zero keep the gradient finite.
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp_min(1e-24))
    x, y, z = aa.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*aa.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(k)
    return eye + a[..., None] * k + b[..., None] * (k @ k)


def matrix_to_axis_angle(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 3) via the quaternion, which is stable near 0 and pi."""
    return quat_to_axis_angle(matrix_to_quat(m))


def axis_angle_to_quat(aa: torch.Tensor) -> torch.Tensor:
    theta2 = (aa * aa).sum(-1, keepdim=True)
    theta = torch.sqrt(theta2.clamp_min(1e-24))
    half = 0.5 * theta
    scale = torch.where(theta2 < 1e-8, 0.5 - theta2 / 48, torch.sin(half) / theta)
    return torch.cat([torch.cos(half), aa * scale], -1)


def quat_to_axis_angle(q: torch.Tensor) -> torch.Tensor:
    q = q / q.norm(dim=-1, keepdim=True)
    q = torch.where(q[..., :1] < 0, -q, q)
    w, v = q[..., :1], q[..., 1:]
    s = v.norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(s, w)
    scale = torch.where(s < 1e-8, 2.0 / w.clamp_min(1e-8), angle / s.clamp_min(1e-24))
    return v * scale


def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Any-norm quaternion (..., 4) -> rotation matrix (..., 3, 3)."""
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    m = torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        -1,
    )
    return m.reshape(*q.shape[:-1], 3, 3)


def matrix_to_quat(m: torch.Tensor) -> torch.Tensor:
    """Rotation matrix (..., 3, 3) -> unit quaternion with w >= 0 (Shepperd's method)."""
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    candidates = torch.stack(
        [
            torch.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20], -1),
            torch.stack([m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21], -1),
            torch.stack([m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22], -1),
        ],
        -2,
    )
    # Pick the candidate with the largest diagonal term: its normalisation is well conditioned.
    diag = torch.stack([m00 + m11 + m22, m00, m11, m22], -1)
    best = diag.argmax(-1)
    q = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a*b (apply b, then a)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        -1,
    )


def _rotvec_to_matrix(x: float, y: float, z: float) -> list[float]:
    theta2 = x * x + y * y + z * z
    if theta2 < 1e-16:
        a, b = 1.0 - theta2 / 6, 0.5 - theta2 / 24
    else:
        theta = math.sqrt(theta2)
        a, b = math.sin(theta) / theta, 2 * math.sin(theta / 2) ** 2 / theta2  # (1 - cos) / t^2, no cancellation
    xx, yy, zz, xy, xz, yz = x * x, y * y, z * z, x * y, x * z, y * z
    return [1 - b * (yy + zz), -a * z + b * xy, a * y + b * xz,
            a * z + b * xy, 1 - b * (xx + zz), -a * x + b * yz,
            -a * y + b * xz, a * x + b * yz, 1 - b * (xx + yy)]


def _matrix_to_rotvec(m: list[float]) -> list[float]:
    """Shepperd's method: the quaternion from the best-conditioned of four formulas, then its
    angle by atan2, which stays accurate near 0 and pi."""
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m
    trace = m00 + m11 + m22
    best = max(trace, m00, m11, m22)
    if best == trace:
        q = (1 + trace, m21 - m12, m02 - m20, m10 - m01)
    elif best == m00:
        q = (m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20)
    elif best == m11:
        q = (m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21)
    else:
        q = (m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22)
    sign = -1.0 if q[0] < 0 else 1.0
    w, x, y, z = (sign * c for c in q)  # w >= 0: the angle is in [0, pi]
    s = math.sqrt(x * x + y * y + z * z)  # q is not normalised: only ratios are used below
    scale = 2.0 / w if s < 1e-8 * w else 2 * math.atan2(s, w) / s  # atan2(s, w) / s -> 1 / w as s -> 0
    return [x * scale, y * scale, z * scale]


def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """numpy (..., 3) axis-angle -> (..., 3, 3) float64 rotation matrices (Rodrigues)."""
    v = np.asarray(rotvec, np.float64)
    flat = [_rotvec_to_matrix(*r) for r in v.reshape(-1, 3).tolist()]
    return np.array(flat).reshape(*v.shape[:-1], 3, 3)


def matrix_to_rotvec(matrix: np.ndarray) -> np.ndarray:
    """numpy (..., 3, 3) rotation matrices -> (..., 3) float64 axis-angle, angle in [0, pi]."""
    m = np.asarray(matrix, np.float64)
    flat = [_matrix_to_rotvec(r) for r in m.reshape(-1, 9).tolist()]
    return np.array(flat).reshape(*m.shape[:-2], 3)


def angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic angle (radians, in [0, pi]) between axis-angle rotations a and b, (..., 3) -> (...)."""
    relative = np.swapaxes(rotvec_to_matrix(a), -1, -2) @ rotvec_to_matrix(b)
    return np.linalg.norm(matrix_to_rotvec(relative), axis=-1)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """The rotation a fraction t of the way from a to b along the geodesic (axis-angle in and out)."""
    Ra = rotvec_to_matrix(a)
    step = matrix_to_rotvec(np.swapaxes(Ra, -1, -2) @ rotvec_to_matrix(b))
    return matrix_to_rotvec(Ra @ rotvec_to_matrix(t * step))
