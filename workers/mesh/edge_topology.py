"""How the faces of a triangle mesh meet along their edges, measured in one pass.

The repair's quality check needs, for every mesh it sees, whether the surface is closed,
consistently wound and edge- and vertex-manifold, and how many bodies it has. trimesh
answers each of these separately (``is_watertight``, ``face_adjacency``, ``split``), and each
answer sorts the mesh's edges again through ``np.unique(axis=0)``, which sorts rows as
opaque bytes and is slow. Here the edges are encoded as one integer each and sorted once;
every figure is read off that single sort. Closedness and winding follow trimesh's
definitions (its ``is_watertight`` and ``is_winding_consistent`` agree on the same faces);
the fan test for vertices is described at :func:`edge_topology`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse import csgraph

Faces = NDArray[np.int64]
Points = NDArray[np.float64]


@dataclass(frozen=True)
class EdgeTopology:
    """Edge figures of one mesh; see :func:`edge_topology`.

    Attributes
    ----------
    boundary_edges
        Edges used by one face only (the rims of holes).
    non_manifold_edges
        Edges used by three faces or more.
    winding_consistent
        Every edge used by exactly two faces is traversed in opposite directions by them
        (trimesh's ``is_winding_consistent``; ``False`` for no faces).
    non_manifold_vertices
        Vertices whose faces do not form a single fan (see :func:`edge_topology`).
    edges
        Distinct undirected edges.
    """

    boundary_edges: int
    non_manifold_edges: int
    winding_consistent: bool
    non_manifold_vertices: int
    edges: int

    @property
    def watertight(self) -> bool:
        """Every edge is used by exactly two faces."""
        return self.edges > 0 and self.boundary_edges == 0 and self.non_manifold_edges == 0


def edge_topology(faces: Faces, vertex_count: int) -> EdgeTopology:
    """Measure how the faces meet along their edges.

    A vertex is manifold when the corners of the faces around it form one fan: corners at
    the vertex of two faces that share a (two-face) edge are joined, and all of them must
    fall in one connected group. Faces across a non-manifold edge are not joined, so the
    vertices of such an edge count as non-manifold too.

    Parameters
    ----------
    faces
        ``(m, 3) int`` indices into ``vertex_count`` vertices.
    vertex_count
        Number of vertices the faces index.
    """
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    return edge_topologies(faces, vertex_count, np.zeros(len(faces), dtype=np.int64), 1)[0]


def edge_topologies(
    faces: Faces, vertex_count: int, labels: NDArray[np.integer], count: int
) -> list[EdgeTopology]:
    """:func:`edge_topology` of each of ``count`` bodies at once.

    ``labels`` (``(m,) int``) gives each face's body, numbered from 0, where bodies share no
    vertex (:func:`body_labels`): every edge and every vertex then belongs to one body, and
    its figures are those :func:`edge_topology` finds on that body's faces alone, from one
    sort of all the edges instead of one per body (the repair measured each body apart:
    24 sorts, and as many graphs of fans, on assimp's 3DSMaxExport.STL).
    """
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(faces) == 0:
        return [EdgeTopology(0, 0, False, 0, 0)] * count
    directed = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    low, high = directed.min(axis=1), directed.max(axis=1)
    keys = low * np.int64(max(vertex_count, 1)) + high
    order = np.argsort(keys, kind="stable")
    starts = np.flatnonzero(np.r_[True, keys[order][1:] != keys[order][:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    two = starts[counts == 2]
    pairs = np.column_stack([order[two], order[two + 1]])
    reversed_pair = directed[pairs[:, 0], 1] == directed[pairs[:, 1], 0]
    same_way = ~reversed_pair
    edge_body = labels[order[starts] // 3]
    boundary = np.bincount(edge_body[counts == 1], minlength=count)
    non_manifold = np.bincount(edge_body[counts > 2], minlength=count)
    edges = np.bincount(edge_body, minlength=count)
    misdirected = np.bincount(labels[pairs[same_way, 0] // 3], minlength=count)
    pinched = _non_manifold_vertices(faces, pairs, same_way, labels, count)
    return [
        EdgeTopology(
            boundary_edges=int(boundary[b]),
            non_manifold_edges=int(non_manifold[b]),
            winding_consistent=not misdirected[b],
            non_manifold_vertices=int(pinched[b]),
            edges=int(edges[b]),
        )
        for b in range(count)
    ]


def _non_manifold_vertices(
    faces: Faces,
    pairs: NDArray[np.int64],
    same_way: NDArray[np.bool_],
    labels: NDArray[np.int64],
    count: int,
) -> NDArray[np.int64]:
    """Count, per body, the vertices whose corners fall in more than one fan.

    ``pairs`` holds, per two-face edge, its two occurrences as indices into the ``3 m``
    directed edges (occurrence ``k`` runs from corner ``k`` to corner ``3 (k // 3) +
    (k + 1) % 3``); ``same_way`` says whether they run the same way; ``labels`` gives each
    face's body (``count`` of them).
    """
    first, second = pairs[:, 0], pairs[:, 1]
    second_head = 3 * (second // 3) + (second + 1) % 3
    first_head = 3 * (first // 3) + (first + 1) % 3
    links = np.concatenate(
        [
            np.column_stack([first, np.where(same_way, second, second_head)]),
            np.column_stack([first_head, np.where(same_way, second_head, second)]),
        ]
    )
    size = 3 * len(faces)
    graph = sparse.coo_matrix((np.ones(len(links)), (links[:, 0], links[:, 1])), (size, size))
    _, fan = csgraph.connected_components(graph, directed=False)
    vertex = faces.ravel()
    fans = np.unique(vertex * np.int64(size) + fan)
    per_vertex = np.bincount(fans // size)
    pinched = np.flatnonzero(per_vertex > 1)
    if len(pinched) == 0:
        return np.zeros(count, dtype=np.int64)
    body_of = np.zeros(len(per_vertex), dtype=np.int64)
    body_of[vertex] = np.repeat(labels, 3)
    return np.bincount(body_of[pinched], minlength=count)


def body_labels(faces: Faces, vertex_count: int) -> tuple[int, NDArray[np.int32]]:
    """Group faces into bodies joined through shared vertices.

    Returns
    -------
    count
        Number of bodies.
    labels
        ``(m,) int`` body of each face, numbered from 0.
    """
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(faces) == 0:
        return 0, np.zeros(0, dtype=np.int32)
    links = faces[:, [0, 1, 1, 2]].reshape(-1, 2)
    size = vertex_count
    graph = sparse.coo_matrix((np.ones(len(links)), (links[:, 0], links[:, 1])), (size, size))
    _, labels = csgraph.connected_components(graph, directed=False)
    _, face_labels = np.unique(labels[faces[:, 0]], return_inverse=True)
    return int(face_labels.max()) + 1, face_labels.astype(np.int32)


def signed_volume(vertices: Points, faces: Faces) -> float:
    """Signed volume enclosed by the faces (positive when wound outwards), by the divergence
    theorem; meaningful only for a closed, consistently wound surface."""
    corners = np.asarray(vertices, dtype=np.float64)[np.asarray(faces, dtype=np.int64)]
    if len(corners) == 0:
        return 0.0
    triple = np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2]))
    return float(triple.sum() / 6.0)
