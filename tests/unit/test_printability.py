"""Print analysis (:mod:`workers.mesh.printability`) and printer profiles
(:mod:`workers.mesh.printer`), on made solids with known answers and on the real corpus."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import manifold3d
import numpy as np
import pytest
import trimesh

from core.errors import InvalidInput
from core.meshio import load_mesh
from tests.corpus import corpus_meshes, corpus_name, corpus_path
from workers.mesh import printability
from workers.mesh.printability import (
    ScoreInputs,
    analyse_printability,
    decode_face_maps,
    encode_face_maps,
    print_frame,
    rank_orientations,
)
from workers.mesh.printer import MATERIALS, PrinterProfile
from workers.mesh.repair import repair

FDM = PrinterProfile()
RESIN = PrinterProfile.from_json({"technology": "resin"})


def _solid(manifold: manifold3d.Manifold) -> trimesh.Trimesh:
    mesh = manifold.to_mesh64()
    return trimesh.Trimesh(
        np.asarray(mesh.vert_properties)[:, :3], np.asarray(mesh.tri_verts), process=False
    )


def _cuboid(size: tuple[float, float, float], corner: tuple[float, float, float]) -> Any:
    return manifold3d.Manifold.cube(size).translate(corner)


def _hollow_box_boolean(outer: float, wall: float) -> trimesh.Trimesh:
    """A closed box with a closed cubic void, made by a real boolean difference."""
    inner = outer - 2 * wall
    box = manifold3d.Manifold.cube((outer, outer, outer), True)
    return _solid(box - manifold3d.Manifold.cube((inner, inner, inner), True))


def _hollow_box_shells(outer: float, wall: float) -> trimesh.Trimesh:
    """The same solid as two shells: the outer box and an inverted inner box."""
    void = trimesh.creation.box((outer - 2 * wall,) * 3)
    void.invert()
    both = trimesh.util.concatenate([trimesh.creation.box((outer,) * 3), void])
    assert isinstance(both, trimesh.Trimesh)
    return both


def _t_shape() -> trimesh.Trimesh:
    """A T standing upright: a 10 x 10 x 30 stem under a 50 x 10 x 10 bar."""
    stem = _cuboid((10, 10, 30), (-5, -5, 0))
    bar = _cuboid((50, 10, 10), (-25, -5, 30))
    return _solid(stem + bar)


# --------------------------------------------------------------------------- profiles


def test_profile_defaults_and_round_trip() -> None:
    assert PrinterProfile.from_json(None) == PrinterProfile.from_json({}) == PrinterProfile()
    assert FDM.min_wall_mm == pytest.approx(2 * FDM.nozzle_mm)
    assert FDM.build_volume_mm == (220.0, 220.0, 250.0)
    assert FDM.density_g_cm3 == MATERIALS["PLA"].density_g_cm3 == 1.24
    for profile in (FDM, RESIN, PrinterProfile.from_json({"material": "petg", "nozzle_mm": 0.6})):
        plain = profile.to_json()
        assert json.loads(json.dumps(plain)) == plain
        assert PrinterProfile.from_json(plain) == profile


def test_profile_derives_from_nozzle_and_material() -> None:
    wide = PrinterProfile.from_json({"nozzle_mm": 0.6, "print_speed_mm_s": 50})
    assert wide.min_wall_mm == pytest.approx(1.2)
    assert wide.volumetric_flow_mm3_s == pytest.approx(0.6 * 0.2 * 50)
    assert PrinterProfile.from_json({"material": "resin"}).technology == "resin"
    assert RESIN.material == "resin"
    assert RESIN.layer_height_mm == pytest.approx(0.05)
    assert PrinterProfile.from_json({"material": "ABS"}).density_g_cm3 == pytest.approx(1.05)
    assert 1.04 <= MATERIALS["ABS"].density_g_cm3 <= 1.10


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"nozzle": 0.4}, "unknown"),
        ({"nozzle_mm": "0.4"}, "nozzle_mm"),
        ({"nozzle_mm": -0.4}, "nozzle_mm"),
        ({"nozzle_mm": float("nan")}, "nozzle_mm"),
        ({"layer_height_mm": 0}, "layer_height_mm"),
        ({"infill": 1.5}, "infill"),
        ({"perimeters": 2.5}, "perimeters"),
        ({"perimeters": True}, "perimeters"),
        ({"perimeters": -1}, "perimeters"),
        ({"overhang_angle_deg": 95}, "overhang_angle_deg"),
        ({"build_volume_mm": [220, 220]}, "build_volume_mm"),
        ({"build_volume_mm": [220, 0, 250]}, "build_volume_mm"),
        ({"build_volume_mm": "220x220x250"}, "build_volume_mm"),
        ({"material": "wood"}, "material"),
        ({"technology": "sls"}, "technology"),
        ({"technology": "resin", "material": "PLA"}, "not printed by"),
        ({"technology": "fdm", "material": "resin"}, "not printed by"),
        ({"support_density": 2}, "support_density"),
        ([1, 2, 3], "JSON object"),
    ],
)
def test_bad_profiles_are_refused(data: Any, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        PrinterProfile.from_json(data)


def test_bad_units_and_up_are_refused() -> None:
    box = trimesh.creation.box((10, 10, 10))
    with pytest.raises(InvalidInput, match="units"):
        analyse_printability(box, FDM, units="furlong")
    for up in ((0, 0, 0), (0, 1), (0, float("nan"), 1), "z"):
        with pytest.raises(InvalidInput, match="up"):
            analyse_printability(box, FDM, up=up)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- walls


@pytest.mark.parametrize("build", [_hollow_box_boolean, _hollow_box_shells])
def test_two_millimetre_walls_are_measured(build: Any) -> None:
    report = analyse_printability(build(40.0, 2.0), FDM).report
    assert report["wall"]["min_mm"] == pytest.approx(2.0, rel=0.05)
    assert report["wall"]["median_mm"] == pytest.approx(2.0, rel=0.05)
    assert report["wall"]["measured_fraction"] == pytest.approx(1.0)
    assert report["thin"]["faces"] == 0
    assert report["volume_mm3"] == pytest.approx(40.0**3 - 36.0**3)
    assert report["volume_exact"] is True
    assert report["floating_shells"] == 0  # the void is a cavity, not a floating part


def test_half_millimetre_walls_are_flagged_thin() -> None:
    mesh = _hollow_box_shells(40.0, 0.5)
    result = analyse_printability(mesh, FDM)
    report = result.report
    assert report["wall"]["min_mm"] == pytest.approx(0.5, rel=0.05)
    assert report["thin"]["faces"] == len(mesh.faces)
    assert report["thin"]["area_fraction"] == pytest.approx(1.0)
    regions = report["thin"]["regions"]
    assert [r["area_mm2"] for r in regions] == pytest.approx([40.0**2 * 6, 39.0**2 * 6])
    assert regions[0]["min_mm"] == pytest.approx(0.5, rel=0.05)
    assert report["penalties"]["thin"] == 30.0
    thicken = next(r for r in report["recommendations"] if r["action"] == "thicken")
    assert thicken["params"] == {"target_mm": FDM.min_wall_mm}
    assert thicken["expected_score"] == pytest.approx(report["score"] + 30.0)
    np.testing.assert_allclose(result.face_maps["wall_thickness_mm"], 0.5, rtol=0.05)


def test_thin_regions_are_located_in_the_mesh_units() -> None:
    mesh = _hollow_box_shells(4.0, 0.05)  # centimetres: 0.5 mm walls
    mesh.apply_translation((10.0, 0.0, 0.0))
    report = analyse_printability(mesh, FDM, units="cm").report
    assert report["wall"]["min_mm"] == pytest.approx(0.5, rel=0.05)
    assert report["thin"]["faces"] == len(mesh.faces)
    assert report["thin"]["regions"][0]["centroid"] == pytest.approx([10.0, 0.0, 0.0], abs=1e-6)
    assert report["extents_mm"] == pytest.approx([40.0, 40.0, 40.0])


def test_large_meshes_are_sampled_and_filled_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(printability, "RAY_BUDGET", 400)
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=20.0)
    result = analyse_printability(sphere, FDM)
    wall = result.report["wall"]
    assert (wall["rays"], wall["sampled"]) == (400, True)
    thickness = result.face_maps["wall_thickness_mm"]
    assert len(thickness) == len(sphere.faces)
    np.testing.assert_allclose(thickness, 40.0, rtol=0.02)


# --------------------------------------------------------------------------- overhangs


def test_t_shape_overhang_is_the_bar_underside_beyond_the_stem() -> None:
    t_shape = _t_shape()
    result = analyse_printability(t_shape, FDM)
    report = result.report
    underside = 50.0 * 10.0 - 10.0 * 10.0
    assert report["overhang"]["area_mm2"] == pytest.approx(underside, rel=0.01)
    # nothing below the bar but the plate, 30 mm down
    assert report["support"]["volume_mm3"] == pytest.approx(underside * 30.0, rel=0.01)
    severity = result.face_maps["overhang"]
    flagged = np.flatnonzero(severity > 0)
    normals, centres = t_shape.face_normals[flagged], t_shape.triangles_center[flagged]
    np.testing.assert_allclose(normals, np.tile([0.0, 0.0, -1.0], (len(flagged), 1)), atol=1e-9)
    np.testing.assert_allclose(centres[:, 2], 30.0)
    np.testing.assert_allclose(severity[flagged], 1.0)


def test_t_shape_upside_down_needs_no_support() -> None:
    report = analyse_printability(_t_shape(), FDM, up=(0, 0, -1)).report
    assert report["overhang"]["area_mm2"] == 0.0
    assert report["support"]["volume_mm3"] == 0.0
    assert report["up"] == [0.0, 0.0, -1.0]


def test_support_stops_at_the_part_below() -> None:
    # a 40 x 40 roof 10 mm above a 40 x 40 x 10 floor, joined by a thin column at one corner
    floor = _cuboid((40, 40, 10), (0, 0, 0))
    column = _cuboid((4, 4, 10), (0, 0, 10))
    roof = _cuboid((40, 40, 5), (0, 0, 20))
    report = analyse_printability(_solid(floor + column + roof), FDM).report
    gap_area = 40.0 * 40.0 - 4.0 * 4.0
    assert report["overhang"]["area_mm2"] == pytest.approx(gap_area, rel=0.01)
    assert report["support"]["volume_mm3"] == pytest.approx(gap_area * 10.0, rel=0.01)


def test_faces_on_the_plate_are_not_overhangs() -> None:
    report = analyse_printability(trimesh.creation.box((30, 30, 10)), FDM).report
    assert report["overhang"]["area_mm2"] == 0.0
    tilted = PrinterProfile.from_json({"overhang_angle_deg": 30})
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=10)
    steep = analyse_printability(sphere, tilted).report["overhang"]["area_mm2"]
    gentle = analyse_printability(sphere, FDM).report["overhang"]["area_mm2"]
    assert steep > gentle > 0
    # a sphere overhangs below latitude -angle: a cap of area 2πr²(1 - sin θ)
    for angle, area in ((45, gentle), (30, steep)):
        cap = 2 * math.pi * 10.0**2 * (1 - math.sin(math.radians(angle)))
        assert area == pytest.approx(cap, rel=0.05)


# --------------------------------------------------------------------------- whole report


def test_twenty_millimetre_cube() -> None:
    mesh = load_mesh(corpus_path("20mm-xyz-cube.stl"), file_type="stl")
    report = analyse_printability(mesh, FDM).report
    # the letters X, Y, Z are engraved a little into three faces
    assert report["volume_mm3"] == pytest.approx(8000.0, rel=0.01)
    assert report["volume_mm3"] == pytest.approx(abs(mesh.volume))
    assert report["extents_mm"] == pytest.approx([20.0, 20.0, 20.0])
    assert report["build"] == {
        "volume_mm": [220.0, 220.0, 250.0],
        "fits_as_is": True,
        "fits_rotated": True,
        "scale_needed": 1.0,
        "too_small": False,
        "min_size_mm": pytest.approx(3.2),
    }
    assert report["watertight"] is True
    assert report["score"] >= 90
    volume, area = abs(mesh.volume), mesh.area
    shell = min(volume, area * 2 * 0.4)
    support = report["support"]["volume_mm3"] * 0.15
    extruded = shell + 0.2 * (volume - shell) + support
    estimate = report["print"]
    assert estimate["weight_g"] == pytest.approx(extruded / 1000 * 1.24)
    assert 3.0 < estimate["weight_g"] < 5.0
    assert estimate["layers"] == 100
    assert estimate["time_s"] == pytest.approx(extruded / 4.8 + 100 * 1.0)


def test_units_scale_to_millimetres() -> None:
    in_mm = analyse_printability(trimesh.creation.box((20, 20, 20)), FDM).report
    in_cm = analyse_printability(trimesh.creation.box((2, 2, 2)), FDM, units="cm").report
    for key in ("volume_mm3", "area_mm2", "score"):
        assert in_cm[key] == pytest.approx(in_mm[key])
    assert in_cm["print"]["weight_g"] == pytest.approx(in_mm["print"]["weight_g"])


def test_resin_prints_solid_by_layer_cycles() -> None:
    report = analyse_printability(trimesh.creation.box((20, 20, 20)), RESIN).report
    estimate = report["print"]
    assert estimate["layers"] == 400
    assert estimate["time_s"] == pytest.approx(400 * 8.0)
    assert estimate["weight_g"] == pytest.approx(8000.0 / 1000 * 1.15)


def test_score_formula() -> None:
    perfect = ScoreInputs(True, 0.0, 0.0, True, 0)
    assert perfect.score() == 100.0
    broken = ScoreInputs(False, 0.1, 0.25, False, 3)
    assert broken.penalties() == pytest.approx(
        {"defects": 25.0, "thin": 12.0, "overhang": 10.0, "fit": 20.0, "floating": 10.0,
         "small": 0.0}
    )
    assert broken.score() == pytest.approx(23.0)
    assert ScoreInputs(False, 1.0, 1.0, False, 5).score() == 0.0


def test_oversized_part_is_recommended_a_scale() -> None:
    box = trimesh.creation.box((500.0, 100.0, 50.0))
    report = analyse_printability(box, FDM).report
    assert report["build"]["fits_as_is"] is False
    assert report["build"]["fits_rotated"] is False
    assert report["build"]["scale_needed"] == pytest.approx(220.0 / 500.0)
    assert report["penalties"]["fit"] == 20.0
    scale = next(r for r in report["recommendations"] if r["action"] == "scale")
    assert scale["params"]["factor"] == pytest.approx(210.0 / 500.0)
    scaled = box.copy()
    scaled.apply_scale(scale["params"]["factor"])
    assert analyse_printability(scaled, FDM).report["score"] == scale["expected_score"]


def test_a_part_too_small_to_print_says_so() -> None:
    """A generated apple left at its unit size: 0.2 mm³, under a millimetre across. It used to
    score 70 and "fit the printer"."""
    apple = trimesh.creation.icosphere(subdivisions=3, radius=0.36)
    report = analyse_printability(apple, FDM).report
    assert report["volume_mm3"] == pytest.approx(0.2, rel=0.05)
    assert report["build"]["too_small"] is True
    assert report["build"]["fits_as_is"] is False and report["build"]["fits_rotated"] is False
    assert report["penalties"]["small"] == 50.0
    assert report["score"] <= 20
    enlarge = next(r for r in report["recommendations"] if r["action"] == "enlarge")
    assert "too small to print" in enlarge["reason"]
    bigger = apple.copy()
    bigger.apply_scale(enlarge["params"]["factor"])
    assert max(bigger.extents) == pytest.approx(20.0)
    after = analyse_printability(bigger, FDM).report
    assert after["build"]["too_small"] is False and after["build"]["fits_as_is"] is True
    assert after["score"] == enlarge["expected_score"]


@pytest.mark.parametrize("size", [(4.0, 4.0, 4.0), (30.0, 30.0, 1.5), (40.0, 0.9, 0.9)])
def test_small_but_printable_parts_are_not_too_small(size: tuple[float, float, float]) -> None:
    """A 4 mm die, a coin, a pin: the size rule looks at the whole part, not its thinnest
    side (thin walls have their own measure)."""
    report = analyse_printability(trimesh.creation.box(size), FDM).report
    assert report["build"]["too_small"] is False and report["penalties"]["small"] == 0.0
    assert report["build"]["fits_as_is"] is True
    assert all(r["action"] != "enlarge" for r in report["recommendations"])


def test_reorient_recommendation_prices_what_it_proposes() -> None:
    report = analyse_printability(_t_shape(), FDM).report
    reorient = next(r for r in report["recommendations"] if r["action"] == "reorient")
    assert reorient["expected_score"] > report["score"]
    assert reorient["expected_change"] == pytest.approx(
        reorient["expected_score"] - report["score"]
    )
    turned = analyse_printability(_t_shape(), FDM, up=reorient["params"]["up"]).report
    assert turned["overhang"]["area_mm2"] == pytest.approx(0.0, abs=1e-9)
    assert turned["score"] == reorient["expected_score"]


def test_rank_orientations_finds_the_flat_side() -> None:
    ranked = rank_orientations(print_frame(_t_shape()), FDM)
    assert ranked[0].overhang_area == pytest.approx(0.0)
    assert ranked[0].support_volume == pytest.approx(0.0)
    upright = next(o for o in ranked if o.up == (0.0, 0.0, 1.0))
    assert upright.overhang_area == pytest.approx(400.0)
    assert ranked[0].cost < upright.cost


# --------------------------------------------------------------------------- bodies in contact


def _lid_on_pot(lift: float, *, closed: bool) -> trimesh.Trimesh:
    """A 40 x 40 x 20 pot with a 30 x 30 x 10 lid on it, ``lift`` mm above its top (below it
    when negative), as two bodies; ``closed=False`` leaves the lid open underneath."""
    pot = trimesh.creation.box((40, 40, 20))
    pot.apply_translation((0, 0, 10))
    lid = trimesh.creation.box((30, 30, 10))
    lid.apply_translation((0, 0, 25 + lift))
    if not closed:
        keep = ~np.isclose(lid.triangles_center[:, 2], 20 + lift)
        lid = trimesh.Trimesh(lid.vertices, lid.faces[keep], process=False)
    both = trimesh.util.concatenate([pot, lid])
    assert isinstance(both, trimesh.Trimesh)
    return both


@pytest.mark.parametrize("lift", [0.0, 1e-5, -0.5], ids=["touching", "float32-gap", "sunk"])
def test_a_lid_resting_on_its_pot_needs_no_support(lift: float) -> None:
    # the lid's underside lies on the pot (or in it): inside the printed part, not in the air
    mesh = _lid_on_pot(lift, closed=True)
    result = analyse_printability(mesh, FDM)
    report = result.report
    assert (report["shells"], report["floating_shells"]) == (2, 0)
    assert report["overhang"]["area_mm2"] == 0.0
    assert report["support"]["volume_mm3"] == 0.0
    assert report["thin"]["faces"] == 0
    assert report["score"] == 100.0
    underside = np.isclose(mesh.triangles_center[:, 2], 20 + lift)
    assert np.isnan(result.face_maps["wall_thickness_mm"][underside]).all()
    assert rank_orientations(print_frame(mesh), FDM)[0].up == (0.0, 0.0, 1.0)


def test_a_repaired_copy_is_analysed_like_the_original() -> None:
    # The repair closes the lid's underside; a hundred-thousandth of a millimetre above the
    # pot's top the two stay two bodies. Counted as an overhang, that underside made the
    # repaired teapot need 11 times the support of the open one and be stood on its side.
    broken = _lid_on_pot(1e-5, closed=False)
    repaired, _ = repair(broken)
    before = analyse_printability(broken, FDM).report
    after = analyse_printability(repaired, FDM).report
    assert (before["watertight"], after["watertight"], after["shells"]) == (False, True, 2)
    assert after["support"]["volume_mm3"] == pytest.approx(before["support"]["volume_mm3"],
                                                           rel=0.05, abs=1.0)
    assert after["overhang"]["area_mm2"] == pytest.approx(before["overhang"]["area_mm2"],
                                                          rel=0.05, abs=1.0)
    assert after["floating_shells"] == 0
    ups = [rank_orientations(print_frame(m), FDM)[0].up for m in (broken, repaired)]
    assert ups[0] == ups[1] == (0.0, 0.0, 1.0)


def test_the_repaired_teapot_needs_no_more_support_than_the_open_one() -> None:
    # the e2e's path: the repair's output is stored as GLB (float32) and analysed from it
    teapot = load_mesh(corpus_path("teapot.stl"), file_type="stl")
    repaired, _ = repair(teapot)
    glb = repaired.export(file_type="glb")
    assert isinstance(glb, bytes)
    stored = load_mesh(glb, file_type="glb")
    before = analyse_printability(teapot, FDM).report
    after = analyse_printability(stored, FDM).report
    # (the repair closes holes and rebuilds faces: close, not equal; it was 11 times)
    assert after["support"]["volume_mm3"] <= 1.25 * before["support"]["volume_mm3"]
    assert after["overhang"]["area_mm2"] <= 1.25 * before["overhang"]["area_mm2"]
    assert after["floating_shells"] == 0  # the lid sits on the pot
    assert all(r["action"] != "reorient" for r in after["recommendations"])


def test_big_solid_resin_part_is_recommended_hollowing() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=25.0)
    report = analyse_printability(sphere, RESIN).report
    hollow = next(r for r in report["recommendations"] if r["action"] == "hollow")
    assert hollow["params"]["wall_mm"] == 2.0
    assert hollow["expected_weight_g"] < 0.4 * report["print"]["weight_g"]
    fdm = analyse_printability(sphere, FDM).report
    assert all(r["action"] != "hollow" for r in fdm["recommendations"])


# --------------------------------------------------------------------------- face maps


def test_face_map_binary_round_trip() -> None:
    values = np.array([0.0, 0.1, 0.5, 7.99, 8.0, 50.0, np.nan], dtype=np.float32)
    severity = np.array([0.0, 1.0, 0.25, np.nan, 0.5, 0.75, 0.004], dtype=np.float32)
    data = encode_face_maps(
        {"wall_thickness_mm": values, "overhang": severity},
        {"wall_thickness_mm": 8.0, "overhang": 1.0},
    )
    assert data[:4] == b"OFM1"
    assert struct.unpack_from("<IH", data, 4) == (7, 2)
    assert len(data) == 10 + (1 + 17 + 4) + (1 + 8 + 4) + 2 * 7
    decoded = decode_face_maps(data)
    assert list(decoded) == ["wall_thickness_mm", "overhang"]
    wall = decoded["wall_thickness_mm"]
    np.testing.assert_allclose(wall[:5], values[:5], atol=8.0 / 254 / 2 + 1e-6)
    assert wall[5] == pytest.approx(8.0)  # clipped at the limit
    assert np.isnan(wall[6])
    assert np.isnan(decoded["overhang"][3])
    np.testing.assert_allclose(
        decoded["overhang"][[0, 1, 2, 4, 5]], [0, 1, 0.25, 0.5, 0.75], atol=0.002
    )


def test_face_maps_of_an_analysis_decode_to_one_value_per_face() -> None:
    mesh = _t_shape()
    result = analyse_printability(mesh, FDM)
    decoded = decode_face_maps(result.face_maps_bytes())
    assert set(decoded) == {"overhang", "wall_thickness_mm"}
    for name, values in decoded.items():
        assert values.shape == (len(mesh.faces),)
        original = result.face_maps[name]
        limit = result.map_limits[name]
        np.testing.assert_allclose(values, np.minimum(original, limit), atol=limit / 254)


@pytest.mark.parametrize(
    "data", [b"", b"OFM2" + bytes(6), b"OFM1" + struct.pack("<IH", 3, 1), b"OFM1" + bytes(3)]
)
def test_malformed_face_map_binaries_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        decode_face_maps(data)


def test_face_map_binary_with_too_much_data_is_refused() -> None:
    data = encode_face_maps({"overhang": np.zeros(4)}, {"overhang": 1.0})
    with pytest.raises(InvalidInput, match="data bytes"):
        decode_face_maps(data + b"\x00")


# --------------------------------------------------------------------------- broken meshes


@pytest.mark.parametrize("name", ["soup.stl", "wallhole.obj", "teapot.stl", "plane.ply"])
def test_open_meshes_are_analysed(name: str) -> None:
    path = corpus_path(name)
    mesh = load_mesh(path, file_type=path.suffix)
    result = analyse_printability(mesh, FDM)
    report = result.report
    assert report["watertight"] is False
    assert report["volume_exact"] is False
    assert report["penalties"]["defects"] == 25.0
    repair = next(r for r in report["recommendations"] if r["action"] == "repair")
    others = sum(report["penalties"].values()) - 25.0  # what is left once it is repaired
    assert repair["expected_score"] == pytest.approx(max(0.0, min(100.0, 100.0 - others)),
                                                     abs=0.05)
    assert json.loads(json.dumps(report, allow_nan=False)) == report
    assert len(decode_face_maps(result.face_maps_bytes())["overhang"]) == len(mesh.faces)


@pytest.mark.parametrize("faces", [[[0, 1, 2]], [[0, 1, 2], [0, 2, 1]]], ids=["one", "two"])
def test_a_flat_sheet_has_no_known_thickness(faces: list[list[int]]) -> None:
    # one-sided it is open; two-sided it is closed but encloses nothing
    sheet = trimesh.Trimesh([[0, 0, 0], [10, 0, 0], [0, 10, 0]], faces, process=False)
    result = analyse_printability(sheet, FDM)
    assert result.report["wall"]["min_mm"] is None
    assert result.report["volume_mm3"] == 0.0
    assert np.isnan(result.face_maps["wall_thickness_mm"]).all()
    assert np.isnan(decode_face_maps(result.face_maps_bytes())["wall_thickness_mm"]).all()
    assert result.report["penalties"]["defects"] == 25.0
    assert json.loads(json.dumps(result.report, allow_nan=False)) == result.report


def test_inward_wound_mesh_is_measured_as_its_solid() -> None:
    box = trimesh.creation.box((20, 20, 20))
    box.invert()
    report = analyse_printability(box, FDM).report
    assert report["inward"] is True
    assert report["volume_mm3"] == pytest.approx(8000.0)
    assert report["wall"]["min_mm"] == pytest.approx(20.0)
    assert report["overhang"]["area_mm2"] == 0.0
    assert report["penalties"]["defects"] == 25.0


@pytest.mark.parametrize("path", corpus_meshes(loadable_only=True), ids=corpus_name)
def test_every_loadable_corpus_mesh_is_analysed(path: Path) -> None:
    mesh = load_mesh(path, file_type=path.suffix)  # test_mesh_analysis pins the refused ones
    result = analyse_printability(mesh, FDM)
    report = result.report
    assert json.loads(json.dumps(report, allow_nan=False)) == report
    assert 0.0 <= report["score"] <= 100.0
    assert report["faces"] == len(mesh.faces)
    decoded = decode_face_maps(result.face_maps_bytes())
    assert all(len(values) == len(mesh.faces) for values in decoded.values())
    severity = result.face_maps["overhang"]
    assert ((severity >= 0) & (severity <= 1)).all()
    assert (severity > 0).sum() == report["overhang"]["faces"]
