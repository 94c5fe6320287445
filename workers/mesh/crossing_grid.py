"""How many triangles a cell of MeshFix's crossing grid may hold, chosen per mesh.

MeshFix's crossing test (``selectIntersectingTriangles``) splits the mesh's box in halves
along the longest side until a cell holds at most ``tris_per_cell`` triangles (a triangle
whose box meets both halves goes into both; at most 10,000 splits), then tests every pair
of triangles within each cell. Its cost is the number of those pair tests, and which cell
size makes it smallest depends on the mesh:

- at 200 triangles a cell, a mesh of a few thousand evenly sized faces costs half or less of
  what it costs at 1,000 (every face is in one cell of 1,000 up to ~1,000 faces);
- at 200, a CAD part whose faces are fans of needles spanning the part (more than 200 boxes
  over one point) never gets a cell under 200: the grid splits 10,000 times and tests
  every pair in each cell (the synthetic ``cad_part`` at full size: over 15 s, stopped,
  against 0.7-1.5 s at 1,000; its repair took 125-160 s instead of about 7);
- past a million faces the 10,000 splits run out before cells of 200 are reached, and the
  cells left are tested whole (a 1.3M-face sphere keeps 1,000).

The answer does not depend on the cell size beyond the rounding of MeshFix's predicates:
every pair whose boxes meet shares a cell whatever the size (a box meeting a half of a cell
is put into it), and only pairs whose boxes meet can cross. (MeshFix's orientation tests
are not exact in this build, so a pair tested in both orders can be answered both ways;
on the corpora two meshes move by one or two faces, see :mod:`workers.mesh.crossings`.)

Pair tests are not all alike, though: a pair whose boxes meet goes through the orientation
tests, and is tested again in every cell the two share (more of them when cells are small),
while a pair far apart is rejected by its boxes at once. On a CAD part whose faces mostly
touch (the synthetic ``cad_part`` at 0.3 scale: 1,980 faces, 721 crossing) 200 a cell makes
8 % fewer pair tests than 1,000 and takes 3.4 times as long (96 ms against 28).

So :func:`cell_triangles` builds MeshFix's grid here for both sizes (the same halving of the
same boxes, on arrays) and counts its pair tests; the small cells are taken only when they
make at most :data:`SMALL_CELL_SHARE` of the large cells' tests, and their count stops as
soon as it passes that.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import NDArray

Faces = NDArray[np.int64]
Points = NDArray[np.float64]

LARGE_CELL: Final = 1000
"""The cell size that was the fastest over the project corpus when one size served all:
it bounds the cost on parts made of needle fans."""

SMALL_CELL: Final = 200
"""The cell size taken when it clearly saves pair tests: on the registry and synthetic
corpora's inputs it takes 0.2-0.6 of the time 1,000 takes where chosen (a 16k-face tube
through itself 32 ms against 100-150)."""

SMALL_CELL_SHARE: Final = 0.4
"""Largest share of the large cells' pair tests the small cells may make to be chosen. Over
the corpora the small cells ran faster wherever they made under 40 % of the tests, and no
faster, or slower, at 48-92 % (mostly touching faces: see the module docstring)."""

MAX_SPLITS: Final = 10_000
"""MeshFix's ``DI_MAX_NUMBER_OF_CELLS``: splits made before every cell left is tested whole."""

_MEMBERSHIP_LIMIT: Final = 4
"""Triangle-in-cell entries, per triangle, past which a size is given up as too costly (and
the count stopped, which bounds its own time and memory: choosing for a 1.3M-face sphere
took 2 s and 234 MB at peak, its boxes included): the fans that stall the grid copy a
triangle into thousands of cells, while the corpora's meshes need at most 3 per triangle at
either size. A mesh past it at 200 a cell keeps 1,000, which only costs speed."""

_ROOT_MARGIN: Final = 1e-9
"""MeshFix's ``DI_EPSILON_POINT``: how far its first cell reaches past the vertices."""


def cell_triangles(points: Points, faces: Faces) -> int:
    """:data:`SMALL_CELL` where MeshFix's grid makes at most :data:`SMALL_CELL_SHARE` of the
    pair tests with it that it makes with :data:`LARGE_CELL`, else :data:`LARGE_CELL`.

    Parameters
    ----------
    points
        ``(n, 3) float`` positions, in any frame: the grid's halving is the same once the
        mesh is moved or scaled (as MeshFix is given it, into a unit box), but for MeshFix's
        margin of 1e-9 round its first cell.
    faces
        ``(m, 3) int`` indices into ``points``.
    """
    if len(faces) <= SMALL_CELL:
        return LARGE_CELL  # one cell either way
    triangles = np.asarray(points, dtype=np.float64)[np.asarray(faces, dtype=np.int64)]
    lo, hi = triangles.min(axis=1), triangles.max(axis=1)
    large = pair_tests(lo, hi, LARGE_CELL)
    if not math.isfinite(large):
        return LARGE_CELL  # smaller cells copy the triangles more still
    budget = SMALL_CELL_SHARE * large
    return SMALL_CELL if pair_tests(lo, hi, SMALL_CELL, budget=budget) <= budget else LARGE_CELL


def pair_tests(lo: Points, hi: Points, size: int, budget: float = np.inf) -> float:
    """Pair tests MeshFix's grid makes at ``size`` triangles a cell; ``inf`` once the count
    passes ``budget`` or the grid copies triangles past :data:`_MEMBERSHIP_LIMIT`.

    ``lo`` and ``hi`` are the triangles' boxes, ``(m, 3)``. The grid is built a generation
    of cells at a time, which is the order MeshFix's queue of cells splits them in.
    """
    count = len(lo)
    cell_lo = (lo.min(axis=0) - _ROOT_MARGIN)[None, :]
    cell_hi = (hi.max(axis=0) + _ROOT_MARGIN)[None, :]
    member_cell = np.zeros(count, dtype=np.int64)
    member = np.arange(count, dtype=np.int64)
    splits, cost = 0, 0.0
    while len(member):
        sizes = np.bincount(member_cell, minlength=len(cell_lo)).astype(np.float64)
        split = sizes > size
        if splits + int(split.sum()) > MAX_SPLITS:
            allowed = max(MAX_SPLITS + 1 - splits, 0)
            split[np.flatnonzero(split)[allowed:]] = False
        leaves = sizes[~split]
        cost += float((leaves * (leaves - 1.0) / 2.0).sum())
        if cost > budget:
            return np.inf
        parents = np.flatnonzero(split)
        if len(parents) == 0:
            break
        splits += len(parents)
        extent = cell_hi[parents] - cell_lo[parents]
        axis = np.argmax(extent, axis=1)  # the first longest side, as MeshFix picks it
        rows = np.arange(len(parents))
        middle = cell_hi[parents, axis] - extent[rows, axis] / 2.0
        child = np.full(len(cell_lo), -1, dtype=np.int64)
        child[parents] = rows
        kept = split[member_cell]
        parent = child[member_cell[kept]]
        triangle = member[kept]
        low = lo[triangle, axis[parent]] <= middle[parent]
        high = hi[triangle, axis[parent]] >= middle[parent]
        member_cell = np.concatenate([2 * parent[low], 2 * parent[high] + 1])
        member = np.concatenate([triangle[low], triangle[high]])
        if len(member) > _MEMBERSHIP_LIMIT * count:
            return np.inf
        lower_hi = cell_hi[parents].copy()
        lower_hi[rows, axis] = middle
        upper_lo = cell_lo[parents].copy()
        upper_lo[rows, axis] = middle
        cell_lo = np.stack([cell_lo[parents], upper_lo], axis=1).reshape(-1, 3)
        cell_hi = np.stack([lower_hi, cell_hi[parents]], axis=1).reshape(-1, 3)
    return cost
