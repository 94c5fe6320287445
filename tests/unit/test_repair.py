"""One-click mesh repair (:mod:`workers.mesh.repair`): made cases, then every corpus mesh."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from core.meshio import load_mesh
from tests.corpus import REFUSED, corpus_meshes, corpus_name, corpus_path
from workers.mesh.crossings import crossing_faces, nudged
from workers.mesh.edge_topology import body_labels, edge_topology, signed_volume
from workers.mesh.repair import (
    MeshQuality,
    NothingToPrint,
    _boxes_holding,
    assess,
    count_lost_bodies,
    count_self_intersecting_faces,
    repair,
)

VOLUME_TOLERANCE = 0.02
"""Relative volume change allowed on inputs that were already closed."""

KNOWN_FAILURES: dict[str, str] = {
    # Its thin frame (2,684 faces) that crosses itself is now made its union (see
    # test_a_thin_frame_wound_inwards_that_crosses_itself_is_made_its_union), but the
    # union of its four sound bodies leaves faces that touch over areas (the two halves of
    # its seat were cut apart along shared faces; the frame meets the seat and a leg)
    # which a nudge of a ten-millionth cannot part: 61 crossing faces (119 before).
    "chair_model.obj": "the union of its bodies leaves faces touching that no nudge parts",
}
"""Corpus meshes the repair cannot yet make printable, with the reason. Each is an expected,
strict failure: when one starts passing, the test says so and it must leave this list."""


# --------------------------------------------------------------------------- made meshes


def _box(extents: tuple[float, float, float] = (1.0, 1.0, 1.0), at: float = 0.0) -> trimesh.Trimesh:
    box = trimesh.creation.box(extents)
    box.apply_translation([at, 0.0, 0.0])
    return box


def _joined(*meshes: trimesh.Trimesh) -> trimesh.Trimesh:
    """Concatenate meshes without trimesh merging anything."""
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    return trimesh.Trimesh(
        vertices=np.vstack([m.vertices for m in meshes]),
        faces=np.vstack([m.faces + k for m, k in zip(meshes, offsets, strict=True)]),
        process=False,
    )


def _assert_printable(quality: MeshQuality | None) -> None:
    assert quality is not None
    assert quality.watertight, quality
    assert quality.manifold, quality
    assert quality.winding_consistent, quality
    assert quality.volume is not None and quality.volume > 0, quality
    assert quality.self_intersecting_faces == 0, quality


def test_cube_with_a_hole_is_closed_with_its_volume() -> None:
    cube = _box()
    holed = trimesh.Trimesh(cube.vertices, cube.faces[1:], process=False)
    assert not assess(holed).watertight

    repaired, report = repair(holed)

    _assert_printable(report.after)
    assert repaired.volume == pytest.approx(1.0, rel=VOLUME_TOLERANCE)
    assert report.holes_filled == 1


def test_flipped_faces_are_made_consistent_and_outward() -> None:
    cube = _box()
    faces = cube.faces.copy()
    faces[:4] = faces[:4, ::-1]
    flipped = trimesh.Trimesh(cube.vertices, faces, process=False)
    assert not assess(flipped).winding_consistent

    repaired, report = repair(flipped)

    _assert_printable(report.after)
    assert repaired.volume == pytest.approx(1.0, rel=VOLUME_TOLERANCE)


def test_an_inside_out_box_is_turned_outwards() -> None:
    cube = _box()
    inverted = trimesh.Trimesh(cube.vertices, cube.faces[:, ::-1], process=False)

    _, report = repair(inverted)

    assert report.before is not None and report.before.score < 100
    _assert_printable(report.after)
    assert report.winding_flipped == 12


def test_duplicate_faces_are_removed() -> None:
    cube = _box()
    doubled = trimesh.Trimesh(cube.vertices, np.vstack([cube.faces, cube.faces[:3]]), process=False)

    repaired, report = repair(doubled)

    assert report.duplicate_faces_removed == 3
    _assert_printable(report.after)
    assert repaired.volume == pytest.approx(1.0, rel=VOLUME_TOLERANCE)


def test_overlapping_boxes_become_one_body_without_crossings() -> None:
    overlapping = _joined(_box(), _box(at=0.5))
    assert count_self_intersecting_faces(overlapping.vertices, overlapping.faces) > 0

    repaired, report = repair(overlapping)

    _assert_printable(report.after)
    assert report.bodies_kept == 1
    assert repaired.volume == pytest.approx(1.5, rel=VOLUME_TOLERANCE)
    assert report.self_intersections_removed > 0


def test_disjoint_boxes_are_both_kept() -> None:
    apart = _joined(_box(), _box(at=3.0))

    repaired, report = repair(apart)

    _assert_printable(report.after)
    assert report.bodies_kept == 2
    assert count_lost_bodies(apart, repaired) == 0
    assert repaired.volume == pytest.approx(2.0, rel=VOLUME_TOLERANCE)


def test_a_hollow_box_keeps_its_cavity() -> None:
    inner = _box((0.5, 0.5, 0.5))
    cavity = trimesh.Trimesh(inner.vertices, inner.faces[:, ::-1], process=False)
    shelled = _joined(_box(), cavity)

    repaired, report = repair(shelled)

    _assert_printable(report.after)
    assert repaired.volume == pytest.approx(1.0 - 0.125, rel=VOLUME_TOLERANCE)


def test_a_body_inside_another_is_united_with_it_and_counted_once() -> None:
    # A pin exported as a body of its own inside its part: no faces cross, so the input
    # is already printable, but its volume would be counted twice. (One tangent to its
    # part's faces: test_units_and_placement_do_not_change_the_repair, the CAD part.)
    pin = _box((0.2, 0.2, 0.5))
    nested = _joined(_box(), pin)
    assert assess(nested).printable and nested.volume == pytest.approx(1.0 + pin.volume)

    repaired, report = repair(nested)

    _assert_printable(report.after)
    assert report.after is not None and report.after.bodies == 1
    assert repaired.volume == pytest.approx(1.0, rel=VOLUME_TOLERANCE)
    assert count_lost_bodies(nested, repaired) == 0
    assert any("inside another body's material" in note for note in report.notes)


@pytest.mark.parametrize("noise", [1e-9, 1e-7, 1e-5])
def test_a_sphere_written_triangle_by_triangle_with_rounding_noise_is_closed_again(
    noise: float,
) -> None:
    # Each triangle written with corners of its own that carry rounding noise: the grid
    # weld leaves corners apart (at 1e-9, a tenth of its step, a quarter of them), and the
    # repair made 98 of the 1,280 faces of it (1.6 % of its volume), as pymeshfix does;
    # from 1e-7 on, every triangle was a body of its own, each sealed by its hull.
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=10.0)
    corners = sphere.vertices[sphere.faces].reshape(-1, 3)
    noisy = corners + np.random.default_rng(1).normal(0.0, noise, corners.shape)
    soup = trimesh.Trimesh(noisy, np.arange(len(corners)).reshape(-1, 3), process=False)
    assert not assess(soup).watertight

    repaired, report = repair(soup)

    _assert_printable(report.after)
    assert report.after is not None and report.after.bodies == 1
    assert len(repaired.faces) == len(sphere.faces)
    assert repaired.volume == pytest.approx(sphere.volume, rel=1e-6)
    assert any("were joined" in note for note in report.notes)


def _facing_open_boxes(gap: float) -> trimesh.Trimesh:
    """Two unit boxes ``gap`` apart along x, open on the sides that face each other: joined,
    their rims close one long box."""
    opened = []
    for box, side in ((_box(), 1.0), (_box(at=1.0 + gap), -1.0)):
        facing = np.isclose(box.face_normals[:, 0], side)
        opened.append(trimesh.Trimesh(box.vertices, box.faces[~facing], process=False))
    return _joined(*opened)


@pytest.mark.parametrize(("tolerance", "bodies"), [(0.005, 1), (0.003, 2)])
def test_merge_tolerance_joins_corners_closer_than_it_and_no_others(
    tolerance: float, bodies: int
) -> None:
    # The rims lie 0.004 apart. Rounded to a grid (as the option was before), 0.003 and
    # 0.005 were both a grid of 0.01, which joined them in both cases.
    pair = _facing_open_boxes(0.004)

    repaired, report = repair(pair, merge_tolerance=tolerance)

    _assert_printable(report.after)
    assert report.after is not None and report.after.bodies == bodies
    assert repaired.volume == pytest.approx(2.004 if bodies == 1 else 2.0, rel=1e-6)


def test_a_merge_tolerance_as_large_as_the_part_is_refused_with_the_reason() -> None:
    with pytest.raises(NothingToPrint, match=r"once corners closer than 5 are joined.*1 across"):
        repair(_box(), merge_tolerance=5.0)


def test_corners_farther_apart_than_the_near_weld_stay_apart() -> None:
    # Boxes 1e-4 apart: 4e-5 of the scene's diagonal (4 um on a 100 mm scene). Joined, their
    # rims would close one long box; the near weld reaches 1e-5 of the diagonal, so each is
    # closed on its own instead.
    pair = _facing_open_boxes(1e-4)

    repaired, report = repair(pair)

    _assert_printable(report.after)
    assert report.after is not None and report.after.bodies == 2
    assert not any("were joined" in note for note in report.notes)
    assert repaired.volume == pytest.approx(2.0, rel=VOLUME_TOLERANCE)


def test_boxes_holding_finds_every_pair_that_comparing_all_pairs_finds() -> None:
    # The k-d tree of box centres only narrows the pairs compared; nested, equal, touching
    # and far boxes of every size must come out as comparing every pair gives them.
    rng = np.random.default_rng(7)
    bodies = []
    for _ in range(150):
        size = rng.choice([0.1, 1.0, 5.0]) * rng.uniform(0.5, 1.5, 3)
        box = trimesh.creation.box(size)
        box.apply_translation(rng.integers(-4, 5, 3) * 0.5)  # on a lattice: many equal walls
        bodies.append(box)
    bodies += [bodies[3].copy(), bodies[40].copy()]  # equal boxes hold each other
    lower = np.array([b.bounds[0] for b in bodies])
    upper = np.array([b.bounds[1] for b in bodies])
    every = {(i, j) for i in range(len(bodies)) for j in range(len(bodies))
             if i != j and (lower[i] <= lower[j]).all() and (upper[j] <= upper[i]).all()}

    holding = _boxes_holding(bodies)

    assert holding is not None
    outer, inner = holding
    assert len(every) > 100  # the case holds many nestings
    assert set(zip(outer.tolist(), inner.tolist(), strict=True)) == every
    assert len(outer) == len(every)


def test_boxes_nested_in_one_another_past_the_limit_return_the_cleaned_stage() -> None:
    # 600 boxes each inside the last (179,700 nested pairs): probed pair by pair, the
    # nesting took 38 s (3,000 such boxes crashed the process inside Embree). The small
    # ones are debris beside the largest, so the repair goes on past its printable shortcut
    # and, past the limit of pairs, returns the cleaned stage with the reason.
    nested = _joined(*[_box((1.0 + k, 1.0 + k, 1.0 + k)) for k in range(600)])

    repaired, report = repair(nested)

    assert report.fell_back_to == "cleaned"
    assert report.reason is not None and "too many to place" in report.reason
    assert report.after is not None and report.after.printable
    assert len(repaired.faces) == len(nested.faces)


def test_hundreds_of_nested_boxes_are_placed_and_united() -> None:
    # 300 boxes each inside the last, none debris: 44,850 nested pairs, probed container
    # by container; outward boxes in the largest's material are united with it.
    boxes = [_box((100.0 + k, 100.0 + k, 100.0 + k)) for k in range(300)]

    repaired, report = repair(_joined(*boxes))

    _assert_printable(report.after)
    assert report.after is not None and report.after.bodies == 1
    assert repaired.volume == pytest.approx(399.0**3)


def test_an_island_in_a_cavity_is_not_inside_material_and_stays_as_it_came() -> None:
    inner = _box((0.6, 0.6, 0.6))
    cavity = trimesh.Trimesh(inner.vertices, inner.faces[:, ::-1], process=False)
    islanded = _joined(_box(), cavity, _box((0.2, 0.2, 0.2)))

    repaired, report = repair(islanded)

    _assert_printable(report.after)
    assert report.after is not None and report.after.bodies == 3
    assert len(repaired.faces) == len(islanded.faces)  # the printable input, untouched
    assert repaired.volume == pytest.approx(1.0 - 0.216 + 0.008, rel=VOLUME_TOLERANCE)


def test_tiny_debris_is_dropped_and_the_box_kept() -> None:
    corners = np.array([[5, 5, 5], [5.001, 5, 5], [5, 5.001, 5]], dtype=float)
    speck = trimesh.Trimesh(corners, np.array([[0, 1, 2]]), process=False)
    littered = _joined(_box(), speck)

    repaired, report = repair(littered)

    assert report.debris_bodies_dropped == 1
    assert report.bodies_kept == 1
    _assert_printable(report.after)
    assert repaired.bounds.max() < 1.0


def test_a_lone_open_box_pymeshfix_would_drop_is_kept_beside_a_larger_one() -> None:
    small = _box((0.5, 0.5, 0.5), at=3.0)
    opened = trimesh.Trimesh(small.vertices, small.faces[2:], process=False)
    pair = _joined(_box((2.0, 2.0, 2.0)), opened)

    repaired, report = repair(pair)

    _assert_printable(report.after)
    assert report.bodies_kept == 2
    assert count_lost_bodies(pair, repaired) == 0


@pytest.mark.parametrize("offset", [(1.0, 1.0, 1.0), (1.0, 1.0, 0.0)], ids=["corner", "edge"])
def test_cubes_touching_at_a_corner_or_edge_stay_two_printable_parts(
    offset: tuple[float, float, float],
) -> None:
    touching = _joined(_box(), _box())
    touching.vertices[8:] += offset

    repaired, report = repair(touching)

    assert report.before is not None and not report.before.manifold
    _assert_printable(report.after)
    assert report.bodies_kept == 2
    assert count_lost_bodies(touching, repaired) == 0
    assert repaired.volume == pytest.approx(2.0, rel=1e-4)


def test_repair_leaves_its_input_untouched_and_reports_json() -> None:
    cube = _box()
    holed = trimesh.Trimesh(cube.vertices, cube.faces[1:], process=False)
    vertices, faces = holed.vertices.copy(), holed.faces.copy()

    repaired, report = repair(holed)

    assert np.array_equal(holed.vertices, vertices) and np.array_equal(holed.faces, faces)
    plain = json.loads(json.dumps(report.to_dict()))
    assert plain["before"]["score"] < plain["after"]["score"] == 100
    assert assess(repaired) == report.after


@pytest.mark.parametrize(
    ("options", "named"),
    [({"debris_fraction": 1.5}, "debris_fraction"), ({"merge_tolerance": 0.0}, "merge_tolerance")],
)
def test_bad_options_are_refused_by_name(options: dict[str, float], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        repair(_box(), **options)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- building blocks


def _topology_cases() -> list[trimesh.Trimesh]:
    cube = _box()
    flipped = cube.faces.copy()
    flipped[:4] = flipped[:4, ::-1]
    fin = np.vstack([cube.faces, [[0, 1, 8]]])  # a third face on one edge of the cube
    return [
        cube,
        trimesh.Trimesh(cube.vertices, cube.faces[1:], process=False),
        trimesh.Trimesh(cube.vertices, flipped, process=False),
        trimesh.Trimesh(np.vstack([cube.vertices, [[2.0, 2.0, 2.0]]]), fin, process=False),
        _joined(_box(), _box(at=1.0)),
    ]


@pytest.mark.parametrize("mesh", _topology_cases())
def test_edge_topology_agrees_with_trimesh(mesh: trimesh.Trimesh) -> None:
    topology = edge_topology(mesh.faces, len(mesh.vertices))
    edges = np.sort(mesh.edges, axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)

    assert topology.boundary_edges == int((counts == 1).sum())
    assert topology.non_manifold_edges == int((counts > 2).sum())
    assert topology.watertight == bool(mesh.is_watertight)
    assert topology.winding_consistent == bool(mesh.is_winding_consistent)
    if mesh.is_watertight and mesh.is_winding_consistent:
        assert signed_volume(mesh.vertices, mesh.faces) == pytest.approx(mesh.volume)


def test_cubes_meeting_at_a_corner_pinch_it() -> None:
    corner = _joined(_box(), _box())
    corner.vertices[8:] += 1.0  # the second cube's lowest corner on the first's highest
    corner.merge_vertices()

    assert edge_topology(corner.faces, len(corner.vertices)).non_manifold_vertices == 1
    assert edge_topology(_box().faces, 8).non_manifold_vertices == 0
    # bodies are joined through shared vertices: the pinched pair is one damaged body
    assert body_labels(corner.faces, len(corner.vertices))[0] == 1
    apart = _joined(_box(), _box(at=3.0))
    assert body_labels(apart.faces, len(apart.vertices))[0] == 2


def test_crossing_faces_are_those_of_the_overlap() -> None:
    moved = _box()
    moved.apply_translation([0.5, 0.3, 0.2])
    overlapping = _joined(_box(), moved)

    crossing = crossing_faces(overlapping.vertices, overlapping.faces)

    assert len(crossing) == count_self_intersecting_faces(overlapping.vertices, overlapping.faces)
    # the first cube's +x, +y, +z sides cross the second cube's -x, -y, -z sides
    first = overlapping.triangles_center[crossing[crossing < 12]]
    second = overlapping.triangles_center[crossing[crossing >= 12]] - [0.5, 0.3, 0.2]
    assert len(first) == len(second) == 6
    assert np.isclose(first.max(axis=1), 0.5).all()
    assert np.isclose(second.min(axis=1), -0.5).all()
    assert crossing_faces(_box().vertices, _box().faces).size == 0


def test_nudging_leaves_sound_meshes_and_cannot_part_real_overlap() -> None:
    cube = _box()
    kept = nudged(cube)
    assert kept is not None and np.array_equal(kept.vertices, cube.vertices)

    assert nudged(_joined(_box(), _box(at=0.5))) is None


def _chair_frame() -> trimesh.Trimesh:
    """The frame of the corpus chair: its closed body of 2,684 faces once the file's
    positions are welded and its faces, stored twice (once each way), kept once."""
    path = corpus_path("chair_model.obj")
    chair = load_mesh(path, file_type=path.suffix)
    chair.merge_vertices(merge_tex=True, merge_norm=True)
    chair.update_faces(chair.nondegenerate_faces(height=trimesh.tol.merge))
    chair.update_faces(chair.unique_faces())
    frame = next(p for p in chair.split(only_watertight=False) if len(p.faces) == 2684)
    return trimesh.Trimesh(frame.vertices, frame.faces, process=False)


def test_a_thin_frame_wound_inwards_that_crosses_itself_is_made_its_union() -> None:
    # The frame is 2 % of a 64-cell grid thick, crosses itself in one strip, and the copy of
    # its faces the file keeps is wound inwards. It was kept with its 91 crossing faces: an
    # inward body winds around no point positively, so every mend looked like a change of
    # volume, and a level set of all of it loses most of it. Made again finely in a box
    # round the strip and kept exact elsewhere, it is printable and keeps its volume.
    frame = _chair_frame()
    before = assess(frame)
    assert before.self_intersecting_faces > 0 and before.volume is not None
    assert before.volume < 0

    repaired, report = repair(frame)

    _assert_printable(report.after)
    assert report.after is not None and report.after.volume is not None
    assert report.after.volume == pytest.approx(-before.volume, rel=0.01)
    assert count_lost_bodies(frame, repaired) == 0


# --------------------------------------------------------------------------- the corpus


def _corpus_param(path: Path) -> object:
    name = corpus_name(path)
    reason = KNOWN_FAILURES.get(name)
    marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
    return pytest.param(path, id=name, marks=marks)


def test_known_failures_name_loadable_corpus_files() -> None:
    assert all(corpus_path(name).is_file() for name in KNOWN_FAILURES)
    assert not REFUSED & KNOWN_FAILURES.keys()


@pytest.mark.parametrize("path", [_corpus_param(p) for p in corpus_meshes(loadable_only=True)])
def test_corpus_mesh_is_made_printable(path: Path) -> None:
    mesh = load_mesh(path, file_type=path.suffix)  # test_mesh_analysis pins the refused ones
    vertices, faces = mesh.vertices.copy(), mesh.faces.copy()

    repaired, report = repair(mesh)

    assert np.array_equal(mesh.vertices, vertices) and np.array_equal(mesh.faces, faces)
    _assert_printable(report.after)
    assert count_lost_bodies(mesh, repaired) == 0
    _assert_volume_kept(mesh, report.before, report.after)


def _assert_volume_kept(
    mesh: trimesh.Trimesh, before: MeshQuality | None, after: MeshQuality | None
) -> None:
    """On closed inputs, the volume is kept; overlapping closed shells may only lose overlap.

    When the closed input's faces cross (bodies that overlap), its signed volume counts the
    overlaps twice, so the printed (union) volume may be lower, but never lower than the
    largest body alone.
    """
    assert before is not None and after is not None
    if before.volume is None or before.volume <= 0 or after.volume is None:
        return
    if before.self_intersecting_faces == 0:
        assert after.volume == pytest.approx(before.volume, rel=VOLUME_TOLERANCE)
        return
    bodies = trimesh.Trimesh(mesh.vertices, mesh.faces).split(only_watertight=False)
    largest = max(abs(body.volume) for body in bodies)
    assert (
        largest * (1 - VOLUME_TOLERANCE) <= after.volume <= before.volume * (1 + VOLUME_TOLERANCE)
    )
