"""Marching-cubes case tables in the layout of diffusers' Shap-E ``MeshDecoder``.

Shap-E's renderer keeps its triangle tables as buffers (``cases``, ``masks``) that are
filled only when a real checkpoint is loaded; a freshly built renderer has all-zero tables
and so extracts no surface at all. The tables are not learned: they follow from the cube
geometry, so they are derived here instead of being copied from a checkpoint.

Layout (as read by ``MeshDecoder.forward``):

- corner ``c`` of a cube sits at offset ``(c & 1, c >> 1 & 1, c >> 2 & 1)`` along (x, y, z);
  bit ``c`` of a case index is set when the field is positive (inside) at that corner;
- the 12 edges are ordered x-edges ``(0,1) (2,3) (4,5) (6,7)``, y-edges
  ``(0,2) (1,3) (4,6) (5,7)``, z-edges ``(0,4) (1,5) (2,6) (3,7)``;
- ``cases[i, j]`` is the j-th triangle of case ``i`` as three edge indices, used where
  ``masks[i, j]`` is True; at most five triangles per case.

Ambiguous faces (two diagonal corners inside) are always resolved the same way, by
separating the inside corners. Two cubes sharing a face therefore cut it identically, so the
extracted surface is closed wherever the field is negative on the grid border, which
Shap-E's decoder guarantees by padding.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (2, 3), (4, 5), (6, 7),
    (0, 2), (1, 3), (4, 6), (5, 7),
    (0, 4), (1, 5), (2, 6), (3, 7),
)  # fmt: skip
MAX_TRIANGLES = 5

# Each face's corners in counter-clockwise order seen from outside the cube.
_FACES: tuple[tuple[int, int, int, int], ...] = (
    (0, 4, 6, 2),  # x = 0, outward -x
    (1, 3, 7, 5),  # x = 1, outward +x
    (0, 1, 5, 4),  # y = 0, outward -y
    (2, 6, 7, 3),  # y = 1, outward +y
    (0, 2, 3, 1),  # z = 0, outward -z
    (4, 5, 7, 6),  # z = 1, outward +z
)
_EDGE_INDEX = {pair: index for index, pair in enumerate(EDGES)}


def cube_case_tables() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Build the triangle tables for all 256 corner states.

    Returns
    -------
    cases : (256, 5, 3) int64
        Edge indices of each case's triangles, wound so that normals point from the
        inside (positive) corners to the outside ones.
    masks : (256, 5) bool
        Which of the five triangle slots of a case are used.
    """
    cases = np.zeros((256, MAX_TRIANGLES, 3), dtype=np.int64)
    masks = np.zeros((256, MAX_TRIANGLES), dtype=np.bool_)
    for case in range(256):
        triangles = _case_triangles(case)
        if len(triangles) > MAX_TRIANGLES:
            raise AssertionError(f"case {case} needs {len(triangles)} triangles")
        for slot, triangle in enumerate(triangles):
            cases[case, slot] = triangle
            masks[case, slot] = True
    return cases, masks


def _edge(a: int, b: int) -> int:
    """Index of the cube edge between corners `a` and `b`."""
    return _EDGE_INDEX[(min(a, b), max(a, b))]


def _face_segments(case: int, face: tuple[int, int, int, int]) -> list[tuple[int, int]]:
    """Directed iso-segments (from edge, to edge) across one face.

    Walking the face counter-clockwise, the boundary of the inside region leaves the face
    border where an inside corner is followed by an outside one, and re-joins it where the
    run of inside corners it belongs to began. Pairing each exit with the entry of its
    own run keeps diagonal inside corners apart, and orients every segment with the
    inside region on its left seen from outside the cube.
    """
    inside = [bool(case >> corner & 1) for corner in face]
    segments = []
    for i in range(4):
        if not (inside[i] and not inside[(i + 1) % 4]):
            continue
        start = i
        while inside[(start - 1) % 4]:
            start -= 1
        exit_edge = _edge(face[i], face[(i + 1) % 4])
        entry_edge = _edge(face[(start - 1) % 4], face[start % 4])
        segments.append((exit_edge, entry_edge))
    return segments


def _case_loops(case: int) -> list[list[int]]:
    """Closed loops of edge indices bounding the inside corners on the cube's surface."""
    following: dict[int, int] = {}
    for face in _FACES:
        following.update(_face_segments(case, face))
    loops = []
    while following:
        start, current = next(iter(following.items()))
        del following[start]
        loop = [start]
        while current != start:
            loop.append(current)
            current = following.pop(current)
        loops.append(loop)
    return loops


def _case_triangles(case: int) -> list[tuple[int, int, int]]:
    """Triangulate each loop, reversed so that normals face the outside corners.

    Loops run counter-clockwise around the inside corners seen from outside the cube, so
    triangles in loop order would face the inside; reversing turns the normals outwards.
    """
    triangles = []
    for loop in _case_loops(case):
        ring = loop[::-1]
        triangles.extend(_inner_triangulation(ring))
    return triangles


def _inner_triangulation(ring: list[int]) -> list[tuple[int, int, int]]:
    """Triangles over `ring` whose added diagonals cross the cube's interior.

    A diagonal between two crossings on the same cube face would lie in that face, where
    the neighbouring cube may draw the same edge: four triangles would then share it and
    the surface would stop being a manifold. Every triangulation of the ring is tried
    (at most a few dozen: rings have at most 7 points) until one avoids such diagonals.
    """
    for triangulation in _triangulations(tuple(range(len(ring)))):
        chosen = [tuple(ring[i] for i in triangle) for triangle in triangulation]
        if all(_interior_edge(ring, a, b) for a, b, c in triangulation
               for a, b in ((a, b), (b, c), (c, a))):
            return [(a, b, c) for a, b, c in chosen]
    raise AssertionError(f"no triangulation of ring {ring} keeps diagonals off the faces")


def _triangulations(points: tuple[int, ...]) -> list[list[tuple[int, int, int]]]:
    """All triangulations of a convex polygon with vertices `points`, in order."""
    if len(points) < 3:
        return [[]]
    first, last = points[0], points[-1]
    result = []
    for k in range(1, len(points) - 1):
        for left in _triangulations(points[: k + 1]):
            for right in _triangulations(points[k:]):
                result.append([(first, points[k], last), *left, *right])
    return result


def _interior_edge(ring: list[int], a: int, b: int) -> bool:
    """Whether ring positions `a`, `b` are neighbours or their cube edges share no face."""
    if (a - b) % len(ring) in (1, len(ring) - 1):
        return True
    return not _FACE_SETS[ring[a]] & _FACE_SETS[ring[b]]


_FACE_SETS = [
    {f for f, face in enumerate(_FACES) if set(EDGES[e]) <= set(face)} for e in range(12)
]
