"""A regular tetrahedral grid over a box, generated here (no downloaded grid files).

Each cubic cell is split into the 6 tetrahedra of the Kuhn (Freudenthal) triangulation: the
tets around the cell's main diagonal (0,0,0)-(1,1,1), one per ordering of the axes. Every cell
is split the same way, so neighbouring cells agree on the diagonal of their shared square face
and the grid is conforming (every triangle is shared by exactly two tets, or lies on the box
boundary). Vertices are shared between cells (one per lattice point).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch


@dataclass
class TetGrid:
    vertices: torch.Tensor  # (V, 3) float32 lattice points
    tets: torch.Tensor  # (T, 4) int64 vertex indices, positively oriented
    cell_size: float  # edge length of a cubic cell (the same along every axis)

    edges: torch.Tensor  # (E, 2) unique undirected edges, each row sorted (smaller index first)
    tet_edges: torch.Tensor  # (T, 6) index into `edges` of each tet's edges, in TET_EDGES order


def make_tet_grid(resolution: int, lower: tuple[float, float, float] | torch.Tensor,
                  upper: tuple[float, float, float] | torch.Tensor) -> TetGrid:
    """A grid of cubic cells covering the box [lower, upper] with `resolution` cells along its
    longest side (the other sides get as many cells as needed to cover them, so the box grows
    slightly; cells stay cubes so a tet's edges are at most sqrt(3) cells long)."""
    if resolution < 1:
        raise ValueError(f"tet grid resolution must be >= 1, got {resolution}")
    lo = torch.as_tensor(lower, dtype=torch.float64)
    hi = torch.as_tensor(upper, dtype=torch.float64)
    if lo.shape != (3,) or hi.shape != (3,) or not bool((hi > lo).all()):
        raise ValueError(f"tet grid box needs lower < upper (3 values each), got {lower}, {upper}")
    size = float((hi - lo).max()) / resolution
    counts = [max(1, int(torch.ceil((hi[a] - lo[a]) / size - 1e-9))) for a in range(3)]
    center = (lo + hi) / 2
    origin = center - size * torch.tensor(counts, dtype=torch.float64) / 2
    nx, ny, nz = counts
    axes = [torch.arange(n + 1, dtype=torch.float64) for n in counts]
    gi, gj, gk = torch.meshgrid(*axes, indexing="ij")
    vertices = (origin + size * torch.stack([gi, gj, gk], -1).reshape(-1, 3)).float()

    def vid(i, j, k):
        return (i * (ny + 1) + j) * (nz + 1) + k

    ci, cj, ck = torch.meshgrid(torch.arange(nx), torch.arange(ny), torch.arange(nz), indexing="ij")
    ci, cj, ck = ci.reshape(-1), cj.reshape(-1), ck.reshape(-1)
    tets = []
    for perm in itertools.permutations(range(3)):
        corner = [0, 0, 0]
        ids = [vid(ci, cj, ck)]
        for axis in perm:
            corner[axis] = 1
            ids.append(vid(ci + corner[0], cj + corner[1], ck + corner[2]))
        tets.append(torch.stack(ids, -1))
    tets = torch.cat(tets).long()
    tets = orient_tets(vertices, tets)
    edges, tet_edges = edge_table(tets)
    return TetGrid(vertices, tets, size, edges, tet_edges)


def orient_tets(vertices: torch.Tensor, tets: torch.Tensor) -> torch.Tensor:
    """Swap two vertices of every tet with negative signed volume."""
    v = vertices[tets].double()
    volume = torch.linalg.det(v[:, 1:] - v[:, :1])
    flipped = tets.clone()
    neg = volume < 0
    flipped[neg, 2], flipped[neg, 3] = tets[neg, 3], tets[neg, 2]
    return flipped


def edge_table(tets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique undirected edges (E, 2) of a tet mesh and each tet's six edge ids (T, 6)."""
    pairs = torch.sort(tets[:, list(TET_EDGES)], dim=-1).values  # (T, 6, 2)
    edges, inverse = unique_pairs(pairs.reshape(-1, 2))
    return edges, inverse.reshape(-1, 6)


def unique_pairs(pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.unique(pairs, dim=0, return_inverse=True) for non-negative int pairs, via one int64 key
    per pair (1-D unique is an order of magnitude faster than unique over rows)."""
    base = int(pairs.max()) + 1 if pairs.numel() else 1
    keys, inverse = torch.unique(pairs[:, 0] * base + pairs[:, 1], return_inverse=True)
    return torch.stack([keys // base, keys % base], -1), inverse


def unique_edges(tets: torch.Tensor) -> torch.Tensor:
    return edge_table(tets)[0]


# The six edges of a tet as pairs of local corner indices (used by avatar.dmtet too).
TET_EDGES = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
