"""Open edges are split at the open corners lying on them (T-junctions), and only there."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from workers.mesh.cracks import split_at_t_junctions
from workers.mesh.edge_topology import edge_topology, signed_volume

REACH = 1e-6


def _tetrahedron_split_on(faces_split: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """A tetrahedron whose faces ``faces_split`` are each split into four at their edges'
    midpoints, the others left whole: their edges then have midpoints lying on them."""
    tetra = trimesh.Trimesh([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]],
                            [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], process=False)
    vertices, faces = trimesh.remesh.subdivide(tetra.vertices, tetra.faces,
                                               face_index=faces_split)
    return np.asarray(vertices), np.asarray(faces)


@pytest.mark.parametrize("split", [[3], [0, 1, 2]], ids=["one-face-fine", "one-face-coarse"])
def test_cracks_close_and_no_corner_moves(split: list[int]) -> None:
    # one face split: its three neighbours each have a corner on one edge; three split: the
    # coarse face left has corners on all three of its edges, split over three rounds
    vertices, faces = _tetrahedron_split_on(split)
    assert edge_topology(faces, len(vertices)).boundary_edges > 0

    closed = split_at_t_junctions(vertices, faces, REACH)

    assert closed is not None
    topology = edge_topology(closed, len(vertices))
    assert topology.watertight and topology.winding_consistent
    assert topology.non_manifold_vertices == 0
    assert signed_volume(vertices, closed) == pytest.approx(1000.0 / 6.0)


def test_a_hole_is_not_a_crack() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=10.0)
    opened = sphere.faces[40:]
    assert edge_topology(opened, len(sphere.vertices)).boundary_edges > 0

    assert split_at_t_junctions(sphere.vertices, opened, REACH) is None


def test_a_corner_off_the_edge_by_more_than_the_reach_is_left() -> None:
    vertices, faces = _tetrahedron_split_on([3])
    lifted = vertices.copy()
    middles = np.arange(4, len(vertices))  # the midpoints the split added
    lifted[middles] += (lifted[middles] - lifted[middles].mean(axis=0)) * 1e-3  # pushed out

    assert split_at_t_junctions(lifted, faces, REACH) is None
    assert split_at_t_junctions(lifted, faces, 1.0) is not None  # within a wider reach
