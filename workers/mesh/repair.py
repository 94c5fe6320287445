"""One-click repair of a triangle mesh for 3D printing, and the checks that judge the result.

:func:`repair` is a pure function ``f(mesh, **options) -> (mesh, report)``: it copies the
positions and faces it is given and never touches the caller's mesh. The output is geometry
only (positions and faces); colours, normals and texture coordinates do not survive a repair,
because hole fills and boolean unions create faces they cannot be interpolated onto.

The pipeline, and which library does each step:

1. weld near-duplicate vertices, drop degenerate and duplicate faces (trimesh); where that
   leaves edges open, corners closer than a hundred-thousandth of the diagonal are joined by
   distance (a file written triangle by triangle, its corners carrying rounding noise), and
   open edges are split at the open corners lying on them (T-junctions,
   :mod:`workers.mesh.cracks`);
2. split into bodies (faces joined through shared vertices) and drop *debris*: bodies both
   tiny in area and in extent relative to the whole mesh (``debris_fraction``). A mesh that
   is already printable and lost nothing here is returned as this cleaned copy, unless a
   body lies whole inside another's material (a pin exported inside its part: its volume
   would count twice), which goes on to be united with it in step 4. A body that
   is closed parts welded together where they touched (non-manifold edges, pinched
   vertices) is cut there into its closed parts, and so is an open body where that frees a
   closed part, its flat open pieces left out (a stray face hanging from a part's edge);
3. per body: a closed, consistently wound, manifold body free of self-intersections is kept
   as it is (its orientation is decided in step 4). A closed body whose faces cross first has
   its needle triangles collapsed (manifold3d ``simplify(0)``); when the faces that still
   cross only touch (nudging them apart clears them, :func:`workers.mesh.crossings.nudged`),
   it is kept exact, so that its neighbours meet it where they should, and that nudge is
   applied after step 4 to the faces the booleans kept. Any other body goes through
   MeshFix (pymeshfix: hole filling, non-manifold cutting, degeneracy and self-intersection
   removal) on unit-scaled coordinates. MeshFix is given one body at a time, so its habit of
   keeping only the largest component cannot lose the other bodies. A closed body MeshFix
   would shrink or grow by more than 1 % is kept as it came, crossings and all. An open body
   whose surface encloses a volume the rays through it agree on (cracks rather than holes)
   and that MeshFix cannot close, or mends into a scrap, is made again as that solid by a
   level set. A flat body (a sheet) and a small open body neither can close (a stray
   triangle) are sealed with their convex hull (manifold3d), thickened when flat; a large
   one is left out. The report counts both;
4. the bodies are combined with manifold3d booleans: solids are unioned, which removes the
   intersections between overlapping bodies, and a closed body wound inwards that sits inside
   another is kept as a cavity (subtracted) rather than flipped into a solid. manifold3d's
   output is an oriented 2-manifold by construction, but parts that meet only at an edge or
   a corner share a position there, which welding would pinch: those vertices are moved a
   millionth of the diagonal into their own part. Needle triangles left where bodies met are
   collapsed, and faces left touching are nudged apart, when they make faces cross.

A closed body whose faces cross is judged by the volume it winds around (its union with
itself, :mod:`workers.mesh.winding`), since its signed volume counts an overlap twice: MeshFix's
mend is kept when it keeps that volume to 1 %, else the body is made again as that solid by a
level set (the self-union of a tube through itself or of an offset that folded); a thin body
whose crossings lie in a small box is made again only in that box, finely, and kept exact
elsewhere. A body that passes through itself (the two volumes part by more than the estimate's
error) is made again first, and MeshFix tried only where that fails: MeshFix keeps the walls
inside the overlap, and its mend of such a body has not kept the volume on any mesh yet.

The result is never worse than the input: with more crossing faces or non-manifold edges, or a
body lost (:func:`count_lost_bodies`: overlapping bodies unioned into one are held, not lost),
the latest stage that is not worse is returned, and so it is when ``time_limit`` runs out; the
report names the stage and the reason. A mesh all of whose bodies are flat and closed (a
sliver squashed flat) or flat and not their own hull (a concave or folded sheet) encloses no
volume and has no shape a hull would keep: it is refused with :class:`NothingToPrint` rather
than given a made-up thickness or emptied.

"Free of self-intersections" is checked with MeshFix's triangle-triangle intersection test,
see :mod:`workers.mesh.crossings`. Faces that only touch to within rounding (coplanar slivers
of CAD chamfers) are nudged apart there by a billionth of the part's size; faces that truly
cross are not.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import manifold3d
import numpy as np
import trimesh
from numpy.typing import NDArray
from scipy import sparse
from scipy.spatial import ConvexHull, QhullError, cKDTree

from core.errors import InvalidInput
from core.meshio import check_arrays
from workers.mesh.cracks import split_at_t_junctions
from workers.mesh.crossings import (
    MeshFixAnswerError,
    count_self_intersecting_faces,
    crossing_faces,
    meshfix_mesh,
    nudged,
)
from workers.mesh.edge_topology import (
    EdgeTopology,
    body_labels,
    edge_topologies,
    edge_topology,
    signed_volume,
)
from workers.mesh.winding import DeadlinePassed, UnionVolume, union_volume, winding_solid

Faces = NDArray[np.int64]
Points = NDArray[np.float64]
Nudge = tuple[Points, Points]
"""Where a body's vertices were (``(k, 3)``) and where a nudge that parted its faces moved
them (``(k, 3)``)."""

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

_FLAT_SPREAD: Final = 1e-6
"""Points whose thinnest principal spread is below this fraction of their widest are flat."""

_CONTACT_GAP: Final = 1e-6
"""How far vertices where two parts touch are moved into their own part, as a fraction of the
whole mesh's diagonal: 0.1 µm on a 100 mm part, below any printer's resolution, so the
parts still print fused."""

_UNION_RAYS: Final = 2 * 96**2
"""Vertical rays cast to estimate the volume a crossed closed body winds around."""

_LEVEL_SET_DRIFT: Final = 0.02
"""Largest relative volume change accepted from the level-set self-union against the volume
the body winds around: its surface is placed to a fraction of a grid cell, so a thin body
moves a little more than MeshFix's exact faces would."""

_UNION_SIMPLIFY: Final = 0.05
"""How far (in level-set cells) a self-union's surface may move when simplified: five times
the level set's default. The union already lies a fraction of a cell off the true surface
(the grid's own error), and keeping every flat stretch at the default's detail made
offset shells come out at 14x their input's faces, which the final crossing test then paid
for. Hollowing keeps the default: its cavity simplified this far folds at sharp notches."""

_PATCH_CELLS: Final = 128
"""Level-set cells along the longest side of the box patched by :func:`_patched_union`."""

_PATCH_MARGIN: Final = 0.01
"""Room left round a body's crossing faces in the box :func:`_patched_union` makes again,
as a fraction of the body's diagonal."""

_PATCH_SHARE: Final = 0.5
"""Largest side of that box, as a fraction of the body's longest side."""

_THROUGH_ERRORS: Final = 6.0
"""Standard errors of the winding-volume estimate by which a closed body's signed volume must
differ from the volume it winds around before its faces are taken to truly cross."""

_THROUGH_FRACTION: Final = 1e-3
"""Least gap, as a fraction of a closed body's signed volume, between it and the volume the
body winds around before its faces are taken to truly cross: a nudge of a ten-millionth of
the diagonal (the largest :func:`workers.mesh.crossings.nudged` tries) cannot move a
thousandth of the volume."""

_NESTING_PROBES: Final = 8
"""Vertices of a body tested to decide whether another body contains it."""

_CRACK_FRACTION: Final = 1e-3
"""Farthest a corner may lie from an open edge, as a fraction of the diagonal, for the edge to
be split at it when that closes every open edge (:func:`_split_cracks`): 0.17 mm on a
100 mm cube, 0.035 mm on a 20 mm one. A slicer closes such gaps itself as it slices
(PrusaSlicer's slice closing radius: 0.049 mm at any size); a 0.4 mm nozzle prints none."""

_NEAR_WELD_FRACTION: Final = 1e-5
"""Corners of an open mesh closer than this fraction of its diagonal are joined when that
closes edges the exact weld left open: 1 µm on a 100 mm part, 25 times below what a printer
resolves, and wide enough for the rounding noise of a file whose triangles were written
apart (float32 positions carry about 6e-8 of their size)."""

_MATERIAL_PROBES: Final = 8
"""Points just inside a sound body tested to decide whether it lies in another's material."""

_MOST_NESTED_PAIRS: Final = 100_000
"""Most pairs of bodies compared for nesting (those whose box centres lie close enough for
one box to hold the other, :func:`_boxes_holding`). A file of 3,000 boxes each inside the
last (36,000 faces) makes 9 million: probed one pair at a time, 300 such boxes took 8.2 s,
600 took 38 s and 3,000 crashed the process inside Embree. The probes of all the bodies a
body may hold are now cast at once (300 boxes: 0.6 s); past this many pairs a printable
mesh is left as it came, and any other returns its cleaned stage with the reason."""

_MATERIAL_PROBE_DEPTH: Final = 1e-3
"""How far inside a body (a fraction of its diagonal) those points lie: enough that a body
whose faces are tangent to its container's is still read inside it."""

_OWN_HULL_AREA: Final = 0.01
"""Largest relative gap between a flat sheet's area and its hull's for the hull to be its
shape: the plane and lone-triangle files of the corpus match to rounding; a concave fan of
triangles folded over one another covers nearly twice its hull."""

_MESHFIX_KEPT_SHARE: Final = 0.5
"""Share of an open body's faces (and of its extent) MeshFix's mend must keep to be taken
unchecked: filling holes only adds faces, and a mend with fewer came from a surface MeshFix
cut apart and kept a scrap of."""

_OPEN_UNBALANCED: Final = 0.02
"""Largest share of the rays through an open body that may meet its surface an odd number of
times (through a hole) for the volume the rest enclose to be trusted: cracks catch a ray
now and then, a missing face catches every ray through it."""

_OPEN_DRIFT: Final = 0.05
"""Largest relative difference between MeshFix's mend of an open body and the volume its
surface encloses: the rays through its cracks are uncounted, so the estimate is looser
than a closed body's."""

_LEVEL_SET_DEBRIS: Final = 1e-3
"""``debris_fraction`` (see :func:`repair`) below which a body of an open body's level set is
a blob of a wrong vote near a crack, not a part: an L-shaped prism's was a cell across,
4.6e-4 of the prism's area and 1.8 % of its diagonal (the level set loses any real part
that small anyway)."""

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

    Raises
    ------
    InvalidInput
        A vertex has a non-finite coordinate or a face index points past the vertices
        (:func:`core.meshio.check_arrays`).
    """
    check_arrays(mesh, "the mesh")
    return _measure(_welded(mesh.vertices, mesh.faces))


def _measure(solid: trimesh.Trimesh) -> MeshQuality:
    """:func:`assess` of a mesh already welded."""
    return _measured(solid)[0]


def _measured(solid: trimesh.Trimesh) -> tuple[MeshQuality, NDArray[np.bool_] | None]:
    """:func:`_measure`, and which faces cross (``(m,) bool``), or ``None`` where MeshFix's
    answer cannot be mapped back to the faces (it cuts non-manifold vertices on load).

    The flags let :func:`repair` skip a body's own intersection test (as costly as this one)
    where none of its faces crosses anything: on the synthetic corpus a crossed body was
    tested again three to nine times after this measurement.
    """
    topology = edge_topology(solid.faces, len(solid.vertices))
    closed = topology.watertight and topology.winding_consistent
    flags = None
    if topology.non_manifold_edges == 0 and topology.non_manifold_vertices == 0:
        flags = _crossing_flags(solid)
    if flags is None:
        crossing = count_self_intersecting_faces(solid.vertices, solid.faces)
    else:
        crossing = int(flags.sum())
    quality = MeshQuality(
        faces=len(solid.faces),
        watertight=topology.watertight,
        winding_consistent=topology.winding_consistent,
        boundary_edges=topology.boundary_edges,
        non_manifold_edges=topology.non_manifold_edges,
        non_manifold_vertices=topology.non_manifold_vertices,
        self_intersecting_faces=crossing,
        volume=signed_volume(solid.vertices, solid.faces) if closed else None,
        bodies=body_labels(solid.faces, len(solid.vertices))[0],
    )
    return quality, flags


def _crossing_flags(solid: trimesh.Trimesh) -> NDArray[np.bool_] | None:
    """Which faces of ``solid`` cross another (``(m,) bool``), or ``None`` when MeshFix's
    answer cannot be mapped back."""
    try:
        index = crossing_faces(solid.vertices, solid.faces)
    except MeshFixAnswerError:
        return None
    flags = np.zeros(len(solid.faces), dtype=bool)
    flags[index] = True
    return flags


def _welded(vertices: Points, faces: Faces) -> trimesh.Trimesh:
    """A bare copy with coincident positions welded (rounded to trimesh's ``tol.merge``
    grid), as a printer reading the file would join them."""
    solid = _bare(vertices, faces)
    solid.merge_vertices(merge_tex=True, merge_norm=True)
    return solid


def _joined_near(welded: trimesh.Trimesh, quality: MeshQuality) -> trimesh.Trimesh | None:
    """``welded`` with its corners closer than :data:`_NEAR_WELD_FRACTION` of its diagonal
    joined, or ``None`` where that closes no edge (``quality`` is ``welded``'s measurement)
    or adds a non-manifold one.

    The weld of :func:`_welded` rounds positions to a grid, so corners that should meet but
    carry rounding noise land in different cells: a sphere written triangle by triangle
    with noise of a tenth of the grid's step came back from it with a quarter of its corners
    apart, and from MeshFix (the studio's repair and pymeshfix alike) as 98 of its 1,280
    faces, 1.6 % of its volume; with noise of 1e-7 or more, as 1,280 triangles each sealed
    by its hull. Corners are joined here by distance instead (a k-d tree's pairs, joined in
    chains), each cluster at the position of its first corner, so no position is invented.
    """
    joined = _joined_within(welded, _NEAR_WELD_FRACTION * _diagonal(welded))
    if joined is None:
        return None
    topology = edge_topology(joined.faces, len(joined.vertices))
    closes = topology.boundary_edges < quality.boundary_edges
    if not closes or topology.non_manifold_edges > quality.non_manifold_edges:
        return None
    return joined


def _split_cracks(welded: trimesh.Trimesh, merge_tolerance: float | None) -> trimesh.Trimesh | None:
    """``welded`` with its open edges split at the open corners lying on them
    (:func:`workers.mesh.cracks.split_at_t_junctions`), or ``None`` where that closes no edge
    or adds a non-manifold one.

    A corner lies on an edge within ``merge_tolerance``, or :data:`_NEAR_WELD_FRACTION` of
    the diagonal where none is given: the reach of the weld before it. Where edges are left
    open, corners within :data:`_CRACK_FRACTION` of the diagonal are taken too, but only when
    that closes every open edge: a file whose cracks are that wide (a wall's new corners
    10 µm off a cap's edges) is closed by them, while a mesh with a real hole keeps it.
    MeshFix instead filled such cracks as holes, cut the caps off at their corners and
    spent 11 s on the duplicates (a 7,680-face prism), past the repair's budget.
    """
    was = edge_topology(welded.faces, len(welded.vertices))
    reach = _NEAR_WELD_FRACTION * _diagonal(welded) if merge_tolerance is None else merge_tolerance
    faces = split_at_t_junctions(welded.vertices, welded.faces, reach)
    now = was if faces is None else edge_topology(faces, len(welded.vertices))
    if now.boundary_edges >= was.boundary_edges or now.non_manifold_edges > was.non_manifold_edges:
        faces, now = None, was
    if now.boundary_edges and merge_tolerance is None:
        current = welded.faces if faces is None else faces
        wider = split_at_t_junctions(welded.vertices, current,
                                     _CRACK_FRACTION * _diagonal(welded))
        if wider is not None:
            closed = edge_topology(wider, len(welded.vertices))
            if closed.boundary_edges == 0 and closed.non_manifold_edges <= was.non_manifold_edges:
                faces = wider
    return None if faces is None else _bare(welded.vertices, faces)


def _joined_within(welded: trimesh.Trimesh, reach: float) -> trimesh.Trimesh | None:
    """``welded`` with its corners closer than ``reach`` joined (pairs from a k-d tree,
    joined in chains), each cluster at the position of its first corner; ``None`` where no
    two corners are that close. Unlike rounding to a grid, two corners closer than ``reach``
    are always joined and two farther apart only through a chain of close ones."""
    used = np.unique(welded.faces)
    points = np.asarray(welded.vertices, dtype=np.float64)[used]
    pairs = cKDTree(points).query_pairs(reach, output_type="ndarray")
    if len(pairs) == 0:
        return None
    links = sparse.coo_matrix(
        (np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])),
        shape=(len(points), len(points)),
    )
    count, cluster = sparse.csgraph.connected_components(links, directed=False)
    first = np.full(count, len(points), dtype=np.int64)
    np.minimum.at(first, cluster, np.arange(len(points), dtype=np.int64))
    remap = np.zeros(len(welded.vertices), dtype=np.int64)
    remap[used] = cluster
    return _bare(points[first], remap[welded.faces])


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
    welded = _welded(original.vertices, original.faces)
    cleaned, _, _ = _cleaned(welded, _referenced_count(original.faces))
    bodies = _without_debris(_bodies(cleaned), cleaned, debris_fraction)
    return _count_missing(bodies, _PRESENCE_TOLERANCE * _diagonal(cleaned), repaired)


def _count_missing(
    bodies: Sequence[trimesh.Trimesh], reach: float, repaired: trimesh.Trimesh
) -> int:
    """Count the ``bodies`` of which ``repaired`` holds no trace (see :func:`count_lost_bodies`).

    A body is held when one of its probes (sampled vertices) lies within ``reach`` of the
    repaired surface or inside the repaired solid. Every body's probes go into one query:
    asked body by body, trimesh's set-up per query cost 60 ms of a 170 ms repair on the
    18 bodies of assimp's Spider_binary.stl. A probe within ``reach`` of a corner of the
    repaired faces is within reach of its surface, so the exact (costlier) distance to the
    surface is asked only for the bodies no probe is that near a corner of.
    """
    if not bodies:
        return 0
    if len(repaired.faces) == 0:
        return len(bodies)
    probes = [_probes(body, _PRESENCE_SAMPLES) for body in bodies]
    owner = np.repeat(np.arange(len(bodies)), [len(p) for p in probes])
    points = np.vstack(probes)
    corners = repaired.vertices[np.unique(repaired.faces)]
    near, _ = cKDTree(corners).query(points, distance_upper_bound=reach)
    held = np.zeros(len(bodies), dtype=bool)
    held[owner[near <= reach]] = True
    unsure = ~held[owner]
    if unsure.any():
        _, distance, _ = trimesh.proximity.closest_point(repaired, points[unsure])
        held[owner[unsure][distance <= reach]] = True
    if not held.all() and repaired.is_watertight:
        unsure = ~held[owner]
        inside = np.asarray(repaired.contains(points[unsure]), dtype=bool)
        held[owner[unsure][inside]] = True
    return int(np.count_nonzero(~held))


def _probes(body: trimesh.Trimesh, count: int) -> Points:
    """Up to ``count`` vertices of ``body``, spread evenly over its vertex list."""
    pick = np.linspace(0, len(body.vertices) - 1, count).astype(np.int64)
    probes: Points = body.vertices[np.unique(pick)]
    return probes


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
    ``fell_back_to`` names the stage returned instead of the full repair (``"cleaned"``: the
    input welded, less degenerate and duplicate faces; ``"combined"``: the bodies repaired and
    unioned, before crossings left where they met were cleared) and ``reason`` says why: the
    full result was worse than the input, or the time budget ran out; both are ``None`` when
    the full repair is returned.
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
    fell_back_to: str | None = None
    reason: str | None = None

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
    time_limit: float | None = None,
) -> tuple[trimesh.Trimesh, RepairReport]:
    """Make ``mesh`` printable: closed, manifold, outward and free of self-intersections.

    Every real body is kept; only debris is dropped. See the module docstring for the steps
    and the libraries behind them. The result is never worse than the input: when the full
    repair has more crossing faces or more non-manifold edges than the input, or lost a body
    (:func:`count_lost_bodies`: bodies that overlapped and were unioned into one are held,
    not lost), the best earlier stage that is not worse is returned instead, and the report
    says which and why (``fell_back_to``, ``reason``). So it is when the time budget runs out.

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
        Corners closer than this (in mesh units) are joined, by distance and in chains (each
        cluster at its first corner's position), after the weld every repair makes (trimesh's
        ``tol.merge`` grid, 1e-8); ``None`` for that weld alone, and the near weld of open
        meshes (step 1).
    time_limit
        Seconds the repair may take before it returns its best stage so far; ``None`` for no
        limit. The worker gives :func:`time_budget` of the mesh's face count. Checked between
        stages and bodies, so a single library call under way finishes first.

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
        ``debris_fraction`` outside ``[0, 1)``, ``merge_tolerance`` not positive or
        ``time_limit`` negative.
    InvalidInput
        A vertex has a non-finite coordinate or a face index points past the vertices: the
        loader's own check (:func:`core.meshio.check_arrays`), for direct callers, rather than
        hand NaN to MeshFix.
    NothingToPrint
        The mesh encloses no volume at all (a flat sheet or a sliver squashed flat): there is
        nothing a printer could fill, and making up a thickness would be a guess.
    """
    _check_options(debris_fraction, merge_tolerance, time_limit)
    check_arrays(mesh, "the mesh")
    deadline = time.monotonic() + (math.inf if time_limit is None else time_limit)
    welded = _welded(mesh.vertices, mesh.faces)
    before, flags = _measured(welded)
    report = RepairReport(before=before)
    if merge_tolerance is not None:
        welded = _joined_within(welded, merge_tolerance) or welded
        flags = None  # joined positions may cross differently
    elif before.boundary_edges:
        joined = _joined_near(welded, before)
        if joined is not None:
            welded, flags = joined, None
            report.notes.append(
                f"corners closer than {_NEAR_WELD_FRACTION:g} of the diagonal were joined: "
                f"the file's triangles did not meet exactly, which left "
                f"{before.boundary_edges} open edges"
            )
    cleaned, counts, kept_faces = _cleaned(welded, _referenced_count(mesh.faces))
    report.duplicate_vertices_merged, report.degenerate_faces_removed = counts[:2]
    report.duplicate_faces_removed = counts[2]
    _refuse_faceless(mesh, cleaned, merge_tolerance or trimesh.tol.merge)
    # after the clean-up: a face of no area closing a crack (a CAD export's filler) is
    # removed there, which opens the crack
    split = (_split_cracks(cleaned, merge_tolerance)
             if before.boundary_edges or counts[1] or counts[2] else None)
    if split is not None:
        cleaned, flags = split, None
        report.notes.append(
            "open edges with another edge's corners lying on them were split there "
            "(T-junctions: the file's faces met along cracks, not holes)"
        )
    labels = body_labels(cleaned.faces, len(cleaned.vertices))
    bodies = _bodies(cleaned, labels)
    kept = _without_debris(bodies, cleaned, debris_fraction)
    report.debris_bodies_dropped = len(bodies) - len(kept)
    _refuse_flat(mesh, before, kept)
    # the bodies a lost-body check looks for: those count_lost_bodies would find, when the
    # positions were welded as it welds them (or joined near: their triangles are then the
    # bodies it finds, and each lies on the surface of a body kept here)
    real = (kept, _PRESENCE_TOLERANCE * _diagonal(cleaned)) if merge_tolerance is None else None
    untouched = merge_tolerance is None and not any(counts) and split is None
    stages: list[tuple[str, trimesh.Trimesh, MeshQuality | None]] = [
        ("cleaned", cleaned, before if untouched else None)
    ]
    printable = _already_printable(report, merge_tolerance)
    nested = _in_others_material(kept) if printable else 0
    if nested:
        report.notes.append(
            "1 body lay whole inside another body's material and was united with it, so "
            "that its volume is counted once" if nested == 1 else
            f"{nested} bodies lay whole inside other bodies' material and were united with "
            "them, so that their volume is counted once"
        )
    if printable and not nested:
        repaired, after = cleaned, before
    else:
        flags = None if flags is None else flags[kept_faces]
        crossed = _known_crossings(before, labels, bodies, kept, flags, exact=not any(counts[1:]))
        topologies = _kept_topologies(cleaned, labels, bodies, kept)
        thickness = _SHEET_THICKNESS_FRACTION * _diagonal(cleaned)
        try:
            repaired, after = _full_repair(kept, topologies, crossed, thickness, report, stages,
                                           deadline)
        except _OutOfTime:
            repaired, after = _fall_back(mesh, real, stages, report, f"the time budget of "
                                         f"{time_limit} s ran out")
        except _TooManyNested as error:
            repaired, after = _fall_back(mesh, real, stages, report, str(error))
        else:
            worse = _worse_than_input(mesh, real, before, repaired, after)
            if worse:
                repaired, after = _fall_back(mesh, real, stages, report, worse)
    report.bodies_kept = after.bodies
    report.after = after
    _count_resolved(report)
    return repaired, report


_SECONDS_PER_100K_FACES: Final = 10.0
"""Time budget of a repair per 100 000 input faces (the issue's bound)."""

_MIN_BUDGET_SECONDS: Final = 10.0
"""The least time budget: below a few ten thousand faces, fixed costs (MeshFix's set-up, the
quality measurements, manifold3d's booleans) dominate, and a budget in proportion to the
faces would cut off parts every peer repairs in a few seconds."""


def time_budget(faces: int) -> float:
    """Seconds a repair of a mesh of ``faces`` faces may take (see ``time_limit``)."""
    return max(_MIN_BUDGET_SECONDS, _SECONDS_PER_100K_FACES * faces / 100_000)


class NothingToPrint(InvalidInput):
    """The mesh encloses no volume: no repair can make a printable solid of it honestly."""


class _OutOfTime(Exception):
    """The repair's deadline passed between two stages."""


class _TooManyNested(Exception):
    """More bodies lie inside one another than the repair can place (:func:`_nesting_depths`);
    the message says why."""


def _on_time(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise _OutOfTime


def _refuse_flat(
    mesh: trimesh.Trimesh, before: MeshQuality, bodies: Sequence[trimesh.Trimesh]
) -> None:
    """Refuse a mesh all of whose bodies are flat when no honest solid can be made of it.

    A closed sliver says it is a solid and encloses nothing; a flat sheet that is not its
    own hull (a concave outline, a fan of triangles folded over one another, as assimp's
    concave_polygon.obj: faces of 3.2 units² over a hull of 1.7) would change shape if
    sealed by its hull. Any thickness or outline given to either would be a guess, and an
    empty result would say nothing, so the refusal says why. It is also quick: MeshFix spent
    over 10 s on that polygon's 64 crossing triangles before its hull was taken anyway.
    A flat sheet that is its own hull (a plane, a lone triangle) is still sealed by its
    thickened hull, as is any flat body beside a real part (:func:`_solid_body`).
    """
    if not bodies or not all(_is_flat_points(body.vertices) for body in bodies):
        return
    closed = before.watertight or edge_topology(mesh.faces, len(mesh.vertices)).watertight
    if closed:
        what = "a closed solid squashed flat"
    elif all(_is_own_hull(body) for body in bodies):
        return
    else:
        what = "an open sheet whose outline is not its hull, so it has no shape to seal"
    where = "in one plane" if len(bodies) == 1 else f"flat, in {len(bodies)} bodies"
    raise NothingToPrint(
        f"the mesh encloses no volume: its {len(mesh.faces)} faces lie {where} ({what}), "
        "so there is nothing a printer could fill; give it a thickness first"
    )


def _refuse_faceless(mesh: trimesh.Trimesh, cleaned: trimesh.Trimesh, joined: float) -> None:
    """Refuse a mesh none of whose faces has an area once corners closer than ``joined``
    are joined: every face a line or a point (corners on a line, a part smaller than the
    welding grid, or a ``merge_tolerance`` as large as the part). Its repair was an empty
    mesh, with no word of why."""
    if len(cleaned.faces) or not len(mesh.faces):
        return
    extent = float(np.ptp(mesh.vertices[np.unique(mesh.faces)], axis=0).max())
    raise NothingToPrint(
        f"the mesh encloses no volume: none of its {len(mesh.faces)} faces has an area once "
        f"corners closer than {joined:g} are joined (its corners lie on a line or at one "
        f"point; it is {extent:.3g} across), so there is nothing a printer could fill"
    )


def _is_own_hull(body: trimesh.Trimesh) -> bool:
    """Say whether the flat ``body``'s faces cover its convex hull once, to 1 % of its area:
    a convex sheet without overlaps, which its thickened hull keeps as it is."""
    points = np.asarray(body.vertices, dtype=np.float64)
    centred = points - points.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    try:
        hull_area = float(ConvexHull(centred @ axes[:2].T).volume)  # a 2-D hull's "volume"
    except QhullError:
        return False
    return bool(abs(body.area - hull_area) <= _OWN_HULL_AREA * hull_area)


def _known_crossings(
    before: MeshQuality,
    labels: tuple[int, NDArray[np.int32]],
    bodies: Sequence[trimesh.Trimesh],
    kept: Sequence[trimesh.Trimesh],
    flags: NDArray[np.bool_] | None,
    *,
    exact: bool,
) -> list[int | None]:
    """How many of each kept body's faces cross its own, where the input's measurement says so
    without a test of the body's own, else ``None``.

    A body none of whose faces crossed anything in the whole mesh (``flags``, ``(m,) bool``
    over the cleaned mesh's faces) crosses none of its own; a mesh that is one body crosses
    itself where the whole did, when the test ran on exactly its faces (``exact``: none
    removed). ``labels`` is :func:`body_labels` of the cleaned mesh, ``bodies`` its
    :func:`_bodies` (in label order), ``kept`` those of them that are not debris.
    """
    if before.self_intersecting_faces == 0:
        return [0] * len(kept)
    if flags is None:
        return [None] * len(kept)
    count, face_labels = labels
    flagged = np.bincount(face_labels, weights=flags, minlength=count).astype(np.int64)
    place = {id(body): label for label, body in enumerate(bodies)}
    known: list[int | None] = []
    for body in kept:
        crossing = int(flagged[place[id(body)]])
        known.append(0 if crossing == 0 else crossing if exact and count == 1 else None)
    return known


def _kept_topologies(
    cleaned: trimesh.Trimesh,
    labels: tuple[int, NDArray[np.int32]],
    bodies: Sequence[trimesh.Trimesh],
    kept: Sequence[trimesh.Trimesh],
) -> list[EdgeTopology]:
    """:func:`edge_topology` of each of the ``kept`` bodies, measured on the cleaned mesh at
    once (:func:`workers.mesh.edge_topology.edge_topologies`): ``labels`` is its
    :func:`body_labels`, ``bodies`` its :func:`_bodies` in label order."""
    count, face_labels = labels
    topologies = edge_topologies(cleaned.faces, len(cleaned.vertices), face_labels, count)
    place = {id(body): label for label, body in enumerate(bodies)}
    return [topologies[place[id(body)]] for body in kept]


def _full_repair(
    kept: Sequence[trimesh.Trimesh],
    topologies: Sequence[EdgeTopology],
    crossed: Sequence[int | None],
    thickness: float,
    report: RepairReport,
    stages: list[tuple[str, trimesh.Trimesh, MeshQuality | None]],
    deadline: float,
) -> tuple[trimesh.Trimesh, MeshQuality]:
    """Steps 3 and 4 of the module docstring; each finished stage is added to ``stages``.
    ``topologies`` gives each kept body's :func:`edge_topology`, ``crossed`` its crossing
    faces where they are known (:func:`_known_crossings`), ``thickness`` what a flat sheet
    is given."""
    solids = []
    nudges: list[Nudge] = []
    for body, topology, crossing in zip(kept, topologies, crossed, strict=True):
        for piece in _pieces(body, topology, report):
            _on_time(deadline)
            whole = piece is body
            known = crossing if whole or crossing == 0 else None
            solids.append(_solid_body(piece, thickness, report, crossed=known, deadline=deadline,
                                      nudges=nudges, topology=topology if whole else None))
    _on_time(deadline)
    combined = _kept_apart(_combine([s for s in solids if s], report), report)
    stages.append(("combined", combined, None))
    _on_time(deadline)
    return _resolve_crossings(combined, report, deadline, nudges)


def _worse_than_input(
    mesh: trimesh.Trimesh,
    real: tuple[Sequence[trimesh.Trimesh], float] | None,
    before: MeshQuality,
    repaired: trimesh.Trimesh,
    after: MeshQuality,
) -> str:
    """Why ``repaired`` is worse than the input, or ``""`` when it is not. ``real`` is the
    input's real bodies and the reach of the check that each is held, where the repair has
    them (:func:`_count_missing`), else ``None`` (:func:`count_lost_bodies` finds them)."""
    if after.self_intersecting_faces > before.self_intersecting_faces:
        return (f"the repair left more crossing faces ({after.self_intersecting_faces}) than "
                f"the input had ({before.self_intersecting_faces})")
    if after.non_manifold_edges > before.non_manifold_edges:
        return (f"the repair left more non-manifold edges ({after.non_manifold_edges}) than "
                f"the input had ({before.non_manifold_edges})")
    if after.bodies >= before.bodies:
        # As many bodies as the input: none went missing, unless one was dropped while
        # another was cut in two along its non-manifold edges; the probes below cost more
        # than the rest of a small repair, so they are kept for a count that fell.
        return ""
    lost = count_lost_bodies(mesh, repaired) if real is None else _count_missing(*real, repaired)
    if lost:
        return f"the repair lost {lost} of the input's bodies"
    return ""  # fewer bodies because overlapping ones were unioned: each is still held


def _fall_back(
    mesh: trimesh.Trimesh,
    real: tuple[Sequence[trimesh.Trimesh], float] | None,
    stages: list[tuple[str, trimesh.Trimesh, MeshQuality | None]],
    report: RepairReport,
    reason: str,
) -> tuple[trimesh.Trimesh, MeshQuality]:
    """The latest stage that is not worse than the input (the cleaned input is never)."""
    assert report.before is not None
    for name, stage, quality in reversed(stages):
        measured = quality if quality is not None else assess(stage)
        if name == "cleaned" or not _worse_than_input(mesh, real, report.before, stage, measured):
            report.fell_back_to, report.reason = name, reason
            report.notes.append(f"returned the {name} stage: {reason}")
            return stage, measured
    raise AssertionError("the cleaned stage is always a fallback")


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


def _check_options(
    debris_fraction: float, merge_tolerance: float | None, time_limit: float | None
) -> None:
    """Refuse option values that would make the repair meaningless."""
    if time_limit is not None and not time_limit >= 0.0:
        raise ValueError(f"time_limit must not be negative, got {time_limit!r}")
    if not 0.0 <= debris_fraction < 1.0:
        raise ValueError(f"debris_fraction must lie in [0, 1), got {debris_fraction!r}")
    if merge_tolerance is not None and not merge_tolerance > 0.0:
        raise ValueError(f"merge_tolerance must be positive, got {merge_tolerance!r}")


def _cleaned(
    welded: trimesh.Trimesh, referenced: int
) -> tuple[trimesh.Trimesh, tuple[int, int, int], NDArray[np.int64]]:
    """Return ``welded`` without degenerate or duplicate faces, and what was removed.

    Parameters
    ----------
    welded
        The input with its vertices welded (:func:`_welded`); modified in place.
    referenced
        How many vertices the input's faces used before welding.

    Returns
    -------
    cleaned
        ``welded`` itself; unreferenced vertices dropped.
    counts
        ``(vertices merged, degenerate faces removed, duplicate faces removed)``.
    kept
        ``(k,) int64``: which of ``welded``'s faces (as given) each face of ``cleaned`` is.
    """
    merged = referenced - len(welded.vertices)
    kept = np.arange(len(welded.faces), dtype=np.int64)
    keep = welded.nondegenerate_faces(height=trimesh.tol.merge)
    degenerate = int((~keep).sum())
    if degenerate:
        welded.update_faces(keep)
        kept = kept[keep]
    unique = welded.unique_faces()
    duplicates = len(welded.faces) - int(unique.sum())
    if duplicates:
        welded.update_faces(unique)
        kept = kept[unique]
    if degenerate or duplicates:
        welded.remove_unreferenced_vertices()
    return welded, (merged, degenerate, duplicates), kept


def _referenced_count(faces: Faces) -> int:
    """How many distinct vertices ``faces`` (``(m, 3) int``) use."""
    faces = np.asarray(faces, dtype=np.int64)
    if len(faces) == 0:
        return 0
    return int(np.count_nonzero(np.bincount(faces.ravel())))


def _bodies(
    mesh: trimesh.Trimesh, labels: tuple[int, NDArray[np.int32]] | None = None
) -> list[trimesh.Trimesh]:
    """Split ``mesh`` into bodies, faces joined through shared vertices, as bare meshes, in
    the order of their :func:`body_labels` (``labels``, where the caller has them).

    Vertices rather than edges: a surface torn along non-manifold edges, or two lobes
    pinched at a corner, is one damaged body for MeshFix to mend, not many open scraps.
    """
    count, face_labels = body_labels(mesh.faces, len(mesh.vertices)) if labels is None else labels
    if count <= 1:
        return [mesh] if count else []
    order = np.argsort(face_labels, kind="stable")
    splits = np.flatnonzero(np.diff(face_labels[order])) + 1
    return [_submesh(mesh, group) for group in np.split(order, splits)]


def _submesh(mesh: trimesh.Trimesh, face_index: NDArray[np.int64]) -> trimesh.Trimesh:
    """Return the faces ``face_index`` of ``mesh`` as a bare mesh with compact vertices."""
    faces = mesh.faces[face_index]
    used, inverse = np.unique(faces.ravel(), return_inverse=True)
    return _bare(mesh.vertices[used], inverse.reshape(-1, 3))


def _without_debris(
    bodies: Sequence[trimesh.Trimesh], whole: trimesh.Trimesh, debris_fraction: float
) -> list[trimesh.Trimesh]:
    """The ``bodies`` that are not too small in both area and extent to be a real part."""
    if len(bodies) <= 1:
        return list(bodies)  # a lone body is the whole mesh, never its debris
    area, diagonal = whole.area, _diagonal(whole)
    return [b for b in bodies if not _is_debris(b, area, diagonal, debris_fraction)]


def _is_debris(body: trimesh.Trimesh, area: float, diagonal: float, fraction: float) -> bool:
    """Say whether ``body`` is tiny beside a whole of this ``area`` and ``diagonal``."""
    tiny = body.area < fraction * area
    small = _diagonal(body) < np.sqrt(fraction) * diagonal
    return bool(tiny and small)


def _pieces(
    body: trimesh.Trimesh, topology: EdgeTopology, report: RepairReport
) -> list[trimesh.Trimesh]:
    """``body`` cut along its non-manifold edges and vertices, when that leaves closed pieces.

    Parts that touched in the file (gears in mesh, a stack of plates) become one body when
    their positions are welded, joined by non-manifold edges and pinched vertices. Cut apart
    where more than two faces meet, each is a closed part again, and the union in
    :func:`_combine` joins them as solids; MeshFix would instead cut the contacts open and
    fill what it could. An open body whose pieces are closed but for flat ones is cut too,
    and its flat pieces left out (said in ``report``): a closed part with a stray face
    hanging from one of its edges (a fin) went to MeshFix whole, which cut a box open along
    the fin's plane and returned half of it, and took 1.5-3 s to drop the fin from a
    3k-face part; a flat piece encloses no volume, and thickening it would add a wall the
    part does not have. Any other body stays whole: cut apart, the open pieces of an
    assembly (assimp's regr01.obj) were each closed by MeshFix into solids that crossed
    their neighbours where no union could part them. ``topology`` is :func:`edge_topology`
    of ``body``.
    """
    if not (topology.non_manifold_edges or topology.non_manifold_vertices):
        return [body]
    # trimesh's split fills each piece's holes of three and four edges unless told not to:
    # a box whose top was a fin's grid came back closed by two triangles, the grid dropped
    pieces = [_bare(p.vertices, p.faces)
              for p in body.split(only_watertight=False, repair=False)]
    closed = [_is_closed_manifold(p) for p in pieces]
    if len(pieces) < 2 or not any(closed):
        return [body]
    if all(closed):
        return pieces
    if topology.boundary_edges == 0:
        return [body]
    fins = [p for p, c in zip(pieces, closed, strict=True)
            if not c and _is_flat_points(p.vertices)]
    if len(fins) + sum(closed) < len(pieces):
        return [body]
    faces = sum(len(f.faces) for f in fins)
    report.notes.append(
        f"{len(fins)} flat open piece{'s' if len(fins) > 1 else ''} "
        f"({faces} face{'s' if faces > 1 else ''}) "
        "hanging from a closed part's edges enclosed no volume and "
        f"{'were' if len(fins) > 1 else 'was'} left out"
    )
    return [p for p, c in zip(pieces, closed, strict=True) if c]


def _solid_body(
    body: trimesh.Trimesh,
    thickness: float,
    report: RepairReport,
    *,
    crossed: int | None,
    deadline: float,
    nudges: list[Nudge],
    topology: EdgeTopology | None = None,
) -> trimesh.Trimesh | None:
    """Return ``body`` as a closed manifold free of self-intersections, or ``None``.

    ``crossed`` is how many of its faces cross its own when that is known, else ``None``
    (it is then tested); ``topology`` is its :func:`edge_topology` where the caller has it.
    The nudge that parts a body whose faces only touch is added to ``nudges``.

    A body that is already sound is returned unchanged, wound as it came (an inward winding
    may mean a cavity; :func:`_combine` decides). A closed body whose faces only touch is
    returned with its needles collapsed, for :func:`_resolve_crossings` to nudge. Others are
    repaired with MeshFix. A closed body whose faces cross is judged against the volume it
    winds around (:func:`workers.mesh.winding.union_volume`), not its signed volume, which
    counts the overlap twice (or, where a fold turns the surface inside out, subtracts it);
    when MeshFix's mend loses or gains more than 1 % of that, the body is made again as the
    solid it winds around (:func:`_self_union`). A closed body neither can mend is kept as
    it came; an open one is made solid by :func:`_open_solid`.

    A closed body that passes through itself (:func:`_passes_through`) is not nudged: a nudge
    parts only faces that touch, and trying costs five intersection tests. It is made again
    as the solid it winds around before MeshFix is tried, and MeshFix only where that fails.
    """
    if topology is None:
        topology = edge_topology(body.faces, len(body.vertices))
    closed = _is_closed_solid(body, topology)
    if closed:
        if crossed is None:
            crossed = count_self_intersecting_faces(body.vertices, body.faces)
        if crossed == 0:
            return body
    collapsed = _collapsed(body) if closed else None
    wound: UnionVolume | None = None
    through = False
    if collapsed is not None:
        same = _same_triangles(body, collapsed)
        if not same:
            crossed = count_self_intersecting_faces(collapsed.vertices, collapsed.faces)
        if crossed == 0:
            return collapsed
        _on_time(deadline)
        wound = union_volume(_outward_copy(body), rays=_UNION_RAYS)
        through = _passes_through(body, wound)
        # When the collapse changed no triangle, the body itself is nudged: its crossing
        # test has just been asked, so the nudge's first test is a kept answer (0.6 s of
        # 6 s on a synthetic CAD part). The nudge is applied after the booleans, whose
        # result is measured whole, so each try of a few faces is tested only near them
        # (0.4-1.2 s less on each synthetic CAD part, a tenth of its repair).
        parted = None if through else nudged(_outward_copy(body if same else collapsed),
                                             near_only=True)
        if parted is not None:
            # Its faces only touch: it is kept exact for the booleans (a nudged body would
            # meet its neighbours at a slant) and its nudge is applied once they are done
            # (:func:`_renudged`). The booleans take it wound outwards, so it is nudged
            # so: MeshFix's test reads the winding to the last bit, and a mirrored copy
            # left wound inwards that no nudge parted (mirrored_overlap-0) parted at once
            # turned outwards, instead of being made again by a level set (3 s).
            source = body if same else collapsed
            moved = np.any(parted.vertices != source.vertices, axis=1)
            nudges.append((source.vertices[moved], parted.vertices[moved]))
            return collapsed
    _on_time(deadline)
    if _is_flat_points(body.vertices):
        # MeshFix cannot give a flat body a volume (it can only close it onto itself), and
        # on a fan of crossing triangles it spent seconds trying: the hull is the answer.
        return _sealed_by_hull(body, thickness, report)
    if through and wound is not None:
        # MeshFix deletes the faces that cross and fills the holes they leave, which keeps
        # the walls inside the overlap: its mend of every synthetic body that passes through
        # itself drifted (by half on the figure-eights, 4 to 91 % on the offset shells),
        # after up to 0.8 s. The self-union is tried first; MeshFix only where it fails.
        united = _self_union(body, wound, deadline)
        if united is not None:
            return _made_again(body, united, report)
    # a closed body wound inwards may be a cavity: its mend is wound inwards too, for
    # _combine to place
    inward = closed and signed_volume(body.vertices, body.faces) < 0
    fixed = _meshfix(body, report, inward=inward)
    wound_closed = closed or _is_closed_wound(topology)
    if not wound_closed:
        return _open_solid(body, fixed, thickness, report, deadline)
    _on_time(deadline)
    if wound is None:
        wound = union_volume(_outward_copy(body), rays=_UNION_RAYS)
    if fixed is not None and not _drifted(wound.volume, fixed):
        return fixed
    _on_time(deadline)
    united = None if through else _self_union(body, wound, deadline)
    if united is not None:
        return _made_again(body, united, report)
    if fixed is not None and not closed:
        return fixed
    if closed:
        report.notes.append(
            f"a closed body of {len(body.faces)} faces kept its crossing faces: "
            "removing them would have changed its volume"
        )
        return body
    return _sealed_by_hull(body, thickness, report)


def _open_solid(
    body: trimesh.Trimesh,
    fixed: trimesh.Trimesh | None,
    thickness: float,
    report: RepairReport,
    deadline: float,
) -> trimesh.Trimesh | None:
    """An open body made solid: MeshFix's mend (``fixed``) where it kept the body, else the
    solid the body's surface encloses, else its hull (:func:`_sealed_by_hull`).

    MeshFix's mend is taken as it is where it has at least :data:`_MESHFIX_KEPT_SHARE` of
    the body's faces (a hole fill only adds faces). Where it has fewer, or MeshFix could not
    close the body, the body's surface is asked what it encloses: vertical rays through
    it (:func:`workers.mesh.winding.union_volume`) are balanced where it is closed but for
    narrow cracks, and then the mend is kept only where it holds that volume to
    :data:`_OPEN_DRIFT`, and otherwise the body is made again as the solid it winds around
    (a level set). A star prism whose walls were split, their new corners 100 µm off the
    caps' edges (cracks wider than :func:`_split_cracks` closes), came back from MeshFix as
    a third of its volume (pymeshfix's too), and an L-shaped one with 10 µm cracks, before
    those were split shut, as a tetrahedron of 0.003 mm³.
    """
    if fixed is not None and len(fixed.faces) >= _MESHFIX_KEPT_SHARE * len(body.faces):
        return fixed
    _on_time(deadline)
    outward = _outward_copy(body)
    wound = union_volume(outward, rays=_UNION_RAYS)
    enclosed = wound.volume > 0 and wound.unbalanced_rays <= _OPEN_UNBALANCED * wound.rays_hit
    if enclosed and fixed is not None and (
            abs(abs(fixed.volume) - wound.volume) <= _OPEN_DRIFT * wound.volume):
        return fixed
    if enclosed:
        try:
            solid = winding_solid(outward, deadline=deadline, simplify=_UNION_SIMPLIFY)
        except DeadlinePassed:
            raise _OutOfTime from None
        if not _off_volume(solid, wound.volume):
            # rays through the cracks vote wrongly now and then: the blobs they leave are
            # dropped as debris would be
            united = _without_blobs(_from_manifold(solid))
            report.notes.append(
                f"an open body of {len(body.faces)} faces that MeshFix could not mend was "
                f"made again as the solid its surface encloses ({len(united.faces)} faces)"
            )
            return united  # wound outwards, as MeshFix's mend of an open body is
    if fixed is not None and _diagonal(fixed) >= _MESHFIX_KEPT_SHARE * _diagonal(body):
        return fixed
    return _sealed_by_hull(body, thickness, report)


def _without_blobs(solid: trimesh.Trimesh) -> trimesh.Trimesh:
    """``solid`` without its bodies that are debris beside it (:data:`_LEVEL_SET_DEBRIS`)."""
    labels = body_labels(solid.faces, len(solid.vertices))
    bodies = _bodies(solid, labels)
    if len(bodies) < 2:
        return solid
    area, diagonal = solid.area, _diagonal(solid)
    real = [i for i, body in enumerate(bodies)
            if not _is_debris(body, area, diagonal, _LEVEL_SET_DEBRIS)]
    return _submesh(solid, np.flatnonzero(np.isin(labels[1], real)))


def _made_again(
    body: trimesh.Trimesh, united: trimesh.Trimesh, report: RepairReport
) -> trimesh.Trimesh:
    """``united``, the self-union of ``body``, said in ``report``."""
    report.notes.append(
        f"a closed body of {len(body.faces)} faces that passes through itself was "
        f"made again as the solid it winds around ({len(united.faces)} faces)"
    )
    return united


def _sealed_by_hull(
    body: trimesh.Trimesh, thickness: float, report: RepairReport
) -> trimesh.Trimesh | None:
    """``body`` sealed by its (thickened) hull when that keeps its shape, else ``None``,
    either way counted and said in ``report``."""
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


def _is_closed_solid(body: trimesh.Trimesh, topology: EdgeTopology | None = None) -> bool:
    """Closed, consistently wound, manifold and not flat (crossing faces allowed);
    ``topology`` is :func:`edge_topology` of ``body`` where the caller has it."""
    if topology is None:
        topology = edge_topology(body.faces, len(body.vertices))
    return _closed_manifold(topology) and not _is_flat(body, topology)


def _is_closed_wound(topology: EdgeTopology) -> bool:
    """Closed and consistently wound (pinched vertices and crossing faces allowed), read off
    a body's :func:`edge_topology`: it has a well-defined inside, the points it winds
    around."""
    return topology.watertight and topology.winding_consistent


def _is_closed_manifold(body: trimesh.Trimesh) -> bool:
    """Closed, consistently wound, edge- and vertex-manifold (crossing faces allowed)."""
    return _closed_manifold(edge_topology(body.faces, len(body.vertices)))


def _closed_manifold(topology: EdgeTopology) -> bool:
    """:func:`_is_closed_manifold` read off a body's :func:`edge_topology`."""
    return topology.watertight and topology.winding_consistent and not (
        topology.non_manifold_vertices
    )


def _same_triangles(first: trimesh.Trimesh, second: trimesh.Trimesh) -> bool:
    """Say whether two meshes hold the same triangles (corner positions), in any order and
    winding: then they cross where each other does, and one intersection test tells both.
    manifold3d's ``simplify(0)`` collapses nothing on most bodies."""
    if len(first.faces) != len(second.faces):
        return False
    corners = np.vstack([first.vertices, second.vertices])
    _, ids = np.unique(corners, axis=0, return_inverse=True)
    ids = ids.ravel()
    triangles = [
        np.sort(ids[faces], axis=1)
        for faces in (first.faces, second.faces + len(first.vertices))
    ]
    ordered = [t[np.lexsort(t.T[::-1])] for t in triangles]
    return bool(np.array_equal(ordered[0], ordered[1]))


def _passes_through(body: trimesh.Trimesh, wound: UnionVolume) -> bool:
    """Say whether the closed ``body``'s faces truly cross, not merely touch.

    Where faces cross, the body winds around some points twice (or, inside a fold turned
    inside out, negatively), so its signed volume and the volume it winds around (``wound``)
    part; faces that only touch leave them equal to the estimate's sampling error. The gap
    must exceed :data:`_THROUGH_ERRORS` standard errors and :data:`_THROUGH_FRACTION` of the
    volume. A body wound inwards winds around nothing positively, so it is not judged.
    """
    signed = signed_volume(body.vertices, body.faces)
    if signed <= 0:
        return False
    gap = abs(signed - wound.volume)
    return bool(gap > max(_THROUGH_ERRORS * wound.standard_error, _THROUGH_FRACTION * signed))


def _drifted(volume: float, fixed: trimesh.Trimesh) -> bool:
    """Say whether ``fixed`` lost or gained more than the accepted share of ``volume``."""
    return bool(abs(abs(fixed.volume) - abs(volume)) > _VOLUME_DRIFT * abs(volume))


def _self_union(
    body: trimesh.Trimesh, wound: UnionVolume, deadline: float
) -> trimesh.Trimesh | None:
    """The solid ``body`` winds around, by a level set (:func:`winding_solid`), or ``None``
    when it drifts by more than :data:`_LEVEL_SET_DRIFT` from that solid's volume;
    :class:`_OutOfTime` when the deadline passes while it is made.

    That volume is ``wound``, the estimate of the volume ``body`` winds around, where the
    body passes through itself by more than the estimate's error (:func:`_passes_through`);
    where it does not, its overlap is too small to measure and its signed volume is the
    closer figure (the corpus chair: 2.52e-5 signed, 2.66e-5 ± 0.12e-5 estimated).

    The whole body is made again at :data:`workers.mesh.winding.GRID_CELLS` cells first;
    when that drifts (a thin part: the chair of the corpus, 2 % of a 64-cell grid thick,
    came out at 2 % of its volume) and the faces that cross lie in a small box, only that
    box is made again, finely, and the rest kept exact (:func:`_patched_union`).

    A body wound inwards (a cavity, or a part whose file turned it inside out) winds around
    no point positively: it is united turned outwards, against the volume that winds around
    (``wound`` is measured so, :func:`_outward_copy`), and given back wound inwards for
    :func:`_combine` to place.
    """
    inward = signed_volume(body.vertices, body.faces) < 0
    outward = _bare(body.vertices, body.faces[:, ::-1]) if inward else body
    if wound.volume <= 0:
        return None
    if not _passes_through(outward, wound):
        volume = signed_volume(outward.vertices, outward.faces)
    else:
        volume = wound.volume
    try:
        solid = winding_solid(outward, deadline=deadline, simplify=_UNION_SIMPLIFY)
        united = None if _off_volume(solid, volume) else _from_manifold(solid)
        if united is None:
            united = _patched_union(outward, volume, deadline)
    except DeadlinePassed:
        raise _OutOfTime from None
    if united is None or not inward:
        return united
    return _bare(united.vertices, united.faces[:, ::-1])


def _off_volume(solid: manifold3d.Manifold, wound: float) -> bool:
    """Say whether a level-set ``solid`` is empty or drifts from ``wound`` by more than
    :data:`_LEVEL_SET_DRIFT`."""
    return solid.is_empty() or abs(solid.volume() - wound) > _LEVEL_SET_DRIFT * wound


def _patched_union(
    body: trimesh.Trimesh, wound: float, deadline: float
) -> trimesh.Trimesh | None:
    """``body`` kept exact outside a box round its crossing faces, made again inside it.

    The box holds every crossing face with :data:`_PATCH_MARGIN` of the diagonal to spare,
    so what lies outside it is the body's own surface, cut by manifold3d; inside, the solid
    the whole body winds around is made at :data:`_PATCH_CELLS` cells along the box's
    longest side and overlaps the cut by two cells, and the two are unioned. Only a box at
    most :data:`_PATCH_SHARE` of the body's size is patched (else the patch is a finer
    level set of nearly all of it, at eight times the cost). On the corpus chair (2,684
    faces, 111 crossing in a strip 13 % of its size) the patch is 0.7 % off its volume and
    takes under a second. ``None`` when the crossings cannot be located, the box is too
    large, or the result drifts from ``wound``.
    """
    try:
        crossing = crossing_faces(body.vertices, body.faces)
    except MeshFixAnswerError:
        return None
    if len(crossing) == 0:
        return None
    corners = body.vertices[body.faces[crossing].ravel()]
    margin = _PATCH_MARGIN * _diagonal(body)
    lo, hi = corners.min(axis=0) - margin, corners.max(axis=0) + margin
    if (hi - lo).max() > _PATCH_SHARE * np.ptp(body.vertices, axis=0).max():
        return None
    try:
        exact = _to_manifold(body) - manifold3d.Manifold.cube(hi - lo).translate(lo)
    except ValueError:
        return None
    patch = winding_solid(body, cells=_PATCH_CELLS, within=(lo, hi), deadline=deadline)
    solid = exact + patch
    return None if _off_volume(solid, wound) else _from_manifold(solid)


def _is_sound(body: trimesh.Trimesh, *, intersections: bool) -> bool:
    """Closed, consistently wound, manifold, with volume, and free of self-intersections.

    ``intersections=False`` skips the (costly) intersection test, for bodies of a mesh that
    was measured free of them as a whole.
    """
    if not _is_closed_solid(body):
        return False
    return not intersections or count_self_intersecting_faces(body.vertices, body.faces) == 0


def _meshfix(
    body: trimesh.Trimesh, report: RepairReport, *, inward: bool = False
) -> trimesh.Trimesh | None:
    """Repair one body with MeshFix; ``None`` when the result is not a sound solid. The
    result is wound outwards, or inwards where ``inward`` (a closed body wound inwards, which
    may be a cavity).

    MeshFix first cuts non-manifold edges and vertices on load, then fills every hole and
    removes degenerate and self-intersecting faces. Only when that leaves a body that is
    not sound is it retried keeping MeshFix's largest component (a body can fall apart into
    scraps when its non-manifold parts are cut). When MeshFix's ``clean`` reports that no
    face crosses any more, it is taken at its word to save a second test; the final
    :func:`assess` of the whole output is the check that counts (on cycloidal.ply's welded
    gears it caught crossings ``clean`` missed).
    """
    for keep_largest in (False, True):
        tmesh, (centre, scale) = meshfix_mesh(body.vertices, body.faces)
        holes = tmesh.n_boundaries
        tmesh.fill_small_boundaries(0, True)
        if keep_largest:
            tmesh.remove_smallest_components()
        uncrossed = tmesh.clean()
        vertices, faces = tmesh.return_arrays()
        fixed = _bare(centre + scale * vertices, faces)
        if len(fixed.faces) and _is_sound(fixed, intersections=not uncrossed):
            report.holes_filled += holes
            if inward:
                return fixed if fixed.volume < 0 else _bare(fixed.vertices, fixed.faces[:, ::-1])
            return _outward(fixed, report)
    return None


def _resolve_crossings(
    solid: trimesh.Trimesh, report: RepairReport, deadline: float, nudges: Sequence[Nudge] = ()
) -> tuple[trimesh.Trimesh, MeshQuality]:
    """Clear the crossing faces left where bodies met at a slant or faces touch.

    manifold3d's output is manifold but only *epsilon*-valid: needle triangles where faces of
    different bodies nearly coincide can cross by rounding. Collapsing them (manifold3d's
    ``simplify`` at zero tolerance, which moves no surface) usually suffices; faces left
    touching are then nudged apart (:func:`workers.mesh.crossings.nudged`). Each candidate
    is welded, as the user's mesh will be read, before it is measured and nudged, so that
    the nudge starts from the crossing test the measurement made (MeshFix's answers are
    kept by the arrays' digest) and the measurement of a nudged candidate reuses the nudge's
    last test: on a synthetic CAD part (14k faces, 5,897 faces touching) that saved three of
    the seven tests here. The first printable candidate is kept, else the one with the
    fewest crossings. MeshFix's clean-up is not tried on the whole result: over the corpus
    it never helped there, and on large assemblies it cost tens of seconds.

    The ``nudges`` that parted the faces of bodies that only touch (:func:`_solid_body`) are
    applied first, to the vertices the booleans kept where they were (:func:`_renudged`),
    and the candidates start from that mesh: on the synthetic CAD parts it leaves 20 to 27
    faces crossing where the booleans cut faces (5,897 to 6,005 without), which one nudge
    parts, so two tests instead of three.

    Returns
    -------
    solid
        The mesh to keep, welded.
    quality
        Its :func:`assess` measurement, taken here anyway to find the crossings.
    """
    solid = _welded(solid.vertices, solid.faces)
    renudged = _renudged(solid, nudges)
    solid = solid if renudged is None else renudged
    best = (solid, _measure(solid))
    crossing = best[1].self_intersecting_faces
    if renudged is not None:
        report.notes.append(f"the nudges that parted touching faces of bodies were applied: "
                            f"crossing faces left {crossing}")
    if crossing == 0:
        return best
    chosen = ""
    for candidate, how in _uncrossing_candidates(solid):
        if time.monotonic() > deadline:
            report.notes.append("the time budget ran out while crossing faces were cleared")
            break
        quality = _measure(candidate)
        fewer = quality.self_intersecting_faces < best[1].self_intersecting_faces
        if fewer and quality.score >= best[1].score:
            best, chosen = (candidate, quality), how
        if quality.printable:
            break
    if chosen:
        left = best[1].self_intersecting_faces
        report.notes.append(f"{chosen}: crossing faces {crossing} -> {left}")
    return best


def _renudged(solid: trimesh.Trimesh, nudges: Sequence[Nudge]) -> trimesh.Trimesh | None:
    """``solid`` (welded) with each vertex that lies exactly where a nudged vertex was moved
    as that one was, welded; ``None`` when no vertex does.

    manifold3d's booleans keep the vertices of the faces they do not cut where they were, to
    the bit, so a body's nudge carries over to the faces of it the union kept; the faces cut
    where bodies met have new vertices, and are measured and nudged as any.
    """
    if not nudges:
        return None
    sources = np.vstack([where for where, _ in nudges])
    targets = np.vstack([moved for _, moved in nudges])
    vertices = np.array(solid.vertices, dtype=np.float64)
    _, ids = np.unique(np.vstack([sources, vertices]), axis=0, return_inverse=True)
    ids = ids.ravel()
    source_of = np.full(int(ids.max()) + 1, -1, dtype=np.int64)
    source_of[ids[: len(sources)]] = np.arange(len(sources))
    found = source_of[ids[len(sources):]]
    hit = found >= 0
    if not hit.any():
        return None
    vertices[hit] = targets[found[hit]]
    return _welded(vertices, solid.faces)


def _kept_apart(solid: trimesh.Trimesh, report: RepairReport) -> trimesh.Trimesh:
    """Keep the lobes of a solid that touch themselves at a corner or an edge a hair apart.

    manifold3d represents a solid whose parts meet only along an edge or at a corner (gears
    in mesh) as a manifold with two vertices at the same place, one per lobe. Welding the
    file by position, as a printer and :func:`assess` do, joins them into a pinched vertex or
    a non-manifold edge. Each such vertex is moved towards the middle of its own neighbours
    by :data:`_CONTACT_GAP` of the diagonal (at least a hundred welding tolerances), which
    is into its own lobe: the parts stay where they were and stay apart once welded.
    """
    digits = trimesh.util.decimal_to_digits(trimesh.tol.merge)
    keys = np.round(solid.vertices * 10.0**digits).astype(np.int64)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    shared = np.flatnonzero(counts[inverse.ravel()] > 1)
    if len(shared) == 0:
        return solid
    edges = solid.edges_unique
    size = len(solid.vertices)
    ends = (np.r_[edges[:, 0], edges[:, 1]], np.r_[edges[:, 1], edges[:, 0]])
    ring = sparse.coo_matrix((np.ones(2 * len(edges)), ends), (size, size)).tocsr()[shared]
    middle = (ring @ solid.vertices) / np.maximum(ring.sum(axis=1), 1.0)
    towards = np.asarray(middle) - solid.vertices[shared]
    length = np.linalg.norm(towards, axis=1, keepdims=True)
    gap = max(_CONTACT_GAP * _diagonal(solid), 100 * trimesh.tol.merge)
    vertices = solid.vertices.copy()
    vertices[shared] += towards / np.maximum(length, np.finfo(float).tiny) * np.minimum(
        gap, 0.5 * length
    )
    report.notes.append(f"{len(shared)} vertices where parts touched were kept apart")
    return _bare(vertices, solid.faces)


def _uncrossing_candidates(solid: trimesh.Trimesh) -> Iterator[tuple[trimesh.Trimesh, str]]:
    """The welded ``solid`` with needles collapsed, then nudged; then ``solid`` itself
    nudged; each welded, with what was done to it, in words. A collapse that changed no
    triangle is skipped: it crosses where ``solid`` does."""
    collapsed = _collapsed(solid)
    if collapsed is not None and not _same_triangles(solid, collapsed):
        collapsed = _welded(collapsed.vertices, collapsed.faces)
        yield collapsed, "needle triangles were collapsed"
        parted = nudged(collapsed)
        if parted is not None:
            yield (_welded(parted.vertices, parted.faces),
                   "needle triangles were collapsed and touching faces nudged apart")
    parted = nudged(solid)
    if parted is not None:
        yield _welded(parted.vertices, parted.faces), "touching faces were nudged apart"


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


def _is_flat(body: trimesh.Trimesh, topology: EdgeTopology | None = None) -> bool:
    """Say whether ``body`` encloses (next to) no volume for its size; ``topology`` is its
    :func:`edge_topology` where the caller has it."""
    if topology is None:
        topology = edge_topology(body.faces, len(body.vertices))
    if not topology.watertight:
        return True
    volume = signed_volume(body.vertices, body.faces)
    return bool(abs(volume) <= _FLAT_VOLUME_FRACTION * _diagonal(body) ** 3)


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
    for body, depth in zip(bodies, _nesting_depths(bodies), strict=True):
        inward = body.volume < 0  # once: trimesh checks its cache by hashing the arrays
        cavity = bool(inward and depth > 0)
        outward = _bare(body.vertices, body.faces[:, ::-1]) if inward else body
        if inward and not cavity:
            report.winding_flipped += len(body.faces)
        parts.append(_Part(_to_manifold(outward), depth, cavity))
    return parts


def _nesting_depths(bodies: Sequence[trimesh.Trimesh]) -> list[int]:
    """Count, for each body, the other bodies that contain it whole (tested at a few of its
    vertices).

    Every probe must be inside: a mirrored copy wound inwards that merely overlaps another
    body is a solid to turn outwards, not a cavity to subtract. Only a body whose box holds
    the other's box is asked (:func:`_boxes_holding`).
    """
    holding = _boxes_holding(bodies)
    if holding is None:
        raise _TooManyNested(f"more than {_MOST_NESTED_PAIRS} pairs of its bodies lie one "
                             "inside the other's box, too many to place in time")
    depths = [0] * len(bodies)
    probes = {j: _probes(bodies[j], _NESTING_PROBES) for j in np.unique(holding[1]).tolist()}
    for outer, inners in _grouped(*holding):
        inside = _inside_each(_outward_copy(bodies[outer]), [probes[j] for j in inners])
        for inner, held in zip(inners, inside, strict=True):
            depths[inner] += bool(held.all())
    return depths


def _inside_each(container: trimesh.Trimesh, probes: list[Points]) -> list[NDArray[np.bool_]]:
    """Whether each point of each array of ``probes`` lies inside ``container``, asked in one
    ray query."""
    inside = np.asarray(container.contains(np.vstack(probes)), dtype=bool)
    return np.split(inside, np.cumsum([len(p) for p in probes])[:-1])


def _boxes_holding(
    bodies: Sequence[trimesh.Trimesh], most: int = _MOST_NESTED_PAIRS
) -> tuple[Faces, Faces] | None:
    """``(outer, inner)``, ``(k,) int64`` each: the pairs of bodies (``outer != inner``) where
    the bounding box of ``outer`` holds that of ``inner``; ``None`` when there are more than
    ``most`` pairs whose centres are close enough to be compared (counted before any is).

    A box can hold only boxes whose centres lie within half its largest side of its own, so
    each body asks a k-d tree of the centres for those (in the maximum norm) and only they
    are compared. Comparing every pair at once cost 3.7 s and an (n, n, 3) array on a
    printable mesh of 8,000 small bodies, and grows with the square of the bodies (a 5M-face
    upload can hold 400,000).
    """
    boxes = np.array([body.bounds for body in bodies], dtype=np.float64).reshape(-1, 2, 3)
    lower, upper = boxes[:, 0], boxes[:, 1]
    centres = 0.5 * (lower + upper)
    reach = 0.5 * (upper - lower).max(axis=1) * (1.0 + 1e-9)
    tree = cKDTree(centres)
    found = tree.query_ball_point(centres, r=reach, p=np.inf, return_length=True)
    if int(np.sum(found)) - len(bodies) > most:  # each body finds itself
        return None
    near = tree.query_ball_point(centres, r=reach, p=np.inf)
    counts = np.fromiter((len(found) for found in near), dtype=np.int64, count=len(bodies))
    outer = np.repeat(np.arange(len(bodies), dtype=np.int64), counts)
    inner = np.fromiter((j for found in near for j in found), dtype=np.int64,
                        count=int(counts.sum()))
    keep = (outer != inner) & np.all(lower[outer] <= lower[inner], axis=1) & np.all(
        upper[inner] <= upper[outer], axis=1
    )
    return outer[keep], inner[keep]


def _grouped(keys: Faces, values: Faces) -> Iterator[tuple[int, list[int]]]:
    """``(key, [values])`` for each distinct key of the pairs ``(keys[i], values[i])``."""
    if len(keys) == 0:
        return
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    for first, last in zip(starts, [*starts[1:], len(keys)], strict=True):
        yield int(keys[first]), [int(v) for v in values[first:last]]


def _in_others_material(bodies: Sequence[trimesh.Trimesh]) -> int:
    """Count the sound outward ``bodies`` that lie whole inside another body's material,
    though no faces cross: a boss or a pin exported as a body of its own inside the part.

    A slicer prints such a body as part of the one around it, but its volume is counted
    twice (and with it the print's weight), and whether faces tangent to its container's are
    read as crossing depends on the last bits of the positions: the synthetic CAD part's
    boss, tangent to its plate's faces, had 342 crossing faces at the origin and none
    1e4 mm away, so the same part was united at one place and kept doubled at the other.
    Its probes lie just inside it (:func:`_inner_probes`), so a tangent body is still read
    inside; a probe is in another's material where the bodies holding it, outward ones
    counted +1 and inward ones (cavities) -1, sum above zero, so an island in a cavity is
    not. Only bodies whose box another's holds are probed (:func:`_boxes_holding`), and
    none where that makes more than :data:`_MOST_NESTED_PAIRS` pairs.
    """
    if len(bodies) < 2:
        return 0
    holding = _boxes_holding(bodies)
    if holding is None:
        return 0
    probes = {j: _inner_probes(bodies[j]) for j in np.unique(holding[1]).tolist()
              if bodies[j].volume > 0}
    winding = {j: np.zeros(len(points), dtype=np.int64) for j, points in probes.items()}
    for outer, inners in _grouped(*holding):
        asked = [j for j in inners if j in probes]
        if not asked:
            continue
        container = bodies[outer]
        sign = 1 if container.volume > 0 else -1
        inside = _inside_each(_outward_copy(container), [probes[j] for j in asked])
        for inner, held in zip(asked, inside, strict=True):
            winding[inner] += sign * held
    return sum(bool(2 * np.count_nonzero(w > 0) > len(w)) for w in winding.values())


def _inner_probes(body: trimesh.Trimesh) -> Points:
    """The centres of the largest faces of the outward ``body``, moved inwards along their
    normals by :data:`_MATERIAL_PROBE_DEPTH` of its diagonal (:data:`_MATERIAL_PROBES` of
    them at most)."""
    largest = np.argsort(body.area_faces)[-_MATERIAL_PROBES:]
    depth = _MATERIAL_PROBE_DEPTH * _diagonal(body)
    probes: Points = body.triangles_center[largest] - depth * body.face_normals[largest]
    return probes


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
