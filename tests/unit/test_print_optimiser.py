"""The print optimiser (:mod:`workers.mesh.optimise`): turning, scaling, thickening and
hollowing made solids whose right answers are known."""

from __future__ import annotations

import json
import math
from typing import Any

import manifold3d
import numpy as np
import pytest
import trimesh

from core.errors import InvalidInput
from core.meshio import load_mesh
from tests.corpus import corpus_path
from workers.mesh.optimise import DRAIN_HOLE_DIAMETER_MM, optimise_for_print
from workers.mesh.printability import analyse_printability
from workers.mesh.printer import PrinterProfile

FDM = PrinterProfile()
RESIN = PrinterProfile.from_json({"technology": "resin"})
AXES = [tuple(float(v) for v in row) for row in np.vstack([np.eye(3), -np.eye(3)])]


def _solid(manifold: manifold3d.Manifold) -> trimesh.Trimesh:
    mesh = manifold.to_mesh64()
    return trimesh.Trimesh(
        np.asarray(mesh.vert_properties)[:, :3], np.asarray(mesh.tri_verts), process=False
    )


def _l_bracket_upside_down() -> trimesh.Trimesh:
    """An L (a 60 x 20 x 10 foot and a 10 x 20 x 60 upright) turned upside down: the foot
    now sticks out sideways at the top, 50 x 20 mm of it over nothing."""
    foot = manifold3d.Manifold.cube((60, 20, 10))
    upright = manifold3d.Manifold.cube((10, 20, 60))
    mesh = _solid(foot + upright)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(math.pi, (1, 0, 0)))
    return mesh


def _thin_walled_box(outer: float, wall: float) -> trimesh.Trimesh:
    box = manifold3d.Manifold.cube((outer, outer, outer), True)
    inner = outer - 2 * wall
    return _solid(box - manifold3d.Manifold.cube((inner, inner, inner), True))


def _change(changes: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(c["detail"] for c in changes if c["change"] == name)


# --------------------------------------------------------------------------- reorient


def test_l_bracket_is_turned_to_the_least_overhang() -> None:
    mesh = _l_bracket_upside_down()
    known_minimum = min(
        analyse_printability(mesh, FDM, up=up).report["overhang"]["area_mm2"] for up in AXES
    )
    assert known_minimum == pytest.approx(0.0)
    result = optimise_for_print(mesh, FDM)
    before = result.report_before["overhang"]["area_mm2"]
    after = result.report_after["overhang"]["area_mm2"]
    assert before == pytest.approx(50.0 * 20.0)
    assert after <= before
    assert after == pytest.approx(known_minimum, abs=1e-6)
    assert result.score_after > result.score_before
    assert _change(result.changes, "reorient")["turned"] is True
    assert abs(result.mesh.volume) == pytest.approx(abs(mesh.volume))
    assert result.mesh.is_watertight


def test_reoriented_part_sits_centred_on_the_plate() -> None:
    result = optimise_for_print(_l_bracket_upside_down(), FDM)
    low, high = result.mesh.bounds
    assert low[2] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose((low[:2] + high[:2]) / 2, 0.0, atol=1e-9)


def test_a_well_standing_part_is_not_turned() -> None:
    box = trimesh.creation.box((40, 30, 10))
    result = optimise_for_print(box, FDM)
    detail = _change(result.changes, "reorient")
    assert detail["turned"] is False
    np.testing.assert_allclose(result.mesh.extents, [40, 30, 10])
    assert result.score_after == result.score_before == 100.0


def test_a_long_part_is_stood_up_to_fit() -> None:
    # lying, the 240 mm pole is longer than the 220 mm plate; standing, it fits under 250 mm
    pole = trimesh.creation.box((20, 20, 240))
    pole.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2, (0, 1, 0)))
    assert analyse_printability(pole, FDM).report["build"]["fits_as_is"] is False
    result = optimise_for_print(pole, FDM)
    assert result.report_after["build"]["fits_as_is"] is True
    assert result.mesh.extents[2] == pytest.approx(240.0)


# --------------------------------------------------------------------------- scale


def test_oversized_part_is_scaled_into_the_build_volume() -> None:
    box = trimesh.creation.box((500.0, 120.0, 60.0))
    result = optimise_for_print(box, FDM, reorient=False, scale_to_fit=True)
    detail = _change(result.changes, "scale")
    assert detail["factor"] == pytest.approx(210.0 / 500.0)
    room = np.asarray(FDM.build_volume_mm) - 2 * 5.0
    assert (result.mesh.extents <= room + 1e-9).all()
    assert result.mesh.extents[0] == pytest.approx(210.0)
    assert result.report_before["build"]["fits_as_is"] is False
    assert result.report_after["build"]["fits_as_is"] is True
    assert result.score_after == result.score_before + 20.0


def test_scaling_keeps_the_callers_units() -> None:
    box = trimesh.creation.box((50.0, 12.0, 6.0))  # centimetres: 500 mm long
    result = optimise_for_print(box, FDM, units="cm", scale_to_fit=True)
    assert result.mesh.extents.max() == pytest.approx(21.0)
    assert result.report_after["extents_mm"][0] == pytest.approx(210.0)


def test_a_part_that_fits_is_not_scaled() -> None:
    box = trimesh.creation.box((100.0, 100.0, 100.0))
    result = optimise_for_print(box, FDM, scale_to_fit=True)
    assert "skipped" in _change(result.changes, "scale")
    np.testing.assert_allclose(result.mesh.extents, 100.0)


# --------------------------------------------------------------------------- thicken


def test_thin_walls_are_thickened_and_stay_closed() -> None:
    box = _thin_walled_box(40.0, 0.5)
    result = optimise_for_print(box, FDM, reorient=False, thicken=True)
    detail = _change(result.changes, "thicken")
    before, after = result.report_before["wall"], result.report_after["wall"]
    assert before["min_mm"] == pytest.approx(0.5, rel=0.01)
    assert after["min_mm"] > before["min_mm"]
    assert after["min_mm"] == pytest.approx(FDM.min_wall_mm, rel=0.01)
    assert detail["thin_faces"]["after"] == 0
    assert result.report_after["thin"]["faces"] == 0
    assert result.mesh.is_watertight
    assert len(result.mesh.faces) == len(box.faces)
    assert result.score_after > result.score_before


def test_only_thin_walls_move() -> None:
    # a 40 mm box whose cavity is pushed against one side: that wall is 0.5 mm, the
    # opposite one 5.5 mm and the other four 3 mm; only the thin wall grows, on both faces
    box = manifold3d.Manifold.cube((40, 40, 40))
    cavity = manifold3d.Manifold.cube((34, 34, 34)).translate((0.5, 3, 3))
    mesh = _solid(box - cavity)
    result = optimise_for_print(mesh, FDM, reorient=False, thicken=True)
    thickness = analyse_printability(result.mesh, FDM).face_maps["wall_thickness_mm"]
    assert np.nanmin(thickness) == pytest.approx(FDM.min_wall_mm, rel=0.01)
    centres, normals = result.mesh.triangles_center, result.mesh.face_normals
    far_side = (normals[:, 0] > 0.99) & (centres[:, 0] > 20)
    assert far_side.sum() == 2
    np.testing.assert_allclose(thickness[far_side], 5.5, rtol=1e-6)
    sides = (np.abs(normals[:, 1]) > 0.99) & (np.abs(centres[:, 1] - 20) > 19)
    np.testing.assert_allclose(thickness[sides], 3.0, rtol=1e-6)
    assert result.mesh.bounds[1, 0] == pytest.approx(40.0)  # the far outer face stays put
    assert result.mesh.bounds[0, 0] == pytest.approx(-0.15, abs=1e-3)


def test_thickening_an_open_mesh_is_skipped() -> None:
    box = _thin_walled_box(40.0, 0.5)
    open_box = trimesh.Trimesh(box.vertices, box.faces[1:], process=False)
    result = optimise_for_print(open_box, FDM, thicken=True)
    assert "repair" in _change(result.changes, "thicken")["skipped"]


# --------------------------------------------------------------------------- hollow


def test_resin_box_is_hollowed_with_drain_holes() -> None:
    box = trimesh.creation.box((40.0, 40.0, 40.0))
    result = optimise_for_print(box, RESIN, hollow=2.0)
    detail = _change(result.changes, "hollow")
    assert len(detail["drain_holes"]) == 2
    hole_area = math.pi * (DRAIN_HOLE_DIAMETER_MM / 2) ** 2
    expected = 40.0**3 - 36.0**3 - 2 * hole_area * 2.0  # each hole pierces a 2 mm floor
    assert result.mesh.volume == pytest.approx(expected, rel=0.005)
    assert detail["volume_mm3"]["after"] == pytest.approx(result.mesh.volume)
    assert detail["weight_g"]["after"] < 0.3 * detail["weight_g"]["before"]
    assert result.mesh.is_watertight
    assert result.mesh.body_count == 1  # the holes join the cavity to the outside
    assert detail["genus"] == 1  # two holes into one cavity: one handle
    assert result.report_after["wall"]["p5_mm"] == pytest.approx(2.0, rel=0.01)


def test_resin_sphere_without_holes_keeps_a_closed_cavity() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=25.0)
    result = optimise_for_print(sphere, RESIN, hollow=2.0, drain_holes=0, reorient=False)
    shell = 4 / 3 * math.pi * (25.0**3 - 23.0**3)
    assert result.mesh.volume == pytest.approx(shell, rel=0.03)
    assert result.mesh.volume < abs(sphere.volume)
    assert result.mesh.is_watertight
    assert result.mesh.body_count == 2  # the outer skin and the sealed cavity
    assert result.report_after["floating_shells"] == 0


def test_hollowing_a_part_thinner_than_two_walls_is_skipped() -> None:
    plate = trimesh.creation.box((40.0, 40.0, 3.0))
    result = optimise_for_print(plate, RESIN, hollow=2.0)
    assert "narrower than two" in _change(result.changes, "hollow")["skipped"]
    assert result.mesh.volume == pytest.approx(40.0 * 40.0 * 3.0)


@pytest.mark.parametrize(
    ("profile", "options", "words"),
    [
        (FDM, {"hollow": 2.0}, "resin"),
        (RESIN, {"hollow": -1.0}, "positive"),
        (RESIN, {"hollow": float("inf")}, "wall thickness"),
        (RESIN, {"hollow": 2.0, "drain_holes": 20}, "drain_holes"),
        (RESIN, {"hollow": 2.0, "drain_holes": 1.5}, "drain_holes"),
        (FDM, {"units": "yard"}, "units"),
    ],
)
def test_bad_options_are_refused(
    profile: PrinterProfile, options: dict[str, Any], words: str
) -> None:
    with pytest.raises(InvalidInput, match=words):
        optimise_for_print(trimesh.creation.box((10, 10, 10)), profile, **options)


# --------------------------------------------------------------------------- all at once


def test_everything_on_a_broken_corpus_mesh_changes_nothing_it_cannot() -> None:
    mesh = load_mesh(corpus_path("wallhole.obj"), file_type="obj")
    result = optimise_for_print(mesh, RESIN, thicken=True, scale_to_fit=True, hollow=1.0)
    assert "skipped" in _change(result.changes, "thicken")
    assert "skipped" in _change(result.changes, "hollow")
    assert json.loads(json.dumps(result.changes, allow_nan=False)) == result.changes
    assert result.report_after["faces"] == len(result.mesh.faces)


def test_the_caller_mesh_is_not_modified() -> None:
    mesh = _l_bracket_upside_down()
    vertices, faces = mesh.vertices.copy(), mesh.faces.copy()
    optimise_for_print(mesh, FDM, thicken=True, scale_to_fit=True)
    np.testing.assert_array_equal(mesh.vertices, vertices)
    np.testing.assert_array_equal(mesh.faces, faces)
