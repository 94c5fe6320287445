"""The mesh worker's jobs as plain functions of bytes, so they can run in the geometry process.

Each takes the stored blob, its format and the job's parameters (already checked by
:func:`check_params` in the API, and checked again here: a command from the log is input
too), and returns JSON-ready figures, plus the new mesh as GLB for the operations that make
one. A new mesh is stored as GLB because it is what the browser shows and what keeps a PBR
material; its coordinates are float32 there, as in STL and every slicer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, cast

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
from workers.mesh.analysis import basic_stats
from workers.mesh.materials import MATERIALS, apply_material, validate_material_params
from workers.mesh.optimise import optimise_for_print
from workers.mesh.printability import analyse_printability
from workers.mesh.printer import PrinterProfile
from workers.mesh.repair import assess, repair
from workers.mesh.styles import STYLES, apply_style, is_closed, validate_style_params, welded

GLB_MEDIA_TYPE = "model/gltf-binary"


def check_params(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical parameters of a ``kind`` job (defaults filled in), or InvalidInput."""
    try:
        checker = _CHECKERS[kind]
    except KeyError:
        raise InvalidInput(f"unknown mesh operation {kind!r}") from None
    return checker(dict(params))


def analyse(data: bytes, file_type: str,
            params: Mapping[str, Any]) -> tuple[dict[str, Any], bytes]:
    """The analysis figures, and the per-face maps for the viewer (the compact binary of
    :func:`workers.mesh.printability.encode_face_maps`).

    The figures are the basic stats, with the defect checks under ``quality`` and the
    printability for the job's printer profile and up direction under ``printability``.
    """
    params = check_params(MESH_ANALYSE, params)
    mesh = load_mesh(data, file_type=file_type)
    stats: dict[str, Any] = dict(basic_stats(mesh, units=params["units"]))
    stats["quality"] = assess(mesh).to_dict()
    printability = analyse_printability(mesh, PrinterProfile.from_json(params["printer"]),
                                        units=params["units"], up=params["up"])
    stats["printability"] = printability.report
    return stats, printability.face_maps_bytes()


def operate(kind: str, data: bytes, file_type: str,
            params: Mapping[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """Run a mesh-making operation: the new mesh as GLB, and its report."""
    params = check_params(kind, params)
    try:
        operation = _OPERATIONS[kind]
    except KeyError:
        raise InvalidInput(f"{kind!r} does not make a mesh") from None
    mesh = load_mesh(data, file_type=file_type)
    made, report = operation(mesh, params)
    if len(made.faces) == 0:
        raise InvalidInput(f"{kind}: nothing of the mesh was left to keep")
    report["faces"] = len(made.faces)
    return cast(bytes, made.export(file_type="glb")), report


# -- parameters ---------------------------------------------------------------------------

UNITS = ("mm", "cm", "m", "in")


def _units(params: dict[str, Any]) -> str:
    units = params.pop("units", "mm")
    if units not in UNITS:
        raise InvalidInput(f"units must be one of {', '.join(UNITS)}")
    return str(units)


def _object_id(params: dict[str, Any]) -> dict[str, Any]:
    object_id = params.pop("object_id", None)
    if object_id is not None and (not isinstance(object_id, str) or not object_id
                                  or len(object_id) > 100):
        raise InvalidInput("object_id must be a scene object id")
    return {} if object_id is None else {"object_id": object_id}


def _no_more(params: dict[str, Any], kind: str) -> None:
    if params:
        raise InvalidInput(f"{kind}: unknown parameter(s) {', '.join(sorted(params))}")


def _number(params: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = params.pop(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidInput(f"{name} must be a number in [{low:g}, {high:g}]")
    return float(value)


def _check_analyse(params: dict[str, Any]) -> dict[str, Any]:
    """``units``, ``printer`` (a printer profile, see :class:`PrinterProfile`) and ``up``."""
    checked = {"units": _units(params),
               "printer": PrinterProfile.from_json(params.pop("printer", None)).to_json(),
               "up": _direction(params.pop("up", [0.0, 0.0, 1.0]))}
    _no_more(params, "analysis")
    return checked


def _direction(value: Any) -> list[float]:
    if (not isinstance(value, list) or len(value) != 3
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            or not all(math.isfinite(v) for v in value) or not any(value)):
        raise InvalidInput("up must be a non-zero direction [x, y, z]")
    return [float(v) for v in value]


def _check_repair(params: dict[str, Any]) -> dict[str, Any]:
    checked = _object_id(params) | {
        "debris_fraction": _number(params, "debris_fraction", 1e-4, 0.0, 0.5),
    }
    tolerance = params.pop("merge_tolerance", None)
    if tolerance is not None and (isinstance(tolerance, bool)
                                  or not isinstance(tolerance, int | float) or tolerance <= 0):
        raise InvalidInput("merge_tolerance must be a positive number (mesh units) or null")
    checked["merge_tolerance"] = tolerance
    _no_more(params, "repair")
    return checked


def _repair(mesh: trimesh.Trimesh, params: dict[str, Any]) -> tuple[trimesh.Trimesh,
                                                                        dict[str, Any]]:
    repaired, report = repair(mesh, debris_fraction=params["debris_fraction"],
                              merge_tolerance=params["merge_tolerance"])
    return repaired, report.to_dict()


def _check_style(params: dict[str, Any]) -> dict[str, Any]:
    """``{"style": name, ...its parameters}``, see :func:`workers.mesh.styles.apply_style`."""
    checked = _object_id(params)
    style = params.pop("style", None)
    if style not in STYLES:
        raise InvalidInput(f"style must be one of {', '.join(STYLES)}")
    return checked | {"style": style} | validate_style_params(style, params)


def _style(mesh: trimesh.Trimesh, params: dict[str, Any]) -> tuple[trimesh.Trimesh,
                                                                       dict[str, Any]]:
    options = _options(params, "style")
    styled = apply_style(mesh, params["style"], options)
    return styled, {"style": params["style"], "options": options,
                    "faces_before": len(mesh.faces), "closed": is_closed(welded(styled))}


def _options(params: dict[str, Any], *named: str) -> dict[str, Any]:
    """The operation's own options: the canonical parameters without the common ones."""
    return {k: v for k, v in params.items() if k not in {"object_id", *named}}


def _check_material(params: dict[str, Any]) -> dict[str, Any]:
    """``{"material": kind, "seed": int, ...its parameters}``, see
    :func:`workers.mesh.materials.apply_material`."""
    checked = _object_id(params)
    kind = params.pop("material", None)
    if kind not in MATERIALS:
        raise InvalidInput(f"material must be one of {', '.join(MATERIALS)}")
    seed = params.pop("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise InvalidInput("seed must be an integer in [0, 2^31)")
    return checked | {"material": kind, "seed": seed} | validate_material_params(kind, params)


def _material(mesh: trimesh.Trimesh, params: dict[str, Any]) -> tuple[trimesh.Trimesh,
                                                                          dict[str, Any]]:
    options = _options(params, "material", "seed")
    textured = apply_material(mesh, params["material"], options, seed=params["seed"])
    return textured, {"material": params["material"], "seed": params["seed"],
                      "options": options}


def _check_optimise(params: dict[str, Any]) -> dict[str, Any]:
    """``printer``, ``units``, and which steps: ``reorient`` (default on), ``thicken``,
    ``scale_to_fit``, ``hollow`` (a resin wall in mm) with ``drain_holes``; see
    :func:`workers.mesh.optimise.optimise_for_print`."""
    checked = _object_id(params) | {
        "units": _units(params),
        "printer": PrinterProfile.from_json(params.pop("printer", None)).to_json(),
    }
    for step, default in (("reorient", True), ("thicken", False), ("scale_to_fit", False)):
        value = params.pop(step, default)
        if not isinstance(value, bool):
            raise InvalidInput(f"{step} must be true or false")
        checked[step] = value
    hollow = params.pop("hollow", None)
    checked["hollow"] = None if hollow is None else _number({"hollow": hollow}, "hollow",
                                                             2.0, 0.3, 20.0)
    checked["drain_holes"] = int(_number(params, "drain_holes", 2, 0, 8))
    if checked["hollow"] is not None and checked["printer"]["technology"] != "resin":
        raise InvalidInput("hollowing is for resin printers; set printer.technology to resin")
    _no_more(params, "optimise")
    return checked


def _optimise(mesh: trimesh.Trimesh, params: dict[str, Any]) -> tuple[trimesh.Trimesh,
                                                                          dict[str, Any]]:
    done = optimise_for_print(
        mesh, PrinterProfile.from_json(params["printer"]), units=params["units"],
        reorient=params["reorient"], thicken=params["thicken"],
        scale_to_fit=params["scale_to_fit"], hollow=params["hollow"],
        drain_holes=params["drain_holes"])
    return done.mesh, {"changes": done.changes, "score_before": done.score_before,
                       "score_after": done.score_after, "before": done.report_before,
                       "after": done.report_after}


_CHECKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    MESH_ANALYSE: _check_analyse,
    MESH_REPAIR: _check_repair,
    MESH_STYLE: _check_style,
    MESH_MATERIAL: _check_material,
    MESH_OPTIMISE: _check_optimise,
}

_OPERATIONS: dict[str, Callable[[trimesh.Trimesh, dict[str, Any]],
                                tuple[trimesh.Trimesh, dict[str, Any]]]] = {
    MESH_REPAIR: _repair,
    MESH_STYLE: _style,
    MESH_MATERIAL: _material,
    MESH_OPTIMISE: _optimise,
}
