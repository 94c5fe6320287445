"""Cracks at T-junctions: an open edge with another open edge's corner lying on it.

A CAD export that subdivides one face and not its neighbour (a cylinder's wall split
lengthwise, its caps not; a plate meshed finer than the boss on it) leaves corners of the
fine side lying on the edges of the coarse one. Every position is shared, so welding joins
nothing, yet no edge of the fine side matches an edge of the coarse side: the surface is
geometrically closed and topologically open along a crack of no width. MeshFix fills such a
crack as a hole with triangles of no area and then cuts them away again: a 32-sided cylinder
with its wall split lengthwise came back from the repair as 148 faces and 30 % of its volume,
and from pymeshfix with open edges. A slicer reading the same file prints the cylinder.

:func:`split_at_t_junctions` splits each open edge at the open corners lying on it, which
makes the fine side's edges and the coarse side's edges the same edges; the caller keeps the
result only where that closes edges (see :func:`workers.mesh.repair.repair`).
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

Faces = NDArray[np.int64]
Points = NDArray[np.float64]

MAX_ROUNDS: Final = 3
"""Rounds of splitting: a round splits one open edge of each face (the faces it makes hold
the other two), so three rounds split a triangle with corners lying on all of its edges."""

MAX_CANDIDATES: Final = 2_000_000
"""Corner-edge pairs weighed in one round, past which the cracks are left to the repair: a
long open edge near many open corners (the rim of a large hole in a fine mesh) pairs each
with all of them, and such holes are not cracks."""


def split_at_t_junctions(vertices: Points, faces: Faces, reach: float) -> Faces | None:
    """``faces`` with every open edge split at the open corners within ``reach`` of it, or
    ``None`` where no open corner lies on an open edge.

    Only faces change: each face with corners lying on one of its open edges is replaced by
    a fan from its opposite corner through them, so no position moves or is made up.

    Parameters
    ----------
    vertices
        ``(n, 3) float`` positions.
    faces
        ``(m, 3) int`` indices into ``vertices``.
    reach
        Greatest distance (mesh units) from an edge at which a corner counts as lying on it;
        corners within ``reach`` of the edge's ends are left to a weld.
    """
    points = np.asarray(vertices, dtype=np.float64)
    current = np.asarray(faces, dtype=np.int64)
    changed = False
    for _ in range(MAX_ROUNDS):
        split = _split_round(points, current, reach)
        if split is None:
            break
        current, changed = split, True
    return current if changed else None


def _split_round(points: Points, faces: Faces, reach: float) -> Faces | None:
    """One round: each face with open corners on an open edge of its own is split along
    the first such edge; ``None`` when there is none (or too many pairs to weigh)."""
    face, side, start, end = _open_edges(faces)
    if len(face) == 0:
        return None
    corners = np.unique(np.concatenate([start, end]))
    tree = cKDTree(points[corners])
    a, b = points[start], points[end]
    half = 0.5 * np.linalg.norm(b - a, axis=1)
    counts = tree.query_ball_point(0.5 * (a + b), half + reach, return_length=True)
    if int(np.sum(counts)) > MAX_CANDIDATES:
        return None
    near = tree.query_ball_point(0.5 * (a + b), half + reach)
    edge = np.repeat(np.arange(len(face)), counts)
    corner = corners[np.concatenate([np.asarray(n, dtype=np.int64) for n in near])]
    along, off = _placed(points[corner], a[edge], b[edge])
    length = 2.0 * half[edge]
    inner = (along * length > reach) & ((1.0 - along) * length > reach) & (off <= reach)
    opposite = faces[face[edge], (side[edge] + 2) % 3]  # a needle's own corner on its edge
    inner &= (corner != start[edge]) & (corner != end[edge]) & (corner != opposite)
    if not inner.any():
        return None
    edge, corner, along = edge[inner], corner[inner], along[inner]
    # one edge per face this round: the first of its open edges that has corners on it
    first = np.full(len(faces), len(face), dtype=np.int64)
    np.minimum.at(first, face[edge], edge)
    chosen = first[face[edge]] == edge
    edge, corner, along = edge[chosen], corner[chosen], along[chosen]
    order = np.lexsort((along, edge))
    return _fanned(faces, face, side, edge[order], corner[order])


def _open_edges(faces: Faces) -> tuple[Faces, Faces, Faces, Faces]:
    """The edges used by one face only: that face, the edge's place in it (0: corners 0-1,
    1: 1-2, 2: 2-0) and its start and end corners in the face's winding."""
    start = faces.reshape(-1)
    end = np.roll(faces, -1, axis=1).reshape(-1)
    low, high = np.minimum(start, end), np.maximum(start, end)
    key = low * (int(faces.max(initial=0)) + 1) + high
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    single = np.flatnonzero(counts[inverse] == 1)
    return single // 3, single % 3, start[single], end[single]


def _placed(point: Points, a: Points, b: Points) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Where each ``point`` lies along the segment ``a``-``b`` (0 at ``a``, 1 at ``b``) and its
    distance from the segment's line."""
    direction = b - a
    squared = np.einsum("ij,ij->i", direction, direction)
    along = np.einsum("ij,ij->i", point - a, direction) / np.where(squared > 0, squared, 1.0)
    foot = a + along[:, None] * direction
    return along, np.linalg.norm(point - foot, axis=1)


def _fanned(faces: Faces, face: Faces, side: Faces, edge: Faces, corner: Faces) -> Faces:
    """``faces`` with each face owning one of the open ``edge`` (indices into ``face`` and
    ``side``) replaced by a fan from its opposite corner through the ``corner`` lying on that
    edge (``edge`` and ``corner`` sorted by edge, then by place along it)."""
    edges, starts, counts = np.unique(edge, return_index=True, return_counts=True)
    new: list[Faces] = []
    for e, s, c in zip(edges.tolist(), starts.tolist(), counts.tolist(), strict=True):
        f, k = int(face[e]), int(side[e])
        a, b, opposite = faces[f, k], faces[f, (k + 1) % 3], faces[f, (k + 2) % 3]
        chain = np.concatenate([[a], corner[s:s + c], [b]])
        new.append(np.column_stack([chain[:-1], chain[1:], np.full(c + 1, opposite)]))
    kept = np.ones(len(faces), dtype=bool)
    kept[face[edges]] = False
    return np.concatenate([faces[kept], *new])
