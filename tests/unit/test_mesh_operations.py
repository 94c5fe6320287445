"""The mesh worker's job functions (:mod:`workers.mesh.operations`) on bytes, as the geometry
process runs them: parameters checked the same way in the API and the worker, results as GLB."""

from __future__ import annotations

import io

import pytest
import trimesh

from core.errors import InvalidInput
from core.events.job_kinds import (
    MESH_ANALYSE,
    MESH_MATERIAL,
    MESH_OPTIMISE,
    MESH_REPAIR,
    MESH_STYLE,
)
from core.meshio import load_mesh
from workers.mesh.operations import analyse, check_params, operate
from workers.mesh.printability import decode_face_maps


def stl(mesh: trimesh.Trimesh) -> bytes:
    buffer = io.BytesIO()
    mesh.export(buffer, file_type="stl")
    return buffer.getvalue()


@pytest.mark.parametrize(("kind", "given"), [
    (MESH_ANALYSE, {}),
    (MESH_ANALYSE, {"units": "cm", "up": [0, 1, 0], "printer": {"material": "PETG"}}),
    (MESH_REPAIR, {"object_id": "o1"}),
    (MESH_STYLE, {"style": "organic", "iterations": 5}),
    (MESH_MATERIAL, {"material": "metal", "seed": 4, "color": "#ff8800"}),
    (MESH_OPTIMISE, {"thicken": True, "scale_to_fit": True}),
    (MESH_OPTIMISE, {"hollow": 2.5, "printer": {"technology": "resin"}}),
])
def test_checked_parameters_are_complete_and_check_again_unchanged(kind, given):
    checked = check_params(kind, given)
    assert set(given) <= set(checked)
    assert check_params(kind, checked) == checked  # the worker re-checks what the API stored


@pytest.mark.parametrize(("kind", "given", "words"), [
    (MESH_ANALYSE, {"up": [0, 0, 0]}, "non-zero direction"),
    (MESH_ANALYSE, {"printer": {"nozzle_mm": -1}}, "nozzle"),
    (MESH_REPAIR, {"merge_tolerance": 0}, "merge_tolerance"),
    (MESH_STYLE, {"style": "baroque"}, "style must be one of"),
    (MESH_STYLE, {"style": "low_poly", "ratio": 5}, "ratio"),
    (MESH_MATERIAL, {"material": "wood", "seed": -1}, "seed"),
    (MESH_MATERIAL, {"material": "gold"}, "material must be one of"),
    (MESH_OPTIMISE, {"hollow": 2.0}, "hollowing is for resin"),
    (MESH_OPTIMISE, {"reorient": "yes"}, "reorient must be true or false"),
    ("mesh.melt", {}, "unknown mesh operation"),
])
def test_bad_parameters_are_refused_with_their_name(kind, given, words):
    with pytest.raises(InvalidInput, match=words):
        check_params(kind, given)


def test_analysis_gives_quality_printability_and_face_maps():
    box = trimesh.creation.box(extents=(20, 20, 20))
    stats, maps, _ = analyse(stl(box), "stl", {})
    assert stats["faces"] == 12 and abs(stats["volume"] - 8000) < 1e-6
    assert stats["quality"]["printable"] is True
    assert stats["printability"]["score"] >= 90
    decoded = decode_face_maps(maps)
    assert len(decoded["wall_thickness_mm"]) == 12


def test_each_operation_returns_a_loadable_glb_and_a_report():
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=10.0)
    holed = trimesh.Trimesh(sphere.vertices, sphere.faces[2:], process=False)
    runs = {
        MESH_REPAIR: (holed, {}),
        MESH_STYLE: (sphere, {"style": "low_poly", "ratio": 0.5}),
        MESH_MATERIAL: (sphere, {"material": "stone", "texture_size": 128}),
        MESH_OPTIMISE: (sphere, {"reorient": True}),
    }
    for kind, (mesh, params) in runs.items():
        glb, report = operate(kind, stl(mesh), "stl", params)
        made = load_mesh(glb, file_type="glb")
        assert report["faces"] == len(made.faces) > 0, kind
        welded = trimesh.Trimesh(made.vertices, made.faces)
        welded.merge_vertices(merge_tex=True, merge_norm=True)
        assert welded.is_watertight, kind
    assert operate(MESH_OPTIMISE, stl(sphere), "stl", {})[1]["score_after"] >= 0


def test_analysis_is_not_an_operation_that_makes_a_mesh():
    with pytest.raises(InvalidInput, match="does not make a mesh"):
        operate(MESH_ANALYSE, stl(trimesh.creation.box()), "stl", {})
