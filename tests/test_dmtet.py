import torch

from avatar.dmtet import marching_tets, mesh_edges
from avatar.tetgrid import make_tet_grid, unique_edges


def test_tet_grid_is_conforming_and_fills_the_box():
    grid = make_tet_grid(3, (-1, -1, -1), (1, 1, 1))
    assert grid.vertices.shape == (4 ** 3, 3)
    assert grid.tets.shape == (6 * 27, 4)
    v = grid.vertices[grid.tets].double()
    volume = torch.linalg.det(v[:, 1:] - v[:, :1]) / 6
    assert bool((volume > 0).all())
    assert abs(float(volume.sum()) - 8.0) < 1e-9  # the tets tile the 2x2x2 box exactly
    # Conforming: each triangle is shared by 2 tets, or by 1 on the box boundary.
    faces = torch.cat([grid.tets[:, [0, 1, 2]], grid.tets[:, [0, 1, 3]], grid.tets[:, [0, 2, 3]],
                       grid.tets[:, [1, 2, 3]]])
    _, counts = torch.unique(torch.sort(faces, 1).values, dim=0, return_counts=True)
    assert set(counts.tolist()) == {1, 2}
    assert (counts == 1).sum() == 6 * 9 * 2  # boundary: 9 squares per box side, 2 triangles each
    assert unique_edges(grid.tets).shape[1] == 2


def test_dmtet_sphere_is_closed_and_close_to_the_surface():
    grid = make_tet_grid(16, (-1, -1, -1), (1, 1, 1))
    center = torch.tensor([0.05, -0.03, 0.02])
    radius = 0.6
    sdf = (grid.vertices - center).norm(dim=-1) - radius
    mesh = marching_tets(grid.vertices, grid.tets, sdf)
    assert mesh.num_faces > 500
    edges, counts = mesh_edges(mesh.faces)
    assert bool((counts == 2).all()), "every edge must be shared by exactly two faces"
    # Closed surface of genus 0: Euler characteristic V - E + F = 2 (only used vertices count).
    used = torch.unique(mesh.faces).numel()
    assert used == mesh.vertices.shape[0]
    assert used - edges.shape[0] + mesh.num_faces == 2
    dist = ((mesh.vertices - center).norm(dim=-1) - radius).abs()
    assert float(dist.max()) < grid.cell_size
    # Outward orientation: the signed volume (divergence theorem) is positive and near 4/3 πr³.
    p = mesh.vertices[mesh.faces].double()
    volume = float(torch.linalg.det(p).sum() / 6)
    assert abs(volume - 4 / 3 * torch.pi * radius ** 3) < 0.05 * 4 / 3 * torch.pi * radius ** 3


def test_dmtet_is_differentiable_in_sdf_and_positions():
    grid = make_tet_grid(6, (-1, -1, -1), (1, 1, 1))
    sdf = ((grid.vertices.double()).norm(dim=-1) - 0.55).requires_grad_()
    verts = grid.vertices.double().requires_grad_()
    mesh = marching_tets(verts, grid.tets, sdf)
    loss = (mesh.vertices ** 2).sum()
    gs, gv = torch.autograd.grad(loss, [sdf, verts])
    assert gs.abs().sum() > 0 and gv.abs().sum() > 0

    # Finite differences on the SDF (the topology does not change for a tiny step).
    def f(s):
        return (marching_tets(verts.detach(), grid.tets, s).vertices ** 2).sum()

    i = int(torch.nonzero(gs.abs() > 1e-3)[0])
    e = torch.zeros_like(sdf)
    e[i] = 1e-6
    fd = (f(sdf.detach() + e) - f(sdf.detach() - e)) / 2e-6
    assert abs(float(fd) - float(gs[i])) < 1e-4 * max(1.0, abs(float(fd)))
