"""The cell size of MeshFix's crossing grid is chosen per mesh, and the answer stays MeshFix's
(issue 25).

:func:`workers.mesh.crossing_grid.pair_tests` rebuilds MeshFix's grid on arrays; here its
count is checked where it can be worked out by hand (one cell; two clusters one split
apart), the choice on the kinds of mesh it was made for (evenly tessellated surfaces take
small cells, CAD parts of needle fans keep large ones), and MeshFix's answer at the chosen
size against its answer at the old fixed size.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh

from core.errors import InvalidInput
from tests.synthetic_meshes import cad_part, figure_eight, spindle_torus
from workers.mesh.crossing_grid import LARGE_CELL, SMALL_CELL, cell_triangles, pair_tests
from workers.mesh.crossings import forget_answers, meshfix_mesh
from workers.mesh.repair import assess, repair


def _boxes(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    triangles = np.asarray(mesh.vertices)[np.asarray(mesh.faces)]
    return triangles.min(axis=1), triangles.max(axis=1)


def _selected(mesh: trimesh.Trimesh, cells: int) -> list[int]:
    tmesh, _ = meshfix_mesh(np.asarray(mesh.vertices), np.asarray(mesh.faces))
    answer = tmesh.select_intersecting_triangles(tris_per_cell=cells, justproper=True)
    return sorted(np.asarray(answer).ravel()[: len(answer)].tolist())


def test_a_mesh_in_one_cell_tests_every_pair_once() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=3)  # 1,280 faces
    lo, hi = _boxes(sphere)
    count = len(sphere.faces)
    assert pair_tests(lo, hi, count) == count * (count - 1) / 2
    assert pair_tests(lo, hi, count - 1) < count * (count - 1) / 2  # split once at least


def test_two_clusters_one_split_apart_are_tested_apart() -> None:
    left = trimesh.creation.icosphere(subdivisions=2)  # 320 faces each
    right = left.copy()
    right.apply_translation((10.0, 0.0, 0.0))
    both = trimesh.Trimesh(
        np.vstack([left.vertices, right.vertices]),
        np.vstack([left.faces, right.faces + len(left.vertices)]),
        process=False,
    )
    lo, hi = _boxes(both)
    # 640 faces over 400 a cell: one split, at x = 5, parts the two whole
    assert pair_tests(lo, hi, 400) == 2 * (320 * 319 / 2)
    assert pair_tests(lo, hi, 400, budget=100.0) == math.inf


def test_evenly_tessellated_surfaces_take_small_cells() -> None:
    for mesh in (trimesh.creation.icosphere(subdivisions=4), figure_eight(0, size=0.5),
                 spindle_torus(0, size=0.5)):
        assert cell_triangles(mesh.vertices, mesh.faces) == SMALL_CELL


@pytest.mark.parametrize("size", [0.3, 0.5])
def test_needle_fans_keep_large_cells(size: float) -> None:
    # At 0.5 some of these stall MeshFix's grid at 200 a cell (over 15 s against 0.2 s);
    # at 0.3 the small cells make 75-90 % of the tests and run 2-3 times slower.
    for seed in range(4):
        part = cad_part(seed, size)
        assert cell_triangles(part.vertices, part.faces) == LARGE_CELL, (seed, size)
    part = cad_part(0, 0.5)
    assert pair_tests(*_boxes(part), SMALL_CELL) == math.inf  # copies past the limit


def test_a_small_mesh_keeps_one_cell() -> None:
    box = trimesh.creation.box()
    assert cell_triangles(box.vertices, box.faces) == LARGE_CELL


def test_meshfix_answers_the_same_at_the_chosen_size() -> None:
    tube = figure_eight(0, size=0.5)
    assert cell_triangles(tube.vertices, tube.faces) == SMALL_CELL
    small, large = _selected(tube, SMALL_CELL), _selected(tube, LARGE_CELL)
    assert small == large and len(small) > 100
    forget_answers()
    assert assess(tube).self_intersecting_faces == len(large)


def test_needles_through_one_point_keep_large_cells_though_they_stall_both() -> None:
    # 1,500 needles through the origin, each spanning the box: every cell holds all of them,
    # so the grid splits until its limit at either size; the count gives up (copies) and the
    # large cells are kept rather than the small ones compared against an endless count.
    rng = np.random.default_rng(7)
    tips = rng.normal(size=(1500, 3))
    tips /= np.linalg.norm(tips, axis=1, keepdims=True)
    sideways = 1e-3 * rng.normal(size=(1500, 3))
    vertices = np.concatenate([tips, -tips, tips + sideways])
    faces = np.arange(1500)[:, None] + np.array([0, 1500, 3000])[None, :]
    lo, hi = _boxes(trimesh.Trimesh(vertices, faces, process=False))
    assert pair_tests(lo, hi, LARGE_CELL) == math.inf
    assert cell_triangles(vertices, faces) == LARGE_CELL


def test_a_corner_at_nan_is_refused_before_meshfix_sees_it() -> None:
    # MeshFix's grid cannot split a box holding NaN: a 1,280-face sphere with one NaN
    # corner ran for over ten minutes before this was refused. The repair and the assessment
    # refuse it with the loader's own check (core.meshio.check_arrays) when called directly.
    sphere = trimesh.creation.icosphere(subdivisions=3)
    vertices = sphere.vertices.copy()
    vertices[5] = (np.nan, 0.0, 0.0)
    broken = trimesh.Trimesh(vertices, sphere.faces, process=False)
    with pytest.raises(InvalidInput, match="non-finite"):
        repair(broken)
    with pytest.raises(InvalidInput, match="non-finite"):
        assess(broken)
