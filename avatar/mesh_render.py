"""A differentiable triangle-mesh renderer (RGB/features + silhouette) built on the Gaussian rasterizer.

Each triangle becomes one flat Gaussian ("surfel"): centred on the triangle's centroid, lying in
its plane, with an in-plane standard deviation of SURFEL_SPREAD · sqrt(area) (wide enough that
neighbouring surfels overlap and the surface renders closed) and a thickness of SURFEL_THICKNESS
times that, opacity SURFEL_OPACITY, and the mean of its vertices' features. Rendering goes
through `avatar.raster.rasterize`, so the same code runs on the CPU backend (C++ forward and
backward, fine for the small images of the mesh stage on a CPU) and on gsplat on CUDA (fast).
The accumulated alpha is the silhouette.

Gradients reach the vertices through the surfel centres and sizes (the surfel orientation is
taken as constant per step: a triangle's rotation gradient adds little and is unstable for
near-degenerate DMTet triangles), and the features through the colours.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from avatar.camera import Camera
from avatar.raster import RenderResult, rasterize
from core.rotations import matrix_to_quat

SURFEL_SPREAD = 0.45
SURFEL_THICKNESS = 0.1
SURFEL_OPACITY = 0.95


def mesh_surfels(vertices: torch.Tensor, faces: torch.Tensor, features: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(means, quats, scales, opacities, features) of one surfel per face."""
    tri = vertices[faces]  # (F, 3, 3)
    means = tri.mean(1)
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    cross = torch.cross(e1, e2, dim=-1)
    area = 0.5 * cross.norm(dim=-1)
    with torch.no_grad():
        n = F.normalize(cross, dim=-1, eps=1e-12)
        t1 = F.normalize(e1, dim=-1, eps=1e-12)
        t2 = torch.cross(n, t1, dim=-1)
        quats = matrix_to_quat(torch.stack([t1, t2, n], -1))
    spread = SURFEL_SPREAD * torch.sqrt(area.clamp_min(1e-12))
    scales = torch.stack([spread, spread, SURFEL_THICKNESS * spread], -1)
    opacities = torch.full_like(area, SURFEL_OPACITY)
    return means, quats, scales, opacities, features[faces].mean(1)


def render_mesh(vertices: torch.Tensor, faces: torch.Tensor, features: torch.Tensor, camera: Camera,
                background: torch.Tensor | None = None, backend: str = "cpu") -> RenderResult:
    """Render a mesh (vertices in world space, per-vertex features (V, C)) seen by `camera`."""
    if faces.shape[0] == 0:
        c = features.shape[1]
        bg = background if background is not None else torch.zeros(c, dtype=vertices.dtype)
        h, w = camera.height, camera.width
        image = bg.to(vertices.device).reshape(1, 1, c).expand(h, w, c) + 0 * features.sum()
        zero = torch.zeros(h, w, 1, dtype=vertices.dtype, device=vertices.device)
        return RenderResult(image=image, alpha=zero, depth=zero)
    means, quats, scales, opacities, colors = mesh_surfels(vertices, faces, features)
    return rasterize(means, quats, scales, opacities, colors, camera.viewmat, camera.K, camera.width,
                     camera.height, background=background, backend=backend)
