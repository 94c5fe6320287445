"""The mesh worker's jobs as plain functions of bytes, so they can run in the geometry process.

Each takes the stored blob, its format and the job's parameters (already checked by
:func:`check_params` in the API, and checked again here: a command from the log is input
too), and returns JSON-ready figures, plus the new mesh as GLB for the operations that make
one. A new mesh is stored as GLB because it is what the browser shows and what keeps a PBR
material; its coordinates are float32 there, as in STL and every slicer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import trimesh

from core.contracts.mesh_params import check_mesh_params
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
from workers.mesh.materials import apply_material
from workers.mesh.optimise import optimise_for_print
from workers.mesh.printability import analyse_printability
from workers.mesh.printer import PrinterProfile
from workers.mesh.repair import assess, repair, time_budget
from workers.mesh.styles import apply_style, is_closed, welded
from workers.mesh.thumbnail import thumbnail_of

GLB_MEDIA_TYPE = "model/gltf-binary"


def check_params(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical parameters of a ``kind`` job (defaults filled in), or InvalidInput: the
    contract the API checked before recording the command, applied again to what the log
    holds (:mod:`core.contracts.mesh_params`)."""
    return check_mesh_params(kind, params)


def analyse(data: bytes, file_type: str,
            params: Mapping[str, Any]) -> tuple[dict[str, Any], bytes, bytes | None]:
    """The analysis figures, the per-face maps for the viewer (the compact binary of
    :func:`workers.mesh.printability.encode_face_maps`) and the mesh's thumbnail (PNG; None
    for a mesh with no faces).

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
    return stats, printability.face_maps_bytes(), thumbnail_of(mesh)


def operate(kind: str, data: bytes, file_type: str, params: Mapping[str, Any],
            material: Mapping[str, Any] | None = None) -> tuple[bytes, dict[str, Any]]:
    """Run a mesh-making operation: the new mesh as GLB, and its report.

    ``material`` is the material job's parameters the source mesh wore, if any. A repair,
    style or optimise rebuilds faces, so the source's UVs (and with them its textures) do not
    carry over; the material is made again on the new surface instead, with the same kind,
    seed and options, and the report says so (``material``).
    """
    params = check_params(kind, params)
    try:
        operation = _OPERATIONS[kind]
    except KeyError:
        raise InvalidInput(f"{kind!r} does not make a mesh") from None
    worn = check_params(MESH_MATERIAL, material) \
        if material is not None and kind != MESH_MATERIAL else None
    mesh = load_mesh(data, file_type=file_type)
    made, report = operation(mesh, params)
    if len(made.faces) == 0:
        raise InvalidInput(f"{kind}: nothing of the mesh was left to keep")
    if worn is not None:
        made, report["material"] = _material(made, worn)
    report["faces"] = len(made.faces)
    return cast(bytes, made.export(file_type="glb")), report


def _repair(mesh: trimesh.Trimesh, params: dict[str, Any]) -> tuple[trimesh.Trimesh,
                                                                        dict[str, Any]]:
    repaired, report = repair(mesh, debris_fraction=params["debris_fraction"],
                              merge_tolerance=params["merge_tolerance"],
                              time_limit=time_budget(len(mesh.faces)))
    return repaired, report.to_dict()


def _style(mesh: trimesh.Trimesh, params: dict[str, Any]) -> tuple[trimesh.Trimesh,
                                                                       dict[str, Any]]:
    options = _options(params, "style")
    styled = apply_style(mesh, params["style"], options)
    return styled, {"style": params["style"], "options": options,
                    "faces_before": len(mesh.faces), "closed": is_closed(welded(styled))}


def _options(params: dict[str, Any], *named: str) -> dict[str, Any]:
    """The operation's own options: the canonical parameters without the common ones."""
    return {k: v for k, v in params.items() if k not in {"object_id", *named}}


def _material(mesh: trimesh.Trimesh, params: dict[str, Any]) -> tuple[trimesh.Trimesh,
                                                                          dict[str, Any]]:
    options = _options(params, "material", "seed")
    textured = apply_material(mesh, params["material"], options, seed=params["seed"])
    return textured, {"material": params["material"], "seed": params["seed"],
                      "options": options}


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


_OPERATIONS: dict[str, Callable[[trimesh.Trimesh, dict[str, Any]],
                                tuple[trimesh.Trimesh, dict[str, Any]]]] = {
    MESH_REPAIR: _repair,
    MESH_STYLE: _style,
    MESH_MATERIAL: _material,
    MESH_OPTIMISE: _optimise,
}
