"""The mesh jobs' parameter contract (:mod:`core.contracts.mesh_params`, which the API checks
bodies with and imports no geometry for) says what the worker's own functions say: the same
defaults, the same ranges, the same printer profiles."""

from __future__ import annotations

import pytest

from core.contracts import mesh_params
from core.contracts.mesh_params import (
    MATERIAL_KINDS,
    PRINTER_DEFAULTS,
    STYLE_MODELS,
    STYLES,
    check_mesh_params,
)
from core.errors import InvalidInput
from core.events.job_kinds import MESH_ANALYSE, MESH_MATERIAL, MESH_REPAIR, MESH_STYLE
from workers.mesh import materials, printer, styles
from workers.mesh.printer import PrinterProfile


def test_printer_defaults_are_the_workers():
    assert PrinterProfile(**PRINTER_DEFAULTS | {"build_volume_mm": (220.0, 220.0, 250.0)}) \
        == PrinterProfile()
    assert set(mesh_params.PRINTER_MATERIALS) == set(printer.MATERIALS)
    for name, material in printer.MATERIALS.items():
        assert mesh_params.PRINTER_MATERIALS[name] == material.technology


@pytest.mark.parametrize("given", [
    None, {}, {"material": "petg", "nozzle_mm": 0.6}, {"technology": "resin"},
    {"material": "resin"}, {"nozzle_mm": 0.6, "print_speed_mm_s": 50, "perimeters": 3},
    {"build_volume_mm": [100, 120, 80], "infill": 0, "overhang_angle_deg": 89},
])
def test_printer_profiles_are_completed_as_the_worker_completes_them(given):
    checked = check_mesh_params(MESH_ANALYSE, {} if given is None else {"printer": given})
    assert checked["printer"] == PrinterProfile.from_json(given).to_json()


def test_style_and_material_defaults_are_the_workers():
    assert tuple(STYLE_MODELS) == STYLES == styles.STYLES
    for style in STYLES:
        checked = check_mesh_params(MESH_STYLE, {"style": style})
        assert checked == {"style": style} | styles.validate_style_params(style, None)
    assert [entry["kind"] for entry in mesh_params.material_catalogue()] == list(
        materials.MATERIALS)
    for kind in MATERIAL_KINDS:
        checked = check_mesh_params(MESH_MATERIAL, {"material": kind})
        assert checked == {"material": kind, "seed": 0} | materials.validate_material_params(
            kind, None)


@pytest.mark.parametrize(("style", "name", "inside", "outside"), [
    ("low_poly", "ratio", 0.01, 0.0),
    ("organic", "subdivisions", 2, 3),
    ("organic", "max_faces", styles.MAX_FACES, styles.MAX_FACES + 1),
    ("mechanical", "angle", 45, 46),
    ("mechanical", "iterations", 1, 0),
    ("futuristic", "bevel", 0.05, 0.06),
    ("custom", "detail", -1, -1.01),
])
def test_style_ranges_are_the_workers(style, name, inside, outside):
    assert check_mesh_params(MESH_STYLE, {"style": style, name: inside})[name] == \
        styles.validate_style_params(style, {name: inside})[name]
    for check in (lambda p: check_mesh_params(MESH_STYLE, {"style": style} | p),
                  lambda p: styles.validate_style_params(style, p)):
        with pytest.raises(InvalidInput, match=name):
            check({name: outside})


@pytest.mark.parametrize("params", [
    {"merge_tolerance": float("inf")}, {"merge_tolerance": float("nan")},
    {"debris_fraction": float("-inf")}, {"merge_tolerance": True}, {"debris_fraction": "0"},
])
def test_the_contract_refuses_what_no_jsonb_column_or_worker_takes(params):
    with pytest.raises(InvalidInput, match=next(iter(params))):
        check_mesh_params(MESH_REPAIR, params)


def test_derived_printer_figures_must_stay_finite():
    with pytest.raises(InvalidInput, match="too large"):
        check_mesh_params(MESH_ANALYSE, {"printer": {
            "nozzle_mm": 5, "layer_height_mm": 2, "print_speed_mm_s": 1.5e308}})


def test_the_contract_imports_no_geometry_stack():
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, core.contracts.mesh_params, api.schemas; "
         "print(sorted(m for m in ('numpy', 'trimesh', 'scipy', 'torch') if m in sys.modules))"],
        capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
