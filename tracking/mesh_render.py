"""A small CPU triangle rasterizer for diagnostic renders of the fitted face mesh.

Flat Lambert shading with the light at the camera, a z-buffer, back faces culled. Vectorised in
numpy: each triangle is tested against every pixel centre (+0.5) of its bounding box, triangles
grouped by box size so the candidate grids stay small; the nearest candidate wins each pixel.
Meant for insets a few hundred pixels across, not for production rendering.
"""
from __future__ import annotations

import numpy as np

_BOX_SIZES = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def rasterize_mesh(pixels: np.ndarray, depth: np.ndarray, normals_z: np.ndarray, faces: np.ndarray,
                   width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel shading and coverage of a projected mesh.

    pixels (V, 2) image positions, depth (V,) camera z (> 0), faces (F, 3) vertex indices,
    normals_z (F,) the z component of each face's unit normal in camera space (negative = facing
    the camera). Returns shade (H, W) float in [0, 1] and mask (H, W) bool.
    """
    tri = pixels[faces]  # (F, 3, 2)
    front = (normals_z < 0) & (depth[faces] > 0).all(1)
    lo = np.floor(tri.min(1) - 0.5).astype(np.int64)
    hi = np.ceil(tri.max(1) - 0.5).astype(np.int64)
    on_screen = (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] < width) & (lo[:, 1] < height)
    keep = np.flatnonzero(front & on_screen)
    size = (hi - lo)[keep].max(1) + 1

    best_depth = np.full(height * width, np.inf)
    shade = np.zeros(height * width)
    previous = 0
    for box in _BOX_SIZES:
        group = keep[(size > previous) & (size <= box)]
        previous = box
        if group.size == 0:
            continue
        # Candidate pixel centres: the box x box grid from each triangle's lower corner.
        offsets = np.stack(np.meshgrid(np.arange(box), np.arange(box), indexing="xy"), -1).reshape(-1, 2)
        px = lo[group][:, None, :] + offsets[None]  # (G, box*box, 2)
        centre = px + 0.5
        a, b, c = (tri[group][:, i][:, None, :] for i in range(3))
        area = _cross(b - a, c - a)  # (G, 1)
        w0 = _cross(c - b, centre - b) / area
        w1 = _cross(a - c, centre - c) / area
        w2 = 1.0 - w0 - w1
        inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & (px[..., 0] >= 0) & (px[..., 1] >= 0) \
            & (px[..., 0] < width) & (px[..., 1] < height) & (np.abs(area) > 1e-12)
        z = depth[faces[group]]  # (G, 3)
        # Perspective-correct depth: interpolate 1/z linearly in the image.
        inv_z = w0 * (1 / z[:, 0:1]) + w1 * (1 / z[:, 1:2]) + w2 * (1 / z[:, 2:3])
        g, k = np.nonzero(inside)
        flat = px[g, k, 1] * width + px[g, k, 0]
        zz = 1.0 / inv_z[g, k]
        face_shade = -normals_z[group][g]
        order = np.lexsort((zz, flat))
        flat, zz, face_shade = flat[order], zz[order], face_shade[order]
        first = np.ones(flat.size, bool)
        first[1:] = flat[1:] != flat[:-1]
        flat, zz, face_shade = flat[first], zz[first], face_shade[first]
        nearer = zz < best_depth[flat]
        best_depth[flat[nearer]] = zz[nearer]
        shade[flat[nearer]] = face_shade[nearer]
    mask = np.isfinite(best_depth).reshape(height, width)
    return shade.reshape(height, width), mask


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def face_normals_z(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """z component of the unit normal of each face (camera space, counter-clockwise = front)."""
    v = vertices[faces]
    n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    return n[:, 2] / np.maximum(np.linalg.norm(n, axis=1), 1e-12)
