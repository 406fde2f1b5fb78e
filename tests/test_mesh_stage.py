import math

import numpy as np
import pytest
import torch

from avatar.camera import Camera
from avatar.dmtet import marching_tets
from avatar.gaussian_init import INHERITED_MLPS, gaussians_from_mesh_head, sample_surface
from avatar.mesh_render import render_mesh
from avatar.mesh_stage import MeshHead, ellipsoid_sdf, fit_initial_sdf, head_prior
from avatar.super_resolution import SR_FACTOR
from avatar.tetgrid import make_tet_grid
from avatar.train_gaussians import augmented_view
from avatar.training_data import TrainingData
from tests.training_fixtures import micro_profile


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sphere(radius=0.5, res=12):
    grid = make_tet_grid(res, (-1, -1, -1), (1, 1, 1))
    return marching_tets(grid.vertices, grid.tets, grid.vertices.norm(dim=-1) - radius), grid


def test_mesh_render_silhouette_matches_the_projected_disc():
    mesh, _ = _sphere(0.5)
    camera = Camera.looking_at_origin(48, 48, fov_deg=40.0, distance=3.0)
    colors = torch.tensor([0.2, 0.4, 0.6]).expand(mesh.vertices.shape[0], 3)
    out = render_mesh(mesh.vertices, mesh.faces, colors, camera, background=torch.ones(3))
    # The silhouette of a sphere of radius r at distance d is a disc of angular radius asin(r/d).
    f = float(camera.K[0, 0])
    r_px = f * math.tan(math.asin(0.5 / 3.0))
    ys, xs = torch.meshgrid(torch.arange(48) + 0.5, torch.arange(48) + 0.5, indexing="ij")
    dist = ((xs - 24) ** 2 + (ys - 24) ** 2).sqrt()
    alpha = out.alpha[..., 0]
    assert float(alpha[dist < r_px - 2].min()) > 0.95
    assert float(alpha[dist > r_px + 2].max()) < 0.05
    inside = out.image[dist < r_px - 2]
    assert torch.allclose(inside, torch.tensor([0.2, 0.4, 0.6]), atol=0.05)


def test_mesh_render_gradient_moves_the_silhouette():
    mesh, _ = _sphere(0.4)
    verts = mesh.vertices.clone().requires_grad_()
    camera = Camera.looking_at_origin(32, 32, fov_deg=40.0, distance=3.0)
    out = render_mesh(verts, mesh.faces, torch.ones(verts.shape[0], 1), camera)
    out.alpha.sum().backward()
    # Growing the silhouette: the gradient points outward (positive radial component) on the rim.
    radial = (verts.grad * verts.detach()).sum(-1)
    rim = verts.detach()[:, 2].abs() < 0.1
    assert float(radial[rim].sum()) > 0


def test_sample_surface_lies_on_the_mesh():
    mesh, grid = _sphere(0.6, 16)
    pts = sample_surface(mesh, 500, torch.Generator().manual_seed(0))
    assert pts.shape == (500, 3)
    assert float((pts.norm(dim=-1) - 0.6).abs().max()) < grid.cell_size
    # Uniform by area: both hemispheres get about half.
    assert 180 < int((pts[:, 0] > 0).sum()) < 320


def test_gaussians_inherit_the_mesh_stage_mlps(shared_data):
    profile = micro_profile()
    prior = head_prior(np.zeros(100, np.float32))
    mesh_head = MeshHead.around(prior, profile.model, profile.mesh)
    err = fit_initial_sdf(mesh_head, prior, 100)
    assert err < 0.05
    model = gaussians_from_mesh_head(mesh_head, profile.model)
    assert model.num_gaussians == profile.model.num_points + profile.model.num_mouth_points
    for name in INHERITED_MLPS:
        for a, b in zip(getattr(model, name).parameters(), getattr(mesh_head.head, name).parameters()):
            assert torch.equal(a, b)
    assert torch.equal(model.landmarks, mesh_head.head.landmarks)
    # Surface points sit near the SDF's zero level (within a grid cell).
    with torch.no_grad():
        sdf = mesh_head.geometry_at(model.positions[: profile.model.num_points])[0]
    assert float(sdf.abs().max()) < mesh_head.cell_size


def test_ellipsoid_sdf_is_exact_for_a_sphere():
    p = torch.randn(50, 3)
    c = torch.tensor([0.1, 0.2, -0.1])
    assert torch.allclose(ellipsoid_sdf(p, c, torch.full((3,), 0.7)), (p - c).norm(dim=-1) - 0.7, atol=1e-6)


def test_augmented_view_keeps_render_and_ground_truth_aligned():
    r = 8
    hr = SR_FACTOR * r
    img = torch.zeros(1, hr, hr, 3, dtype=torch.uint8)
    K = torch.tensor([[[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]]])
    data = TrainingData(np.arange(1), img, torch.zeros(1, hr, hr, dtype=torch.uint8), torch.zeros(1, 53),
                        torch.zeros(1, 6), torch.zeros(1, 68, 3), K, torch.eye(4)[None], dataset_size=32,
                        image_size=hr)
    # Mark one hr pixel; after the zoomed crop the camera must project its 3D ray onto the same spot.
    u, v = 13, 19
    img[0, v, u] = 255
    data.masks[0, v, u] = 255
    assert augmented_view(data, 0, r, SR_FACTOR, 1.5, torch.Generator(), "cpu")[3] is None
    data.window = torch.ones(hr, hr)
    data.window[v, u] = 0.0
    gen = torch.Generator().manual_seed(3)
    for _ in range(5):
        camera, gt, mask, window = augmented_view(data, 0, r, SR_FACTOR, 1.5, gen, "cpu")
        K0 = data.camera(0, r).K
        ray = torch.tensor([((u + 0.5) / SR_FACTOR - K0[0, 2]) / K0[0, 0], ((v + 0.5) / SR_FACTOR - K0[1, 2]) / K0[1, 1], 1.0])
        proj = camera.K @ ray
        px = proj[:2] / proj[2] * SR_FACTOR  # in hr pixels of the augmented view
        peak = torch.nonzero(gt[..., 0] == gt[..., 0].max())[0]
        assert torch.equal(torch.nonzero(mask == mask.max())[0], peak)  # the mask is cropped with the image
        assert torch.equal(torch.nonzero(window == window.min())[0], peak)  # and so is the frame window
        assert abs(float(px[0]) - (int(peak[1]) + 0.5)) < 1.5 and abs(float(px[1]) - (int(peak[0]) + 0.5)) < 1.5


def test_silhouette_hull_of_a_projected_disc():
    # Every view sees a disc mask that is exactly the projection of a sphere of radius 0.3 at the
    # origin posed at (0, 0, 2): points well inside the sphere are in every mask, far points in none.
    r, size, n = 32, 32, 3
    f = 40.0
    K = torch.tensor([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    radius_px = f * math.tan(math.asin(0.3 / 2.0))
    disc = (((xs - size / 2) ** 2 + (ys - size / 2) ** 2).sqrt() < radius_px).to(torch.uint8) * 255
    rot = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.3, 0.0], [0.2, 0.0, 0.0]])  # the sphere looks the same
    data = TrainingData(np.arange(n), torch.full((n, size, size, 3), 255, dtype=torch.uint8), disc.expand(n, -1, -1),
                        torch.zeros(n, 53), torch.cat([rot, torch.tensor([[0.0, 0.0, 2.0]]).expand(n, -1)], 1),
                        torch.zeros(n, 68, 3), K.expand(n, -1, -1), torch.eye(4).expand(n, -1, -1),
                        dataset_size=size, image_size=size)
    from avatar.mesh_stage import silhouette_hull

    inside = torch.tensor([[0.0, 0.0, 0.0], [0.1, -0.1, 0.05]])
    outside = torch.tensor([[0.6, 0.0, 0.0], [0.0, 0.5, 0.2]])
    hull = silhouette_hull(torch.cat([inside, outside]), data, resolution=r)
    assert torch.allclose(hull[:2], torch.ones(2), atol=0.05)
    assert torch.allclose(hull[2:], torch.zeros(2), atol=0.05)
