"""Extract a closed triangle surface from a signed field by marching tetrahedra.

Marching cubes with the classic 256-case table has ambiguous faces that can leave cracks or
pinch the surface; marching tetrahedra has no ambiguous case. Every cube is cut into the
same six tetrahedra around its main diagonal (the Freudenthal split), so neighbouring
cubes agree on their shared face diagonals, the field is piecewise linear over one
consistent triangulation, and its zero set is a closed 2-manifold as long as the grid's
faces are negative. Vertices are keyed by the grid edge they lie on, so triangles from
different tetrahedra share them exactly: the mesh is watertight by construction, not by
vertex welding.

The whole extraction is a handful of vectorised torch ops over the cubes the surface
crosses, so it runs on the field's device.
"""

from __future__ import annotations

from itertools import permutations

import numpy as np
import torch
import torch.nn.functional as F

#: The six edges of a tetrahedron, as pairs of its local vertex numbers.
TET_EDGES = np.array([(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)])
#: Interpolation parameters are kept this far from an edge's ends, so two vertices never
#: coincide (which would give zero-area triangles that a later weld would pinch).
EDGE_MARGIN = 1e-3


def _freudenthal_tetrahedra() -> np.ndarray:
    """(6, 4, 3) int: corner offsets of the six tetrahedra of the unit cube.

    Each walks from (0, 0, 0) to (1, 1, 1) along the axes in one of the six orders.
    """
    tetrahedra = []
    for order in permutations(range(3)):
        corner = np.zeros(3, dtype=np.int64)
        corners = [corner.copy()]
        for axis in order:
            corner[axis] = 1
            corners.append(corner.copy())
        tetrahedra.append(corners)
    return np.array(tetrahedra)


def _oriented_triangles(corners: np.ndarray, inside: list[bool]) -> list[tuple[int, int, int]]:
    """Triangles (as edge numbers) for one tetrahedron case, wound to face outwards.

    The winding is decided on edge midpoints, where the cut is a planar triangle or
    parallelogram; it is a topological property (which side is inside), so it stays
    consistent whatever the interpolated positions are.
    """
    ins = [v for v in range(4) if inside[v]]
    outs = [v for v in range(4) if not inside[v]]
    if len(ins) in (0, 4):
        return []
    edge_of = {frozenset(map(int, e)): n for n, e in enumerate(TET_EDGES)}
    if len(ins) == 2:
        (a, b), (c, d) = ins, outs
        cycle = [(a, c), (a, d), (b, d), (b, c)]
        loops = [cycle[:3], [cycle[0], cycle[2], cycle[3]]]
    else:
        lone, others = (ins[0], outs) if len(ins) == 1 else (outs[0], ins)
        loops = [[(lone, v) for v in others]]
    outward = corners[outs].mean(axis=0) - corners[ins].mean(axis=0)
    triangles = []
    for loop in loops:
        points = np.array([(corners[u] + corners[v]) / 2.0 for u, v in loop])
        normal = np.cross(points[1] - points[0], points[2] - points[0])
        if normal @ outward < 0:
            loop = loop[::-1]
        first, second, third = (edge_of[frozenset(pair)] for pair in loop)
        triangles.append((first, second, third))
    return triangles


def _triangle_table(tetrahedra: np.ndarray) -> np.ndarray:
    """(6, 16, 2, 3) int: edge numbers of up to two triangles per tetrahedron and case.

    The case number has bit ``v`` set when local vertex ``v`` is inside; unused rows are -1.
    """
    table = np.full((len(tetrahedra), 16, 2, 3), -1, dtype=np.int64)
    for t, corners in enumerate(tetrahedra):
        for case in range(16):
            inside = [bool(case >> v & 1) for v in range(4)]
            for n, triangle in enumerate(_oriented_triangles(corners.astype(float), inside)):
                table[t, case, n] = triangle
    return table


TETRAHEDRA = _freudenthal_tetrahedra()
TRIANGLE_TABLE = _triangle_table(TETRAHEDRA)


def marching_tetrahedra(field: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Triangulate the zero level set of a field, positive inside.

    Parameters
    ----------
    field : (X, Y, Z) float tensor; every face of the grid must be <= 0 for the result to
        be closed (values exactly 0 count as outside)

    Returns
    -------
    vertices : (n, 3) float32 tensor of grid coordinates (x, y, z), on the field's device
    faces : (m, 3) int64 tensor of vertex indices, wound counter-clockwise seen from outside
    """
    device = field.device
    shape = field.shape
    values = field.flatten()
    base = _crossed_cubes(field > 0)
    offsets = torch.as_tensor(TETRAHEDRA, device=device)
    corners = _flat_index(base[:, None, None, :] + offsets[None], shape)
    inside = (values[corners] > 0).long()
    case = (inside << torch.arange(4, device=device)).sum(dim=-1)
    table = torch.as_tensor(TRIANGLE_TABLE, device=device)
    triangles = table[torch.arange(6, device=device)[None, :], case]
    cube, tet, slot = torch.nonzero(triangles[..., 0] >= 0, as_tuple=True)
    edges = torch.as_tensor(TET_EDGES, device=device)[triangles[cube, tet, slot]]
    ends = corners[cube[:, None, None], tet[:, None, None], edges]
    low, high = ends.amin(dim=-1), ends.amax(dim=-1)
    keys, faces = torch.unique(low * values.numel() + high, return_inverse=True)
    vertices = _edge_crossings(field, keys // values.numel(), keys % values.numel())
    return vertices, faces.view(-1, 3)


def _crossed_cubes(inside: torch.Tensor) -> torch.Tensor:
    """(k, 3) int64 lower corners of the cubes with both inside and outside corners."""
    occupancy = inside.float()[None, None]
    any_inside = F.max_pool3d(occupancy, 2, stride=1)[0, 0] > 0
    any_outside = F.max_pool3d(1.0 - occupancy, 2, stride=1)[0, 0] > 0
    return torch.nonzero(any_inside & any_outside)


def _flat_index(points: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Flat (row-major) indices of (..., 3) integer grid points in a grid of `shape`."""
    return (points[..., 0] * shape[1] + points[..., 1]) * shape[2] + points[..., 2]


def _grid_points(flat: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """(n, 3) float32 grid coordinates of (n,) flat indices."""
    z = flat % shape[2]
    y = flat // shape[2] % shape[1]
    x = flat // (shape[1] * shape[2])
    return torch.stack([x, y, z], dim=-1).float()


def _edge_crossings(field: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, 3) float32 points where the field's linear interpolant crosses zero on a-b."""
    values = field.flatten()
    fa, fb = values[a], values[b]
    t = (fa / (fa - fb)).clamp(EDGE_MARGIN, 1.0 - EDGE_MARGIN)
    pa, pb = _grid_points(a, field.shape), _grid_points(b, field.shape)
    return pa + t[:, None] * (pb - pa)
