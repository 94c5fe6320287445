"""Make a mesh print better: turn it, scale it, thicken its thin walls, hollow it for resin.

:func:`optimise_for_print` is a pure function over a copy of the mesh: it analyses the mesh
(:func:`workers.mesh.printability.analyse_printability`), applies the steps it is asked for in a
fixed order, analyses the result and returns both reports with the list of changes it made.
The order matters: the orientation decides which way the part has to fit, the scale changes
the wall thickness, and hollowing needs the final walls. The result keeps the caller's units;
its positions are welded, so its faces are those of the input in the same order unless it
was hollowed.

Reorient
    The best of :func:`workers.mesh.printability.rank_orientations` (a Tweaker-style search
    over the part's large flat areas and the axis directions) is turned to face up, and a
    quarter turn about z is added when only that fits the footprint on the plate. The part is
    then placed on the plate: lowest point at z = 0, bounding box centred on x = y = 0. It is
    only turned when that lowers the cost by more than 0.5 % of its area, so a part that
    already stands well keeps its orientation.
Scale to fit
    A uniform scale about the bottom centre so that the part fits the build volume with
    :data:`~workers.mesh.printability.SCALE_MARGIN_MM` free on every side; only when it does not
    fit as it stands, and never larger.
Thicken
    The vertices of faces thinner than the profile's ``min_wall_mm`` move outwards along the
    angle-weighted normal of their thin faces by half the missing thickness, since both sides
    of a wall move; the move is lengthened where a vertex sits on an edge or corner so that
    every thin face's plane moves by at least that much, and thick faces next to a thin wall
    only stretch along their own planes. Only positions change, so a closed mesh stays
    closed. Up to three rounds, each re-measured. It is skipped, with the reason, on a mesh
    that is not a closed outward solid (outwards is unknown), when a wall would have to grow
    by more than a tenth of the part's size (scale it instead), and when it made no wall
    thicker (walls that meet across a thin gap).
Hollow (resin only)
    An inner shell is the mesh offset inwards by the wall thickness along the same corrected
    normals, and is subtracted with manifold3d. Normal offsetting is exact on convex, smooth
    and box-like parts but folds over in narrow concave places, so the result is checked: the
    inner shell must not cross itself and the difference must have exactly the outer volume
    minus the inner one; a part narrower than two walls over more than 2 % of its surface is
    refused before trying. If a check fails hollowing is skipped, with the reason among the
    changes. Drain holes (3 mm cylinders) are cut up through the floor into the cavity at
    its lowest, mutually distant points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import manifold3d
import numpy as np
import trimesh
from numpy.typing import NDArray

from core.errors import InvalidInput
from workers.mesh.crossings import nudged
from workers.mesh.printability import (
    SCALE_MARGIN_MM,
    PrintFrame,
    analyse_printability,
    print_frame,
    rank_orientations,
    scale_to_fit_factor,
    wall_thickness,
)
from workers.mesh.printer import PrinterProfile, mm_per_unit
from workers.mesh.winding import winding_solid

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

DRAIN_HOLE_DIAMETER_MM: Final = 3.0
"""A hole resin drains through in reasonable time (resin guides ask for 2.5 to 3.5 mm)."""

_THICKEN_ROUNDS: Final = 3
_MAX_STRETCH: Final = 3.0
"""Longest move along a vertex normal, in multiples of the wanted face offset: caps the
lengthening at sharp edges (a 90° corner needs √3, a 140° edge 2.9)."""

_MAX_GROWTH: Final = 0.1
"""Largest wall growth :func:`_thicken` makes, as a fraction of the bounding-box diagonal."""

_TURN_GAIN: Final = 0.005
_MAX_DRAIN_HOLES: Final = 8
_NARROW_FRACTION: Final = 0.02

_HOLLOW_CELLS: Final = (48, 128)
"""Fewest and most level-set cells along the part's longest side when hollowing; between
them, three cells a wall, so that the cavity is placed to a fraction of the wall."""

_CAVITY_SPILL: Final = 1e-4
"""Share of the part's volume the cavity may stick out of it by (grid rounding) before the
hollowing is refused as breaking through the walls."""


@dataclass(frozen=True)
class Optimised:
    """The result of :func:`optimise_for_print`.

    Attributes
    ----------
    mesh
        The optimised mesh, ``vertices : (n, 3)`` in the caller's units, ``faces : (m, 3)``.
    changes
        What was done, in order, each ``{"change": name, "detail": {...}}``; a step that was
        asked for but not done says why (``"detail": {"skipped": reason}``).
    score_before, score_after
        The printability score of the input and of the result.
    report_before, report_after
        The full printability reports.
    """

    mesh: trimesh.Trimesh
    changes: list[dict[str, Any]]
    score_before: float
    score_after: float
    report_before: dict[str, Any]
    report_after: dict[str, Any]


def optimise_for_print(
    mesh: trimesh.Trimesh,
    profile: PrinterProfile,
    *,
    units: str = "mm",
    reorient: bool = True,
    thicken: bool = False,
    scale_to_fit: bool = False,
    hollow: float | None = None,
    drain_holes: int = 2,
) -> Optimised:
    """Apply the requested print optimisations to a copy of ``mesh`` (module docstring).

    Parameters
    ----------
    mesh
        ``vertices : (n, 3) float``, ``faces : (m, 3) int`` in ``units``, standing with +z up.
    profile
        The printer and material.
    units
        Unit of the coordinates; the result is in the same unit.
    reorient, thicken, scale_to_fit
        Which steps to run.
    hollow
        Wall thickness in mm to hollow a resin part to, or ``None`` to keep it solid.
    drain_holes
        How many drain holes to cut when hollowing, 0 to 8.

    Raises
    ------
    InvalidInput
        Bad units, a mesh without faces, a hollowing wall that is not a positive number,
        hollowing for an FDM profile, or a drain hole count out of range.
    """
    scale = mm_per_unit(units)
    _check_hollow(profile, hollow, drain_holes)
    before = analyse_printability(mesh, profile, units=units)
    work = _bare(print_frame(mesh, units=units).mesh)
    changes: list[dict[str, Any]] = []
    if reorient:
        work = _reorient(work, profile, changes)
    if scale_to_fit:
        work = _scale_to_fit(work, profile, changes)
    if thicken:
        work = _thicken(work, profile.min_wall_mm, changes)
    if hollow is not None:
        work = _hollow(work, profile, hollow, drain_holes, changes)
    result = _bare(work, vertices=work.vertices / scale)
    after = analyse_printability(result, profile, units=units)
    return Optimised(
        mesh=result,
        changes=changes,
        score_before=before.report["score"],
        score_after=after.report["score"],
        report_before=before.report,
        report_after=after.report,
    )


def _check_hollow(profile: PrinterProfile, hollow: float | None, drain_holes: int) -> None:
    if hollow is None:
        return
    if isinstance(hollow, bool) or not isinstance(hollow, int | float) or not math.isfinite(hollow):
        raise InvalidInput(f"hollow must be a wall thickness in mm, got {hollow!r}")
    if hollow <= 0:
        raise InvalidInput(f"hollow must be a positive wall thickness in mm, got {hollow!r}")
    if profile.technology != "resin":
        raise InvalidInput(
            "hollowing is for resin printers; an FDM part is already hollow (set its infill)"
        )
    if isinstance(drain_holes, bool) or not isinstance(drain_holes, int):
        raise InvalidInput(f"drain_holes must be a whole number, got {drain_holes!r}")
    if not 0 <= drain_holes <= _MAX_DRAIN_HOLES:
        raise InvalidInput(f"drain_holes must lie in [0, {_MAX_DRAIN_HOLES}], got {drain_holes}")


# --------------------------------------------------------------------------- reorient


def _reorient(
    mesh: trimesh.Trimesh, profile: PrinterProfile, changes: list[dict[str, Any]]
) -> trimesh.Trimesh:
    frame = _frame(mesh)
    ranked = rank_orientations(frame, profile)
    current = next(o for o in ranked if o.up == (0.0, 0.0, 1.0))
    best = ranked[0]
    if best.cost >= current.cost - _TURN_GAIN * float(frame.areas.sum()):
        best = current
    rotation = trimesh.geometry.align_vectors(np.asarray(best.up), [0.0, 0.0, 1.0])[:3, :3]
    vertices = mesh.vertices @ rotation.T
    build = profile.build_volume_mm
    extents = np.ptp(vertices, axis=0)
    if (extents[0] > build[0] or extents[1] > build[1]) and (
        extents[1] <= build[0] and extents[0] <= build[1]
    ):
        quarter = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        vertices, rotation = vertices @ quarter.T, quarter @ rotation
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    shift = -np.array([(low[0] + high[0]) / 2, (low[1] + high[1]) / 2, low[2]])
    changes.append(
        {
            "change": "reorient",
            "detail": {
                "turned": best is not current,
                "up": list(best.up),
                "rotation": rotation.tolist(),
                "translation": shift.tolist(),
                "overhang_mm2": {"before": current.overhang_area, "after": best.overhang_area},
                "support_mm3": {"before": current.support_volume, "after": best.support_volume},
            },
        }
    )
    return _bare(mesh, vertices=vertices + shift)


# --------------------------------------------------------------------------- scale


def _scale_to_fit(
    mesh: trimesh.Trimesh, profile: PrinterProfile, changes: list[dict[str, Any]]
) -> trimesh.Trimesh:
    extents = np.ptp(mesh.vertices, axis=0)
    build = np.asarray(profile.build_volume_mm)
    if bool((extents <= build).all()):
        changes.append({"change": "scale", "detail": {"skipped": "it fits the build volume"}})
        return mesh
    factor = scale_to_fit_factor(extents, profile.build_volume_mm)
    low, high = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    anchor = np.array([(low[0] + high[0]) / 2, (low[1] + high[1]) / 2, low[2]])
    vertices = anchor + (mesh.vertices - anchor) * factor
    detail = {
        "factor": factor,
        "margin_mm": SCALE_MARGIN_MM,
        "extents_mm": {"before": extents.tolist(), "after": (extents * factor).tolist()},
    }
    changes.append({"change": "scale", "detail": detail})
    return _bare(mesh, vertices=vertices)


# --------------------------------------------------------------------------- thicken


def _thicken(
    mesh: trimesh.Trimesh, target: float, changes: list[dict[str, Any]]
) -> trimesh.Trimesh:
    frame = _frame(mesh)
    thickness, _ = wall_thickness(frame)
    first = _wall_figures(frame, thickness, target)
    refusal = _thickening_refusal(frame, first, target)
    if refusal:
        changes.append({"change": "thicken", "detail": {"skipped": refusal}})
        return mesh
    moved = np.zeros(len(frame.mesh.vertices), dtype=bool)
    for _ in range(_THICKEN_ROUNDS):
        thin = np.flatnonzero(thickness < target)
        if len(thin) == 0:
            break
        step = _thickening_step(frame, thickness, thin, target)
        moved |= np.any(step != 0, axis=1)
        frame = _frame(_bare(frame.mesh, vertices=frame.mesh.vertices + step), weld=False)
        thickness, _ = wall_thickness(frame)
    last = _wall_figures(frame, thickness, target)
    if last["thin_area"] >= first["thin_area"]:
        reason = "growing the walls along their normals made no wall thicker (walls meet)"
        changes.append({"change": "thicken", "detail": {"skipped": reason}})
        return mesh
    detail = {
        "target_mm": target,
        "vertices_moved": int(moved.sum()),
        "min_wall_mm": {"before": first["min_mm"], "after": last["min_mm"]},
        "thin_faces": {"before": first["thin_faces"], "after": last["thin_faces"]},
        "thin_area_mm2": {"before": first["thin_area"], "after": last["thin_area"]},
        "watertight": frame.watertight,
    }
    changes.append({"change": "thicken", "detail": detail})
    return _bare(frame.mesh)


def _thickening_refusal(frame: PrintFrame, figures: dict[str, Any], target: float) -> str:
    """Say why the walls should not be grown, or ``""``.

    Growing a wall by more than a tenth of the part's size no longer thickens a detail, it
    inflates the whole part into a blob; scaling it up is the honest fix.
    """
    if not frame.sound:
        return "the mesh is not a closed, outward-facing solid, so outwards is unknown; repair it"
    if figures["thin_faces"] == 0:
        return "no wall is thinner than the target"
    growth = 0.5 * (target - figures["min_mm"])
    if growth > _MAX_GROWTH * frame.diagonal:
        return (
            f"walls would grow by {growth:.3g} mm on a part {frame.diagonal:.3g} mm across; "
            "scale it up instead"
        )
    return ""


def _thickening_step(frame: PrintFrame, thickness: Floats, thin: Ints, target: float) -> Floats:
    """``(n, 3)`` vertex moves that grow each thin face's wall by half its deficit."""
    # aim a hair past the target, so a wall that reaches it is not measured a rounding short
    deficit = 0.5 * (target * 1.001 - thickness[thin])
    offsets = np.zeros(len(frame.mesh.vertices))
    np.maximum.at(offsets, frame.mesh.faces[thin].ravel(), np.repeat(deficit, 3))
    step: Floats = _offset_directions(frame, thin) * offsets[:, None]
    return step


def _wall_figures(frame: PrintFrame, thickness: Floats, target: float) -> dict[str, Any]:
    known = np.isfinite(thickness)
    thin = thickness < target
    return {
        "min_mm": float(thickness[known].min()) if known.any() else None,
        "thin_faces": int(thin.sum()),
        "thin_area": float(frame.areas[thin].sum()),
    }


def _offset_directions(frame: PrintFrame, faces: Ints) -> Floats:
    """Per vertex, the outward move that shifts each of the given ``faces`` by at least 1.

    The direction is the angle-weighted normal of the given faces at the vertex; its length
    is ``1 / min(n_v · n_f)`` over those faces (capped at :data:`_MAX_STRETCH`), so that a box
    corner moves by (1, 1, 1) and its three faces by 1. Only the given faces steer: a corner
    where a thin wall meets thick ones moves straight out of the thin wall, along the thick
    walls' planes, which stay flat. Vertices of no given face get a zero vector.
    """
    mesh = frame.mesh
    corners = mesh.faces[faces]
    angles = trimesh.triangles.angles(mesh.triangles[faces])
    normals = np.zeros((len(mesh.vertices), 3))
    for k in range(3):
        np.add.at(normals, corners[:, k], frame.normals[faces] * angles[:, k, None])
    length = np.linalg.norm(normals, axis=1)
    normals = np.divide(
        normals, length[:, None], out=np.zeros_like(normals), where=length[:, None] > 0
    )
    lowest = np.full(len(mesh.vertices), np.inf)
    for k in range(3):
        cosine = np.einsum("ij,ij->i", normals[corners[:, k]], frame.normals[faces])
        np.minimum.at(lowest, corners[:, k], cosine)
    stretch = np.where(np.isfinite(lowest), 1.0 / np.clip(lowest, 1.0 / _MAX_STRETCH, 1.0), 0.0)
    result: Floats = normals * stretch[:, None]
    return result


# --------------------------------------------------------------------------- hollow


def _hollow(
    mesh: trimesh.Trimesh,
    profile: PrinterProfile,
    wall: float,
    holes: int,
    changes: list[dict[str, Any]],
) -> trimesh.Trimesh:
    try:
        solid, hollowed, placed = _carve(mesh, wall, holes)
    except _HollowRefused as refusal:
        changes.append({"change": "hollow", "detail": {"skipped": str(refusal)}})
        return mesh
    density = profile.density_g_cm3
    detail: dict[str, Any] = {
        "wall_mm": wall,
        "volume_mm3": {"before": solid.volume(), "after": hollowed.volume()},
        "weight_g": {
            "before": solid.volume() / 1000 * density,
            "after": hollowed.volume() / 1000 * density,
        },
        "drain_holes": [{"x": x, "y": y, "z": bottom} for x, y, bottom, _ in placed],
        "drain_hole_diameter_mm": DRAIN_HOLE_DIAMETER_MM,
        "genus": hollowed.genus(),
    }
    if len(placed) < holes:
        detail["note"] = f"room for {len(placed)} of {holes} drain holes in the cavity floor"
    changes.append({"change": "hollow", "detail": detail})
    made = _from_manifold(hollowed)
    parted = nudged(made)  # the cavity's level-set slivers touch to within rounding
    return made if parted is None else _bare(parted)


def _carve(
    mesh: trimesh.Trimesh, wall: float, holes: int
) -> tuple[manifold3d.Manifold, manifold3d.Manifold, list[tuple[float, float, float, float]]]:
    """Subtract the cavity and drill the drain holes: ``(solid, hollowed, holes)``.

    The cavity is the part's solid moved inwards by ``wall`` as a signed distance offset
    (the level set of the distance to the surface at ``wall``, by manifold3d, see
    :func:`workers.mesh.winding.winding_solid`): every point of it lies at least a wall from
    the surface, and in a concave corner it rounds off instead of folding over itself as
    moving each vertex along its normal did.

    Raises
    ------
    _HollowRefused
        With the reason the part cannot be hollowed this way.
    """
    frame = _frame(mesh)
    if not frame.sound:
        raise _HollowRefused("the mesh is not a closed, outward-facing solid; repair it first")
    outer = _bare(frame.mesh)
    solid = _to_manifold(outer)
    cells = int(np.clip(np.ceil(float(outer.extents.max()) / (wall / 3)), *_HOLLOW_CELLS))
    cavity = winding_solid(outer, level=wall, cells=cells)
    if cavity.is_empty() or cavity.volume() <= 0:
        _check_room_for_walls(frame, wall)
        raise _HollowRefused(f"a {wall:g} mm wall leaves no cavity inside the part")
    inner = _from_manifold(cavity)
    hollowed = solid - cavity
    expected = solid.volume() - cavity.volume()
    if abs(hollowed.volume() - expected) > _CAVITY_SPILL * solid.volume():
        raise _HollowRefused(
            f"the inner shell of a {wall:g} mm wall leaves the part: walls would break through"
        )
    placed = _drain_holes(outer, inner, holes, wall)
    radius = DRAIN_HOLE_DIAMETER_MM / 2
    for x, y, bottom, top in placed:
        drill = manifold3d.Manifold.cylinder(top - bottom, radius, radius, 24)
        hollowed = hollowed - drill.translate((x, y, bottom))
    return solid, hollowed, placed


class _HollowRefused(Exception):
    """Hollowing is not possible for the reason given; the part is left solid, not an error."""


def _check_room_for_walls(frame: PrintFrame, wall: float) -> None:
    """Refuse a part narrower than two walls over more than a trace of its surface.

    Called when the offset left no cavity, to say why: the part is too thin for two walls
    (narrow places of a part that has room elsewhere simply stay solid).
    """
    thickness, _ = wall_thickness(frame)
    narrow = thickness <= 2 * wall
    fraction = float(frame.areas[narrow].sum()) / max(float(frame.areas.sum()), 1e-300)
    if fraction > _NARROW_FRACTION:
        raise _HollowRefused(
            f"{100 * fraction:.0f} % of the surface is on parts narrower than two {wall:g} mm "
            "walls; there is no room for a cavity"
        )


def _drain_holes(
    outer: trimesh.Trimesh, inner: trimesh.Trimesh, count: int, wall: float
) -> list[tuple[float, float, float, float]]:
    """Where to drill: ``(x, y, z from, z to)`` per hole, up through the floor into the cavity.

    Candidates are centroids of the cavity's downward faces in its lowest quarter; holes are
    picked farthest-first from the lowest one, each only where the whole hole's footprint lies
    over the cavity floor (five upward rays hit the inner shell).
    """
    if count == 0:
        return []
    normals, centres = inner.face_normals, inner.triangles_center
    low, high = inner.bounds[:, 2]
    floor = np.flatnonzero((normals[:, 2] < -0.7) & (centres[:, 2] <= low + 0.25 * (high - low)))
    radius = DRAIN_HOLE_DIAMETER_MM / 2
    spots: list[tuple[float, float, float, float]] = []
    chosen: list[Floats] = []
    order = floor[np.argsort(centres[floor, 2])]
    while len(spots) < count and len(order):
        if chosen:
            distance = np.min(
                [np.linalg.norm(centres[order, :2] - c[:2], axis=1) for c in chosen], axis=0
            )
            pick = order[int(np.argmax(distance))]
            if float(distance.max()) < DRAIN_HOLE_DIAMETER_MM * 2:
                break
        else:
            pick = order[0]
        order = order[order != pick]
        spot = _drill_span(outer, inner, centres[pick, :2], radius, wall)
        if spot is not None:
            spots.append(spot)
            chosen.append(centres[pick])
    return spots


def _drill_span(
    outer: trimesh.Trimesh, inner: trimesh.Trimesh, xy: Floats, radius: float, wall: float
) -> tuple[float, float, float, float] | None:
    ring = np.array([[0, 0], [radius, 0], [-radius, 0], [0, radius], [0, -radius]])
    below = outer.bounds[0, 2] - 1.0
    origins = np.column_stack([xy + ring, np.full(len(ring), below)])
    up = np.tile([0.0, 0.0, 1.0], (len(ring), 1))
    floor = _first_hit_heights(inner, origins, up)
    base = _first_hit_heights(outer, origins[:1], up[:1])
    if np.isnan(floor).any() or np.isnan(base).any():
        return None
    top = float(floor.max()) + min(wall, 1.0)
    return float(xy[0]), float(xy[1]), float(base[0]) - 1.0, top


def _first_hit_heights(mesh: trimesh.Trimesh, origins: Floats, directions: Floats) -> Floats:
    heights = np.full(len(origins), np.nan)
    locations, rays, _ = mesh.ray.intersects_location(origins, directions, multiple_hits=False)
    heights[rays] = locations[:, 2]
    return heights


# --------------------------------------------------------------------------- helpers


def _frame(mesh: trimesh.Trimesh, *, weld: bool = True) -> PrintFrame:
    return print_frame(mesh, units="mm", up=(0.0, 0.0, 1.0), weld=weld)


def _bare(
    mesh: trimesh.Trimesh, *, vertices: Floats | None = None, faces: Ints | None = None
) -> trimesh.Trimesh:
    """A positions-and-faces copy of ``mesh``, optionally with new positions or faces."""
    return trimesh.Trimesh(
        vertices=np.array(mesh.vertices if vertices is None else vertices, dtype=np.float64),
        faces=np.array(mesh.faces if faces is None else faces, dtype=np.int64),
        process=False,
    )


def _to_manifold(mesh: trimesh.Trimesh) -> manifold3d.Manifold:
    solid = manifold3d.Manifold(
        manifold3d.Mesh64(
            vert_properties=np.ascontiguousarray(mesh.vertices, dtype=np.float64),
            tri_verts=np.ascontiguousarray(mesh.faces, dtype=np.uint64),
        )
    )
    if solid.status() != manifold3d.Error.NoError:
        raise _HollowRefused(f"manifold3d refused the shell: {solid.status().name}")
    return solid


def _from_manifold(solid: manifold3d.Manifold) -> trimesh.Trimesh:
    mesh = solid.to_mesh64()
    vertices = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
    faces = np.asarray(mesh.tri_verts, dtype=np.int64)
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
