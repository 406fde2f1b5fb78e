"""Deep Marching Tetrahedra (Shen et al. 2021): a triangle mesh from SDF values on a tet grid.

Inputs are per-grid-vertex SDF values s (negative inside) and deformed vertex positions
v (grid vertices plus learned offsets). On every grid edge whose endpoints differ in sign a mesh
vertex is placed at the linear zero crossing

    p = (v_a·s_b - v_b·s_a) / (s_b - s_a),

which is differentiable with respect to s and v; this is what lets silhouette and RGB losses
shape the SDF. One mesh vertex per grid edge (shared by every tet around that edge) keeps the
mesh watertight. A tet with one corner on one side cuts out a triangle (its 3 crossing edges);
with two on each side, a quad (the 4 crossing edges in cyclic order) split into two triangles.
Triangles are oriented so their normals point from the inside (s < 0) to the outside.

Which tets and edges are cut is a discrete choice and carries no gradient, as in DMTet.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from avatar.tetgrid import TET_EDGES, edge_table, unique_pairs


@dataclass
class Mesh:
    vertices: torch.Tensor  # (V, 3) float, differentiable w.r.t. the SDF and the grid vertices
    faces: torch.Tensor  # (F, 3) int64, counter-clockwise seen from outside

    @property
    def num_faces(self) -> int:
        return self.faces.shape[0]


def _local_edge(a: int, b: int) -> int:
    return TET_EDGES.index((min(a, b), max(a, b)))


def _case_table() -> tuple[list[list[list[int]]], torch.Tensor]:
    """For each of the 16 inside/outside patterns, the triangles as triples of local edge ids
    (unoriented), plus a (16,) count of triangles."""
    table: list[list[list[int]]] = []
    for code in range(16):
        inside = [c for c in range(4) if code >> c & 1]
        outside = [c for c in range(4) if not code >> c & 1]
        if len(inside) in (0, 4):
            table.append([])
        elif len(inside) in (1, 3):
            lone, rest = (inside[0], outside) if len(inside) == 1 else (outside[0], inside)
            table.append([[_local_edge(lone, r) for r in rest]])
        else:
            (a, b), (c, d) = inside, outside
            cycle = [_local_edge(a, c), _local_edge(a, d), _local_edge(b, d), _local_edge(b, c)]
            table.append([cycle[:3], [cycle[0], cycle[2], cycle[3]]])
    return table


_TABLE = _case_table()
# (16, 2, 3): triangle slots per case, -1 where a case has fewer triangles.
_TRIS = torch.full((16, 2, 3), -1, dtype=torch.long)
for _code, _tris in enumerate(_TABLE):
    for _slot, _tri in enumerate(_tris):
        _TRIS[_code, _slot] = torch.tensor(_tri)


def marching_tets(vertices: torch.Tensor, tets: torch.Tensor, sdf: torch.Tensor,
                  edges: torch.Tensor | None = None, tet_edges: torch.Tensor | None = None) -> Mesh:
    """Extract the zero level set of `sdf` (V,) on the tet mesh (`vertices` (V, 3), `tets` (T, 4)).

    `edges`, `tet_edges`: the grid's edge table (avatar.tetgrid.edge_table), computed here if not
    given; pass them when extracting repeatedly from one grid."""
    if sdf.shape != vertices.shape[:1]:
        raise ValueError(f"sdf must be ({vertices.shape[0]},), got {tuple(sdf.shape)}")
    device = vertices.device
    with torch.no_grad():
        inside = sdf < 0
        occ = inside[tets]  # (T, 4)
        count = occ.sum(1)
        cut = (count > 0) & (count < 4)
        if edges is None or tet_edges is None:
            edges, tet_edges = edge_table(tets)
        tets_cut = tets[cut]
        occ = occ[cut]
        edge_of = tet_edges[cut]  # (Tc, 6) global edge ids
        crossing = inside[edges[:, 0]] != inside[edges[:, 1]]
        # Renumber crossing edges 0..K-1: they become the mesh vertices.
        mesh_index = torch.full((edges.shape[0],), -1, dtype=torch.long, device=device)
        mesh_index[crossing] = torch.arange(int(crossing.sum()), device=device)
        cross_edges = edges[crossing]

        code = (occ.long() * (2 ** torch.arange(4, device=device))).sum(1)
        tris_local = _TRIS.to(device)[code]  # (Tc, 2, 3)
        has = tris_local[..., 0] >= 0  # (Tc, 2)
        tet_id = torch.arange(tets_cut.shape[0], device=device)[:, None].expand(-1, 2)[has]
        local = tris_local[has]  # (F, 3)
        faces = mesh_index[edge_of[tet_id[:, None], local]]

    sa, sb = sdf[cross_edges[:, 0]], sdf[cross_edges[:, 1]]
    va, vb = vertices[cross_edges[:, 0]], vertices[cross_edges[:, 1]]
    mesh_vertices = (va * sb[:, None] - vb * sa[:, None]) / (sb - sa)[:, None]

    with torch.no_grad():
        # Orient: the normal must point from the tet's inside corners towards its outside ones.
        corners = vertices[tets_cut[tet_id]].detach()  # (F, 4, 3)
        occ_f = occ[tet_id].to(corners.dtype)[..., None]
        inside_c = (corners * occ_f).sum(1) / occ_f.sum(1)
        outside_c = (corners * (1 - occ_f)).sum(1) / (1 - occ_f).sum(1)
        p = mesh_vertices.detach()[faces]
        normal = torch.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], dim=-1)
        flip = (normal * (outside_c - inside_c)).sum(-1) < 0
        faces = torch.where(flip[:, None], faces[:, [0, 2, 1]], faces)
    return Mesh(mesh_vertices, faces)


def mesh_edges(faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(E, 2) unique undirected edges of a triangle mesh and (E,) how many faces use each."""
    pairs = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    pairs = torch.sort(pairs, dim=1).values
    edges, inverse = unique_pairs(pairs)
    counts = torch.bincount(inverse, minlength=edges.shape[0])
    return edges, counts
