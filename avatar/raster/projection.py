"""EWA projection of 3D Gaussians to the image, as gsplat 1.5.3's projection kernel does it.

Plain differentiable torch, so autograd gives the backward. Per Gaussian (gsplat's
`projection_ewa_3dgs_fused_fwd_kernel`, pinhole camera, "classic" mode):

- camera-space mean m = R x + t; culled when m.z < near_plane (0.01) or > far_plane (1e10);
- 3D covariance R_q S S^T R_q^T from the normalised quaternion and the scales, rotated to camera;
- Jacobian of the pinhole projection at m, with x/z and y/z clamped to 1.3x the image's
  half-extent so Gaussians far off-screen do not blow up; Σ2d = J Σ J^T, plus 0.3 px² on the
  diagonal (eps2d); the 2D mean is (fx x/z + cx, fy y/z + cy), unclamped; K's skew is ignored;
- culled when det(Σ2d) <= 0 or opacity < 1/255;
- footprint radius per axis ceil(e sqrt(Σ2d[i, i])), e = min(3.33, sqrt(2 ln(255 opacity)));
  culled when a radius is 0 or the box mean ± radius lies entirely off the image.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from core.rotations import quat_to_matrix

NEAR_PLANE = 0.01
FAR_PLANE = 1e10
EPS2D = 0.3
ALPHA_THRESHOLD = 1.0 / 255.0
MAX_EXTEND = 3.33
# Jacobian clamp: x/z and y/z may exceed the image's half-extent by this fraction.
FOV_MARGIN = 0.3


@dataclass
class ProjectedGaussians:
    index: torch.Tensor  # (M,) int64: the input Gaussians that survived culling
    means2d: torch.Tensor  # (M, 2) pixels, pixel centres at +0.5
    conics: torch.Tensor  # (M, 3) (a, b, c) of the inverse 2D covariance [[a, b], [b, c]]
    depths: torch.Tensor  # (M,) camera-space z
    radii: torch.Tensor  # (M, 2) int32 footprint half-sizes in pixels (x, y)


def project_gaussians(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor,
                      opacities: torch.Tensor, viewmat: torch.Tensor, K: torch.Tensor,
                      width: int, height: int) -> ProjectedGaussians:
    rot_w2c, trans_w2c = viewmat[:3, :3], viewmat[:3, 3]
    mean_c = torch.addmm(trans_w2c, means, rot_w2c.T)
    z_all = mean_c[:, 2]
    # Everything below runs on Gaussians in front of the near plane only, so 1/z stays finite
    # and no inf/nan reaches autograd.
    front = ((z_all >= NEAR_PLANE) & (z_all <= FAR_PLANE)).nonzero().squeeze(1)
    mean_c = mean_c.index_select(0, front)
    x, y, z = mean_c.unbind(1)
    rz = 1.0 / z

    # Python floats: cheaper than 0-d tensors in every op, and gsplat does not differentiate
    # through K either.
    fx, fy, cx, cy = (float(v) for v in (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    tx = z * torch.clamp(x * rz, min=-(cx / fx + FOV_MARGIN * tan_fovx), max=(width - cx) / fx + FOV_MARGIN * tan_fovx)
    ty = z * torch.clamp(y * rz, min=-(cy / fy + FOV_MARGIN * tan_fovy), max=(height - cy) / fy + FOV_MARGIN * tan_fovy)
    # Σ2d = J W R S S^T R^T W^T J^T = Q Q^T with Q = J W R S (2x3): J is the projection's
    # Jacobian [[fx/z, 0, -fx tx/z²], [0, fy/z, -fy ty/z²]], W the camera rotation, R the
    # Gaussian's. Small batched matmuls on (M, 2, 3) are much faster than 3x3 chains.
    diag = torch.stack([fx * rz, fy * rz], 1)[:, :, None]
    last = torch.stack([-fx * tx * rz * rz, -fy * ty * rz * rz], 1)[:, :, None]
    jw = diag * rot_w2c[:2] + last * rot_w2c[2]
    q = (jw @ quat_to_matrix(quats.index_select(0, front))) * scales.index_select(0, front)[:, None, :]
    cov2d = q @ q.transpose(1, 2)
    means2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], 1)

    a = cov2d[:, 0, 0] + EPS2D
    b = cov2d[:, 0, 1]
    c = cov2d[:, 1, 1] + EPS2D
    det = a * c - b * b
    has_area = det > 0
    det = torch.where(has_area, det, torch.ones_like(det))
    conics = torch.stack([c / det, -b / det, a / det], 1)

    with torch.no_grad():
        opacity = opacities.index_select(0, front)
        visible = has_area & (opacity >= ALPHA_THRESHOLD)
        # Opacity-aware footprint (gsplat: arXiv 2402.00525, B.2).
        extend = torch.sqrt(2.0 * torch.log(opacity.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD))
        extend = extend.clamp_max(MAX_EXTEND)
        radii = torch.stack([torch.ceil(extend * a.sqrt()), torch.ceil(extend * c.sqrt())], 1)
        visible &= (radii > 0).all(1)
        lo, hi = means2d - radii, means2d + radii
        visible &= (hi[:, 0] > 0) & (lo[:, 0] < width) & (hi[:, 1] > 0) & (lo[:, 1] < height)
        keep = visible.nonzero().squeeze(1)
    return ProjectedGaussians(index=front.index_select(0, keep), means2d=means2d.index_select(0, keep),
                              conics=conics.index_select(0, keep), depths=z.index_select(0, keep),
                              radii=radii.index_select(0, keep).to(torch.int32))

