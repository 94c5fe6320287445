"""Open edges are split at the open corners lying on them (T-junctions), and only there."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from workers.mesh.cracks import split_at_t_junctions
from workers.mesh.edge_topology import edge_topology, signed_volume
from workers.mesh.repair import repair

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


def _cube_with_a_finer_top() -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """A 10 mm cube whose top is a 2 x 2 grid of squares and whose walls are not split: the
    midpoints of the top's rim lie on the walls' top edges."""
    corners = [(0, 0, 0), (10, 0, 0), (10, 10, 0), (0, 10, 0),
               (0, 0, 10), (10, 0, 10), (10, 10, 10), (0, 10, 10)]
    faces = [(0, 2, 1), (0, 3, 2), (0, 1, 5), (0, 5, 4), (1, 2, 6), (1, 6, 5),
             (2, 3, 7), (2, 7, 6), (3, 0, 4), (3, 4, 7)]
    grid = {}
    for i in range(3):
        for j in range(3):
            point = (5 * i, 5 * j, 10)
            if point not in corners:
                corners.append(point)
            grid[i, j] = corners.index(point)
    for i in range(2):
        for j in range(2):
            a, b, c, d = grid[i, j], grid[i + 1, j], grid[i + 1, j + 1], grid[i, j + 1]
            faces += [(a, b, c), (a, c, d)]
    return np.asarray(corners, dtype=np.float64), faces


def test_a_crack_closed_by_faces_of_no_area_is_split_once_they_are_removed() -> None:
    # A CAD export may close each crack with a face of no area (a wall's top corners and the
    # midpoint between them); the repair drops such faces, which opens the crack again.
    vertices, faces = _cube_with_a_finer_top()
    at = {tuple(p): i for i, p in enumerate(vertices.tolist())}
    rim = [((0, 0, 10), (10, 0, 10)), ((10, 0, 10), (10, 10, 10)),
           ((10, 10, 10), (0, 10, 10)), ((0, 10, 10), (0, 0, 10))]
    fillers = [(at[a], at[tuple((np.add(a, b) / 2).tolist())], at[b]) for a, b in rim]
    mesh = trimesh.Trimesh(vertices, np.asarray(faces + fillers), process=False)
    assert edge_topology(mesh.faces, len(mesh.vertices)).boundary_edges == 0

    repaired, report = repair(mesh)

    assert report.degenerate_faces_removed == 4
    assert any("T-junctions" in note for note in report.notes), report.notes
    assert report.after is not None and report.after.printable
    assert report.after.volume == pytest.approx(1000.0)
    kept = {tuple(p) for p in np.round(repaired.vertices, 9).tolist()}
    assert {(5, 0, 10), (10, 5, 10), (5, 10, 10), (0, 5, 10), (5, 5, 10)} <= kept  # the grid
