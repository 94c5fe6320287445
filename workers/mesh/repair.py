"""One-click repair of a triangle mesh for 3D printing, and the checks that judge the result.

:func:`repair` is a pure function ``f(mesh, **options) -> (mesh, report)``: it copies the
positions and faces it is given and never touches the caller's mesh. The output is geometry
only (positions and faces); colours, normals and texture coordinates do not survive a repair,
because hole fills and boolean unions create faces they cannot be interpolated onto.

The pipeline, and which library does each step:

1. weld near-duplicate vertices, drop degenerate and duplicate faces (trimesh);
2. split into bodies (faces joined through shared vertices) and drop *debris*: bodies both
   tiny in area and in extent relative to the whole mesh (``debris_fraction``). A mesh that
   is already printable and lost nothing here is returned as this cleaned copy;
3. per body: a closed, consistently wound, manifold body free of self-intersections is kept
   as it is (its orientation is decided in step 4). A closed body whose faces cross first has
   its needle triangles collapsed (manifold3d ``simplify(0)``). Any other body goes through
   MeshFix (pymeshfix: hole filling, non-manifold cutting, degeneracy and self-intersection
   removal) on unit-scaled coordinates. MeshFix is given one body at a time, so its habit of
   keeping only the largest component cannot lose the other bodies. A closed body MeshFix
   would shrink or grow by more than 1 % is kept as it came, crossings and all. A small or
   flat open body MeshFix cannot close (a stray triangle, a sheet) is sealed with its convex
   hull (manifold3d), thickened when flat; a large one is left out. The report counts both;
4. the bodies are combined with manifold3d booleans: solids are unioned, which removes the
   intersections between overlapping bodies, and a closed body wound inwards that sits inside
   another is kept as a cavity (subtracted) rather than flipped into a solid. manifold3d's
   output is an oriented 2-manifold by construction; needle triangles it leaves where
   bodies met are collapsed when they make faces cross.

"Free of self-intersections" is checked with MeshFix's triangle-triangle intersection test
(``PyTMesh.select_intersecting_triangles(justproper=True)``): two faces intersect *properly*
when their interiors cross, as opposed to touching along the edges and corners they share.
It reports faces rather than face pairs, so the report counts faces; only the count is used
(the indices it returns were seen out of range). The grid of that test is tuned, see
``_CELL_TRIANGLES``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import manifold3d
import numpy as np
import pymeshfix
import trimesh
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse import csgraph

Faces = NDArray[np.int64]
Points = NDArray[np.float64]

_FLAT_VOLUME_FRACTION: Final = 1e-9
"""A body whose volume is below this fraction of its bounding-box diagonal cubed is flat: it
encloses nothing a printer could fill."""

_SHEET_THICKNESS_FRACTION: Final = 0.01
"""Thickness given to a flat sheet, as a fraction of the whole mesh's bounding-box diagonal.
A sheet has no thickness of its own; 1 % keeps it printable without swamping its neighbours."""

_VOLUME_DRIFT: Final = 0.01
"""Largest relative volume change accepted from MeshFix on a body that was already closed.
MeshFix removes crossing faces by deleting them and filling the holes left; on some closed
parts (interpenetrating screw holes) that deletes most of the part. Keeping the closed part,
crossings and all, is then the lesser harm."""

_CELL_TRIANGLES: Final = 200
"""Triangles per cell of MeshFix's intersection grid. Its default (50) makes the grid subdivide
without end around vertices with many faces (fans of a cylinder cap, apexes), which cost
seconds on a few thousand faces; 200 was the fastest setting over the test corpus."""

_FLAT_SPREAD: Final = 1e-6
"""Points whose thinnest principal spread is below this fraction of their widest are flat."""

_HULL_MAX_FACES: Final = 64
"""Largest open, non-flat body MeshFix cannot close that is still sealed by its hull."""

_PRESENCE_SAMPLES: Final = 16
"""Vertices of an input body probed to decide whether a repaired mesh still holds it."""

_PRESENCE_TOLERANCE: Final = 0.01
"""How far (fraction of the whole mesh's diagonal) a probe may lie from the repaired surface."""


# --------------------------------------------------------------------------- quality


@dataclass(frozen=True)
class MeshQuality:
    """What a printer cares about in one mesh, measured on its positions welded.

    Attributes
    ----------
    faces
        Number of faces.
    watertight
        Every edge is shared by exactly two faces.
    winding_consistent
        Every shared edge is traversed in opposite directions by its two faces.
    boundary_edges
        Edges used by one face only (the rims of holes).
    non_manifold_edges
        Edges used by three faces or more.
    non_manifold_vertices
        Vertices whose faces do not form a single fan (bodies pinched at a corner, or faces
        dangling off a non-manifold edge).
    self_intersecting_faces
        Faces whose interior crosses another face (MeshFix's test, see the module docstring).
    volume
        Signed enclosed volume when watertight and consistently wound, else ``None``.
    bodies
        Connected bodies (faces joined by shared edges).
    """

    faces: int
    watertight: bool
    winding_consistent: bool
    boundary_edges: int
    non_manifold_edges: int
    non_manifold_vertices: int
    self_intersecting_faces: int
    volume: float | None
    bodies: int

    @property
    def manifold(self) -> bool:
        """Edge- and vertex-manifold: no edge with three faces, no pinched vertex."""
        return self.non_manifold_edges == 0 and self.non_manifold_vertices == 0

    @property
    def printable(self) -> bool:
        """Closed, manifold, outward and free of self-intersections: ready to slice."""
        return (
            self.faces > 0
            and self.watertight
            and self.manifold
            and self.winding_consistent
            and self.volume is not None
            and self.volume > 0
            and self.self_intersecting_faces == 0
        )

    @property
    def score(self) -> int:
        """Quality score from 0 to 100: the sum of the weights of the properties that hold.

        ``25 * closed + 15 * edge_manifold + 15 * vertex_manifold
        + 20 * (winding consistent and volume > 0) + 25 * no_self_intersections``,
        where *closed* means no boundary edge. An empty mesh scores 0. The weights follow
        what stops a slicer: holes and crossing faces make it guess what is inside.
        """
        if self.faces == 0:
            return 0
        oriented = self.winding_consistent and self.volume is not None and self.volume > 0
        return (
            25 * (self.boundary_edges == 0)
            + 15 * (self.non_manifold_edges == 0)
            + 15 * (self.non_manifold_vertices == 0)
            + 20 * oriented
            + 25 * (self.self_intersecting_faces == 0)
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the figures, ``manifold``, ``printable`` and ``score`` as plain values."""
        return asdict(self) | {
            "manifold": self.manifold,
            "printable": self.printable,
            "score": self.score,
        }


def assess(mesh: trimesh.Trimesh) -> MeshQuality:
    """Measure the printing quality of ``mesh`` without changing it.

    Positions are welded first (on a bare copy), as :func:`workers.mesh.analysis.basic_stats`
    does: a glTF box stored as six separate quads is one closed solid to a printer.

    Parameters
    ----------
    mesh
        ``vertices : (n, 3) float`` and ``faces : (m, 3) int``.
    """
    solid = _bare(mesh.vertices, mesh.faces)
    solid.merge_vertices(merge_tex=True, merge_norm=True)
    counts = _edge_face_counts(solid.faces)
    watertight = bool(len(counts)) and bool((counts == 2).all())
    consistent = bool(solid.is_winding_consistent) if len(solid.faces) else False
    return MeshQuality(
        faces=len(solid.faces),
        watertight=watertight,
        winding_consistent=consistent,
        boundary_edges=int((counts == 1).sum()),
        non_manifold_edges=int((counts > 2).sum()),
        non_manifold_vertices=_non_manifold_vertex_count(solid),
        self_intersecting_faces=count_self_intersecting_faces(solid.vertices, solid.faces),
        volume=float(solid.volume) if watertight and consistent else None,
        bodies=len(_bodies(solid)),
    )


def count_self_intersecting_faces(vertices: Points, faces: Faces) -> int:
    """Count the faces whose interior crosses another face, with MeshFix's exact-ish test.

    Parameters
    ----------
    vertices
        ``(n, 3) float`` positions.
    faces
        ``(m, 3) int`` indices into ``vertices``.
    """
    if len(faces) == 0:
        return 0
    tmesh, _ = _meshfix_mesh(vertices, faces)
    crossing = tmesh.select_intersecting_triangles(tris_per_cell=_CELL_TRIANGLES, justproper=True)
    return len(crossing)


def count_lost_bodies(
    original: trimesh.Trimesh, repaired: trimesh.Trimesh, *, debris_fraction: float = 1e-4
) -> int:
    """Count the real bodies of ``original`` of which ``repaired`` holds no trace.

    A body is *held* when one of a few of its vertices lies on the repaired surface (within
    1 % of the whole mesh's diagonal) or inside the repaired solid: a body swallowed by a
    union with a larger one is held, a body a repair dropped is not. Debris (see
    :func:`repair`) is not counted.

    Parameters
    ----------
    original
        The mesh before repair, ``vertices : (n, 3)``, ``faces : (m, 3)``.
    repaired
        The mesh after repair.
    debris_fraction
        The threshold the repair was given.
    """
    cleaned, _ = _cleaned(original, None)
    bodies = [b for b in _bodies(cleaned) if not _is_debris(b, cleaned, debris_fraction)]
    if not bodies:
        return 0
    if len(repaired.faces) == 0:
        return len(bodies)
    reach = _PRESENCE_TOLERANCE * _diagonal(cleaned)
    return sum(not _holds(repaired, body, reach) for body in bodies)


def _holds(repaired: trimesh.Trimesh, body: trimesh.Trimesh, reach: float) -> bool:
    """Say whether sampled vertices of ``body`` lie on or inside ``repaired``."""
    pick = np.linspace(0, len(body.vertices) - 1, _PRESENCE_SAMPLES).astype(np.int64)
    probes = body.vertices[np.unique(pick)]
    _, distance, _ = trimesh.proximity.closest_point(repaired, probes)
    if bool((distance <= reach).any()):
        return True
    return bool(repaired.is_watertight) and bool(repaired.contains(probes).any())


# --------------------------------------------------------------------------- the report


@dataclass
class RepairReport:
    """What :func:`repair` found and changed, with the quality before and after.

    Counts are per kind of defect; the ``*_resolved`` and ``*_removed`` counts of defects that
    the repair does not fix one by one (non-manifold edges and vertices, self-intersections,
    in faces) are the drop between the ``before`` and ``after`` measurements.
    ``bodies_kept`` counts the output's bodies (overlapping inputs merge into one);
    ``bodies_sealed_by_hull`` and ``bodies_unrepaired`` count open bodies MeshFix could not
    close, sealed by their hull or left out; ``winding_flipped`` counts faces turned to point
    outwards; ``notes`` says in words what was done to which body when it was not routine.
    """

    duplicate_vertices_merged: int = 0
    degenerate_faces_removed: int = 0
    duplicate_faces_removed: int = 0
    holes_filled: int = 0
    non_manifold_edges_resolved: int = 0
    non_manifold_vertices_resolved: int = 0
    self_intersections_removed: int = 0
    bodies_kept: int = 0
    debris_bodies_dropped: int = 0
    bodies_sealed_by_hull: int = 0
    bodies_unrepaired: int = 0
    winding_flipped: int = 0
    before: MeshQuality | None = None
    after: MeshQuality | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready plain values (``before``/``after`` as dicts)."""
        plain = {k: v for k, v in asdict(self).items() if k not in ("before", "after")}
        plain["before"] = self.before.to_dict() if self.before else None
        plain["after"] = self.after.to_dict() if self.after else None
        return plain


# --------------------------------------------------------------------------- repair


def repair(
    mesh: trimesh.Trimesh,
    *,
    debris_fraction: float = 1e-4,
    merge_tolerance: float | None = None,
) -> tuple[trimesh.Trimesh, RepairReport]:
    """Make ``mesh`` printable: closed, manifold, outward and free of self-intersections.

    Every real body is kept; only debris is dropped. See the module docstring for the steps
    and the libraries behind them.

    Parameters
    ----------
    mesh
        ``vertices : (n, 3) float`` and ``faces : (m, 3) int``; not modified.
    debris_fraction
        A body is debris, and dropped, when its area is below ``debris_fraction`` times the
        whole mesh's area *and* its bounding-box diagonal is below ``sqrt(debris_fraction)``
        times the whole mesh's diagonal: both tiny and small, so that a thin real part is
        not mistaken for dust. Must lie in ``[0, 1)``.
    merge_tolerance
        Vertices closer than this (in mesh units) are welded; ``None`` uses trimesh's
        ``tol.merge`` (1e-8). Welding rounds positions to a grid of this step.

    Returns
    -------
    repaired
        ``vertices : (p, 3) float64``, ``faces : (q, 3) int64``; empty only when every body
        was debris.
    report
        A :class:`RepairReport`.

    Raises
    ------
    ValueError
        ``debris_fraction`` outside ``[0, 1)`` or ``merge_tolerance`` not positive.
    """
    _check_options(debris_fraction, merge_tolerance)
    before = assess(mesh)
    report = RepairReport(before=before)
    cleaned, counts = _cleaned(mesh, merge_tolerance)
    report.duplicate_vertices_merged, report.degenerate_faces_removed = counts[:2]
    report.duplicate_faces_removed = counts[2]
    bodies = _bodies(cleaned)
    kept = [b for b in bodies if not _is_debris(b, cleaned, debris_fraction)]
    report.debris_bodies_dropped = len(bodies) - len(kept)
    if _already_printable(report, merge_tolerance):
        repaired, after = cleaned, before
    else:
        thickness = _SHEET_THICKNESS_FRACTION * _diagonal(cleaned)
        crossing = before.self_intersecting_faces > 0
        solids = [_solid_body(b, thickness, report, intersections=crossing) for b in kept]
        repaired, after = _resolve_crossings(_combine([s for s in solids if s], report))
    report.bodies_kept = after.bodies
    report.after = after
    _count_resolved(report)
    return repaired, report


def _already_printable(report: RepairReport, merge_tolerance: float | None) -> bool:
    """Say whether the cleaned copy is the answer: the input was printable and lost nothing.

    Such a mesh needs no booleans; skipping them keeps its faces as they were and makes the
    common case (a sound upload) cost two measurements and a weld. ``before`` was measured
    on the positions welded exactly as the cleaned copy is, so it describes that copy too.
    """
    before = report.before
    removed = report.degenerate_faces_removed + report.duplicate_faces_removed
    return (
        before is not None
        and before.printable
        and merge_tolerance is None
        and removed + report.debris_bodies_dropped == 0
    )


def _check_options(debris_fraction: float, merge_tolerance: float | None) -> None:
    """Refuse option values that would make the repair meaningless."""
    if not 0.0 <= debris_fraction < 1.0:
        raise ValueError(f"debris_fraction must lie in [0, 1), got {debris_fraction!r}")
    if merge_tolerance is not None and not merge_tolerance > 0.0:
        raise ValueError(f"merge_tolerance must be positive, got {merge_tolerance!r}")


def _cleaned(
    mesh: trimesh.Trimesh, merge_tolerance: float | None
) -> tuple[trimesh.Trimesh, tuple[int, int, int]]:
    """Return a welded copy without degenerate or duplicate faces, and what was removed.

    Returns
    -------
    cleaned
        A new mesh; unreferenced vertices dropped.
    counts
        ``(vertices merged, degenerate faces removed, duplicate faces removed)``.
    """
    copy = _bare(mesh.vertices, mesh.faces)
    copy.remove_unreferenced_vertices()
    used = len(copy.vertices)
    if merge_tolerance is None:
        copy.merge_vertices(merge_tex=True, merge_norm=True)
    else:
        digits = trimesh.util.decimal_to_digits(merge_tolerance)
        copy.merge_vertices(merge_tex=True, merge_norm=True, digits_vertex=digits)
    merged = used - len(copy.vertices)
    keep = copy.nondegenerate_faces(height=trimesh.tol.merge)
    degenerate = int((~keep).sum())
    copy.update_faces(keep)
    unique = copy.unique_faces()
    duplicates = len(copy.faces) - int(unique.sum())
    copy.update_faces(unique)
    copy.remove_unreferenced_vertices()
    return copy, (merged, degenerate, duplicates)


def _bodies(mesh: trimesh.Trimesh) -> list[trimesh.Trimesh]:
    """Split ``mesh`` into bodies, faces joined through shared vertices, as bare meshes.

    Vertices rather than edges: a surface torn along non-manifold edges, or two lobes
    pinched at a corner, is one damaged body for MeshFix to mend, not many open scraps.
    """
    faces = mesh.faces
    if len(faces) == 0:
        return []
    size = len(mesh.vertices)
    links = faces[:, [0, 1, 1, 2]].reshape(-1, 2)
    graph = sparse.coo_matrix((np.ones(len(links)), (links[:, 0], links[:, 1])), (size, size))
    _, labels = csgraph.connected_components(graph, directed=False)
    face_labels = labels[faces[:, 0]]
    order = np.argsort(face_labels, kind="stable")
    splits = np.flatnonzero(np.diff(face_labels[order])) + 1
    return [_submesh(mesh, group) for group in np.split(order, splits)]


def _submesh(mesh: trimesh.Trimesh, face_index: NDArray[np.int64]) -> trimesh.Trimesh:
    """Return the faces ``face_index`` of ``mesh`` as a bare mesh with compact vertices."""
    faces = mesh.faces[face_index]
    used, inverse = np.unique(faces.ravel(), return_inverse=True)
    return _bare(mesh.vertices[used], inverse.reshape(-1, 3))


def _is_debris(body: trimesh.Trimesh, whole: trimesh.Trimesh, debris_fraction: float) -> bool:
    """Say whether ``body`` is too small in both area and extent to be a real part."""
    tiny = body.area < debris_fraction * whole.area
    small = _diagonal(body) < np.sqrt(debris_fraction) * _diagonal(whole)
    return bool(tiny and small)


def _solid_body(
    body: trimesh.Trimesh, thickness: float, report: RepairReport, *, intersections: bool
) -> trimesh.Trimesh | None:
    """Return ``body`` as a closed manifold free of self-intersections, or ``None``.

    A body that is already sound is returned unchanged, wound as it came (an inward winding
    may mean a cavity; :func:`_combine` decides). Others are repaired with MeshFix. A closed
    body MeshFix cannot mend without losing volume is kept as it came; an open one MeshFix
    cannot close is sealed with its hull.
    """
    if _is_sound(body, intersections=intersections):
        return body
    closed = _is_closed_solid(body)
    if closed:
        collapsed = _collapsed(body)
        if collapsed is not None and _is_sound(collapsed, intersections=True):
            return collapsed
    fixed = _meshfix(body, report)
    if fixed is not None and not (closed and _drifted(body, fixed)):
        return fixed
    if closed:
        report.notes.append(
            f"a closed body of {len(body.faces)} faces kept its crossing faces: "
            "removing them would have changed its volume"
        )
        return body
    hull = _hull(body, thickness) if _hull_is_fair(body) else None
    if hull is None:
        report.bodies_unrepaired += 1
        report.notes.append(f"a body of {len(body.faces)} faces could not be closed; left out")
        return None
    report.bodies_sealed_by_hull += 1
    report.notes.append(
        f"a body of {len(body.faces)} faces could not be closed and was sealed by its hull"
    )
    return hull


def _hull_is_fair(body: trimesh.Trimesh) -> bool:
    """Say whether sealing ``body`` by its hull keeps its shape enough to be worth it.

    A flat sheet or a handful of faces (a stray triangle, a card) has no shape a hull could
    spoil; a large open part (a gear) would lose its teeth, so it is reported instead.
    """
    return len(body.faces) <= _HULL_MAX_FACES or _is_flat_points(body.vertices)


def _is_closed_solid(body: trimesh.Trimesh) -> bool:
    """Closed, consistently wound, manifold and not flat (crossing faces allowed)."""
    closed = body.is_watertight and body.is_winding_consistent
    return bool(closed) and not _non_manifold_vertex_count(body) and not _is_flat(body)


def _drifted(body: trimesh.Trimesh, fixed: trimesh.Trimesh) -> bool:
    """Say whether ``fixed`` lost or gained more than the accepted volume of ``body``."""
    return bool(abs(abs(fixed.volume) - abs(body.volume)) > _VOLUME_DRIFT * abs(body.volume))


def _is_sound(body: trimesh.Trimesh, *, intersections: bool) -> bool:
    """Closed, consistently wound, manifold, with volume, and free of self-intersections.

    ``intersections=False`` skips the (costly) intersection test, for bodies of a mesh that
    was measured free of them as a whole.
    """
    if not (body.is_watertight and body.is_winding_consistent):
        return False
    if _non_manifold_vertex_count(body) or _is_flat(body):
        return False
    return not intersections or count_self_intersecting_faces(body.vertices, body.faces) == 0


def _meshfix(body: trimesh.Trimesh, report: RepairReport) -> trimesh.Trimesh | None:
    """Repair one body with MeshFix; ``None`` when the result is not a sound solid.

    MeshFix first cuts non-manifold edges and vertices on load, then fills every hole and
    removes degenerate and self-intersecting faces. Only when that leaves a body that is
    not sound is it retried keeping MeshFix's largest component (a body can fall apart into
    scraps when its non-manifold parts are cut). When MeshFix's ``clean`` reports that no
    face crosses any more, it is taken at its word to save a second test; the final
    :func:`assess` of the whole output is the check that counts (on cycloidal.ply, a known
    failure, it catches crossings ``clean`` missed).
    """
    for keep_largest in (False, True):
        tmesh, (centre, scale) = _meshfix_mesh(body.vertices, body.faces)
        holes = tmesh.n_boundaries
        tmesh.fill_small_boundaries(0, True)
        if keep_largest:
            tmesh.remove_smallest_components()
        uncrossed = tmesh.clean()
        vertices, faces = tmesh.return_arrays()
        fixed = _bare(centre + scale * vertices, faces)
        if len(fixed.faces) and _is_sound(fixed, intersections=not uncrossed):
            report.holes_filled += holes
            return _outward(fixed, report)
    return None


def _resolve_crossings(solid: trimesh.Trimesh) -> tuple[trimesh.Trimesh, MeshQuality]:
    """Clear the few crossing faces a boolean union can leave where bodies met at a slant.

    manifold3d's output is manifold but only *epsilon*-valid: needle triangles where faces of
    different bodies nearly coincide can cross by rounding. Collapsing them (manifold3d's
    ``simplify`` at zero tolerance, which moves no surface) usually suffices. MeshFix's
    clean-up is not tried on the whole result: over the corpus it never helped there, and
    on large assemblies it cost tens of seconds.

    Returns
    -------
    solid
        The mesh to keep.
    quality
        Its :func:`assess` measurement, taken here anyway to find the crossings.
    """
    quality = assess(solid)
    collapsed = _collapsed(solid) if quality.self_intersecting_faces else None
    if collapsed is None:
        return solid, quality
    collapsed_quality = assess(collapsed)
    if collapsed_quality.self_intersecting_faces < quality.self_intersecting_faces:
        return collapsed, collapsed_quality
    return solid, quality


def _collapsed(solid: trimesh.Trimesh) -> trimesh.Trimesh | None:
    """``solid`` with its needle and sliver triangles collapsed by manifold3d, or ``None``.

    ``simplify(0)`` removes only edges whose collapse moves no surface, so the shape and
    volume stay; what goes are the zero-area triangles whose rounding makes faces cross.
    ``None`` when manifold3d does not accept ``solid`` as an oriented 2-manifold.
    """
    try:
        manifold = _to_manifold(solid)
    except ValueError:
        return None
    return _from_manifold(manifold.simplify(0.0))


def _outward(solid: trimesh.Trimesh, report: RepairReport) -> trimesh.Trimesh:
    """Return ``solid`` with its faces pointing outwards (positive volume)."""
    if solid.volume >= 0:
        return solid
    report.winding_flipped += len(solid.faces)
    return _bare(solid.vertices, solid.faces[:, ::-1])


def _hull(body: trimesh.Trimesh, thickness: float) -> trimesh.Trimesh | None:
    """Seal ``body`` with its convex hull, thickened by ``thickness`` when it is flat.

    The last resort for a body MeshFix cannot close (a lone triangle or sheet): the hull
    keeps the body where it was, and the report says it was sealed this way.
    """
    points = np.asarray(body.vertices, dtype=np.float64)
    if _is_flat_points(points):
        normal = _plane_normal(points)
        offset = 0.5 * thickness * normal
        points = np.vstack([points + offset, points - offset])
    hull = manifold3d.Manifold.hull_points(points)
    if hull.is_empty():
        return None
    return _from_manifold(hull)


def _plane_normal(points: Points) -> NDArray[np.float64]:
    """Unit normal of the least-squares plane through ``points`` (``(k, 3)``, k >= 1)."""
    centred = points - points.mean(axis=0)
    if len(points) < 3 or not np.any(centred):
        return np.array([0.0, 0.0, 1.0])
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    normal: NDArray[np.float64] = axes[-1]
    return normal


def _is_flat_points(points: Points) -> bool:
    """Say whether ``points`` (``(k, 3)``) lie in a plane, to a millionth of their spread."""
    centred = np.asarray(points, dtype=np.float64) - np.mean(points, axis=0)
    if len(centred) < 4:
        return True
    spread = np.linalg.svd(centred, compute_uv=False)
    return bool(spread[-1] <= _FLAT_SPREAD * spread[0])


def _is_flat(body: trimesh.Trimesh) -> bool:
    """Say whether ``body`` encloses (next to) no volume for its size."""
    if not body.is_watertight:
        return True
    return bool(abs(body.volume) <= _FLAT_VOLUME_FRACTION * _diagonal(body) ** 3)


# --------------------------------------------------------------------------- combining


@dataclass(frozen=True)
class _Part:
    """A sound body ready for the booleans: its manifold, nesting depth and role."""

    solid: manifold3d.Manifold
    depth: int
    cavity: bool


def _combine(bodies: Sequence[trimesh.Trimesh], report: RepairReport) -> trimesh.Trimesh:
    """Union the solid bodies and subtract the cavities, shallowest nesting first.

    A body wound inwards (negative volume) that lies inside another body is a cavity: the
    hollow of a shelled part. An inward body inside nothing was merely flipped, and is
    turned outwards. Folding by nesting depth keeps an island inside a cavity.
    """
    if not bodies:
        return _bare(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    parts = sorted(_parts(bodies, report), key=lambda p: (p.depth, p.cavity))
    result = manifold3d.Manifold()
    for (_, cavity), group in _runs(parts):
        solids = [part.solid for part in group]
        op = manifold3d.OpType.Subtract if cavity else manifold3d.OpType.Add
        result = manifold3d.Manifold.batch_boolean([result, *solids], op)
    return _from_manifold(result)


def _parts(bodies: Sequence[trimesh.Trimesh], report: RepairReport) -> list[_Part]:
    """Give each body its nesting depth and role, as an outward manifold."""
    parts = []
    for index, body in enumerate(bodies):
        depth = _nesting_depth(body, [b for i, b in enumerate(bodies) if i != index])
        cavity = bool(body.volume < 0 and depth > 0)
        outward = _bare(body.vertices, body.faces[:, ::-1]) if body.volume < 0 else body
        if body.volume < 0 and not cavity:
            report.winding_flipped += len(body.faces)
        parts.append(_Part(_to_manifold(outward), depth, cavity))
    return parts


def _nesting_depth(body: trimesh.Trimesh, others: Sequence[trimesh.Trimesh]) -> int:
    """Count the ``others`` that contain ``body`` (tested at one of its vertices)."""
    lower, upper = body.bounds
    probe = body.vertices[:1]
    depth = 0
    for other in others:
        box = other.bounds
        if np.all(box[0] <= lower) and np.all(upper <= box[1]):
            depth += bool(_outward_copy(other).contains(probe)[0])
    return depth


def _outward_copy(body: trimesh.Trimesh) -> trimesh.Trimesh:
    """``body`` wound outwards, for containment tests that read the winding."""
    return body if body.volume >= 0 else _bare(body.vertices, body.faces[:, ::-1])


def _runs(parts: Sequence[_Part]) -> list[tuple[tuple[int, bool], list[_Part]]]:
    """Group consecutive parts with the same ``(depth, cavity)`` key."""
    runs: list[tuple[tuple[int, bool], list[_Part]]] = []
    for part in parts:
        key = (part.depth, part.cavity)
        if runs and runs[-1][0] == key:
            runs[-1][1].append(part)
        else:
            runs.append((key, [part]))
    return runs


def _to_manifold(body: trimesh.Trimesh) -> manifold3d.Manifold:
    """Convert a sound body to a :class:`manifold3d.Manifold`.

    Raises
    ------
    ValueError
        manifold3d refused the body (its status names why), which a sound body never is.
    """
    mesh = manifold3d.Mesh64(
        vert_properties=np.ascontiguousarray(body.vertices, dtype=np.float64),
        tri_verts=np.ascontiguousarray(body.faces, dtype=np.uint64),
    )
    solid = manifold3d.Manifold(mesh)
    if solid.status() != manifold3d.Error.NoError:
        raise ValueError(
            f"manifold3d refused a body of {len(body.faces)} faces: {solid.status().name}"
        )
    return solid


def _from_manifold(solid: manifold3d.Manifold) -> trimesh.Trimesh:
    """Convert a :class:`manifold3d.Manifold` to a bare trimesh mesh."""
    mesh = solid.to_mesh64()
    vertices = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
    return _bare(vertices, np.asarray(mesh.tri_verts, dtype=np.int64))


def _count_resolved(report: RepairReport) -> None:
    """Fill in the counts measured as the drop between ``before`` and ``after``."""
    before, after = report.before, report.after
    if before is None or after is None:
        return
    report.non_manifold_edges_resolved = max(
        0, before.non_manifold_edges - after.non_manifold_edges
    )
    report.non_manifold_vertices_resolved = max(
        0, before.non_manifold_vertices - after.non_manifold_vertices
    )
    report.self_intersections_removed = max(
        0, before.self_intersecting_faces - after.self_intersecting_faces
    )


# --------------------------------------------------------------------------- small helpers


def _bare(vertices: Points, faces: Faces) -> trimesh.Trimesh:
    """A positions-and-faces copy of the given arrays, unprocessed."""
    return trimesh.Trimesh(
        vertices=np.array(vertices, dtype=np.float64).reshape(-1, 3),
        faces=np.array(faces, dtype=np.int64).reshape(-1, 3),
        process=False,
    )


def _diagonal(mesh: trimesh.Trimesh) -> float:
    """Length of the bounding-box diagonal of the vertices used by faces (0 when empty)."""
    if len(mesh.faces) == 0:
        return 0.0
    return float(np.linalg.norm(np.ptp(mesh.vertices[mesh.faces.ravel()], axis=0)))


def _meshfix_mesh(
    vertices: Points, faces: Faces
) -> tuple[pymeshfix.PyTMesh, tuple[NDArray[np.float64], float]]:
    """Load arrays into a quiet MeshFix mesh, centred and scaled to a unit diagonal.

    MeshFix compares lengths with fixed epsilons, so a part modelled in metres (a diagonal of
    a few hundredths) loses its small features to them; it is given unit-sized geometry.

    Returns
    -------
    tmesh
        The loaded mesh.
    frame
        ``(centre (3,), scale)``: original positions are ``centre + scale * loaded``.
    """
    points = np.asarray(vertices, dtype=np.float64)
    used = points[np.unique(faces)] if len(faces) else points
    centre = 0.5 * (used.min(axis=0) + used.max(axis=0)) if len(used) else np.zeros(3)
    scale = float(np.linalg.norm(np.ptp(used, axis=0))) if len(used) else 1.0
    scale = scale if scale > 0 else 1.0
    tmesh = pymeshfix.PyTMesh()
    tmesh.set_quiet(1)
    tmesh.load_array(
        np.ascontiguousarray((points - centre) / scale),
        np.ascontiguousarray(faces, dtype=np.int32),
    )
    return tmesh, (centre, scale)


def _edge_face_counts(faces: Faces) -> NDArray[np.int64]:
    """How many faces use each distinct undirected edge, ``(e,) int``."""
    if len(faces) == 0:
        return np.zeros(0, dtype=np.int64)
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    return counts.astype(np.int64)


def _non_manifold_vertex_count(mesh: trimesh.Trimesh) -> int:
    """Count vertices whose faces do not form one fan.

    Each face corner is a node; corners at the same vertex of two faces that share a
    (two-face) edge are joined. A vertex is manifold when all its corners fall in one
    connected group. Faces across a non-manifold edge are not joined, so the vertices of
    such an edge count as non-manifold too.
    """
    faces = mesh.faces
    if len(faces) == 0:
        return 0
    pairs, shared = mesh.face_adjacency, mesh.face_adjacency_edges
    links = [
        np.column_stack(
            [_corner(faces, pairs[:, 0], shared[:, k]), _corner(faces, pairs[:, 1], shared[:, k])]
        )
        for k in (0, 1)
    ]
    edges = np.vstack(links) if len(pairs) else np.zeros((0, 2), dtype=np.int64)
    size = 3 * len(faces)
    graph = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), (size, size))
    _, labels = csgraph.connected_components(graph, directed=False)
    fans = np.unique(np.column_stack([faces.ravel(), labels]), axis=0)
    _, per_vertex = np.unique(fans[:, 0], return_counts=True)
    return int((per_vertex > 1).sum())


def _corner(faces: Faces, face: NDArray[np.int64], vertex: NDArray[np.int64]) -> Faces:
    """Corner ids (``3 * face + slot``) of ``vertex`` in ``face``, both ``(p,)``."""
    slot = np.argmax(faces[face] == vertex[:, None], axis=1)
    result: Faces = 3 * face + slot
    return result
