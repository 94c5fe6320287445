"""Style presets: low poly, organic, mechanical, futuristic and a custom mix.

:func:`apply_style` is pure: it works on a position-welded copy of the mesh it is given and
returns a new mesh. Only positions and faces survive a style (decimation, subdivision and
booleans create vertices that old colours and UVs cannot follow); texturing comes after.

Every preset keeps a closed mesh closed and outward: "closed" is judged on the positions
welded (every edge shared by exactly two faces, neighbours wound alike), because the flat and
crease shading the presets return splits vertices on purpose, one copy per face or per smooth
region, so that a renderer draws hard edges. Welding the returned positions gives back the
solid. The welded input is oriented once (winding made consistent, closed bodies turned
outwards) and every step keeps that orientation.

Parameters arrive from the API as JSON, so :func:`validate_style_params` checks them (names,
types, ranges) and fills in defaults before a job is queued; :func:`apply_style` checks again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import trimesh
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse import csgraph

from core.errors import InvalidInput

Faces = NDArray[np.int64]
Points = NDArray[np.float64]

STYLES: Final = ("low_poly", "organic", "mechanical", "futuristic", "custom")
"""Names of the style presets, in the order the studio lists them."""

MAX_FACES: Final = 2_000_000
"""Most faces subdivision may produce. A loop subdivision quadruples the faces; past two
million a GLB of the result is some 100 MB, more than a browser viewport handles well."""

_MIN_FACES: Final = 12
"""Fewest faces a decimation aims at (a box). Fewer cannot hold a solid worth styling."""

_DECIMATION_GROWTH: Final = 1.5
"""Factor by which the face target grows when a decimation spoiled a closed mesh."""

_DECIMATION_VOLUME_DRIFT: Final = 0.2
"""Largest relative volume change accepted from decimating a closed mesh. Far below a mesh's
natural face count, quadric collapses fold whole features in (a 20 mm test cube decimated to
13 faces keeps a quarter of its volume); a coarser look is fine, a different object is not."""

_TAUBIN_LAMBDA: Final = 0.5
_TAUBIN_NU: Final = 0.52
"""Taubin's shrink and inflate factors: ``1/lambda - 1/nu`` between 0 and 0.1 keeps the volume
(Taubin 1995); equal factors, trimesh's default, shrink the mesh a little on every pass."""

_CUSTOM_SMOOTHING_PASSES: Final = 40
"""Taubin passes of the custom style at ``smoothness=1``."""

_CUSTOM_MIN_RATIO: Final = 0.05
"""Decimation ratio of the custom style at ``detail=-1``."""

_EIGEN_FLOOR: Final = 1e-3
"""Smallest weight (eigenvalue, relative to the total) a plane direction needs to move a
vertex when snapping to planes. Two planes within a degree or two of each other meet along a
line that is ill defined; directions below this floor leave the vertex where it is."""

_FOLD_ANGLE: Final = 75.0
"""Most a face's normal may turn (degrees) in one snapping pass before its vertices are sent
back: a turn towards 90 degrees and beyond means the face is being folded over."""

_SNAP_REACH: Final = 1.0
"""Farthest a vertex may move in one snapping pass, in lengths of its longest edge. Keeps a
vertex caught between nearly parallel planes from being thrown across the mesh."""


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class _Number:
    """A numeric parameter: its default and inclusive range; ``integer`` refuses fractions."""

    default: float
    low: float
    high: float
    integer: bool = False

    def check(self, style: str, name: str, value: object) -> float | int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"{style}.{name} must be a number, got {value!r}")
        if not math.isfinite(value) or not self.low <= value <= self.high:
            raise InvalidInput(f"{style}.{name} must lie in [{self.low}, {self.high}], got {value}")
        if self.integer:
            if not float(value).is_integer():
                raise InvalidInput(f"{style}.{name} must be a whole number, got {value}")
            return int(value)
        return float(value)


@dataclass(frozen=True)
class _Choice:
    """A parameter taking one of a few names; the first is the default."""

    choices: tuple[str, ...]

    @property
    def default(self) -> str:
        return self.choices[0]

    def check(self, style: str, name: str, value: object) -> str:
        if value not in self.choices:
            raise InvalidInput(f"{style}.{name} must be one of {list(self.choices)}, got {value!r}")
        return str(value)


_SPECS: Final[dict[str, dict[str, _Number | _Choice]]] = {
    "low_poly": {"ratio": _Number(0.1, 0.01, 1.0)},
    "organic": {
        "iterations": _Number(10, 0, 100, integer=True),
        "subdivisions": _Number(1, 0, 2, integer=True),
        "max_faces": _Number(MAX_FACES, 1, MAX_FACES, integer=True),
    },
    "mechanical": {
        "angle": _Number(12.0, 1.0, 45.0),
        "feature_angle": _Number(30.0, 1.0, 90.0),
        "ratio": _Number(0.5, 0.01, 1.0),
        "iterations": _Number(3, 1, 10, integer=True),
    },
    "futuristic": {
        "ratio": _Number(0.05, 0.01, 1.0),
        "bevel": _Number(0.01, 0.0, 0.05),
    },
    "custom": {
        "smoothness": _Number(0.0, 0.0, 1.0),
        "detail": _Number(0.0, -1.0, 1.0),
        "symmetry": _Choice(("none", "x", "y", "z")),
        "keep": _Choice(("positive", "negative")),
        "max_faces": _Number(MAX_FACES, 1, MAX_FACES, integer=True),
    },
}
"""Parameters of each style: name -> default and range. See :func:`apply_style`."""


def validate_style_params(style: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check a style's parameters and return them complete, defaults filled in.

    The API calls this before queueing a job so that bad input is refused at once, with a
    message that names the parameter, rather than failing later in the worker.

    Raises
    ------
    InvalidInput
        The style is unknown, ``params`` is not a mapping, a name is unknown, or a value has
        the wrong type or lies outside its range.
    """
    if style not in _SPECS:
        raise InvalidInput(f"unknown style {style!r}; the styles are {list(STYLES)}")
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise InvalidInput(f"{style} parameters must be an object, got {type(params).__name__}")
    specs = _SPECS[style]
    unknown = sorted(set(params) - set(specs))
    if unknown:
        raise InvalidInput(
            f"unknown {style} parameter(s) {unknown}; the parameters are {sorted(specs)}"
        )
    return {
        name: spec.check(style, name, params[name]) if name in params else spec.default
        for name, spec in specs.items()
    }


# --------------------------------------------------------------------------- entry point


def apply_style(
    mesh: trimesh.Trimesh, style: str, params: Mapping[str, Any] | None = None
) -> trimesh.Trimesh:
    """Return a styled copy of ``mesh``; ``mesh`` itself is not changed.

    Styles and their parameters (defaults in brackets):

    ``low_poly``
        Quadric decimation to ``ratio`` of the faces [0.1, range 0.01-1], flat shaded.
    ``organic``
        ``subdivisions`` loop subdivisions [1, 0-2], fewer when they would exceed
        ``max_faces`` [2 000 000], then ``iterations`` Taubin smoothing passes [10, 0-100].
        Smoothing after subdividing rounds off noise without melting a coarse input: on a
        12-face box, Taubin passes act on the box's own corners and shrink it to a blob.
        Smooth shaded.
    ``mechanical``
        Quadric decimation to ``ratio`` [0.5, 0.01-1; 1 keeps every face], then faces whose
        normals lie within ``angle`` degrees [12, 1-45] of a common direction and touch each
        other are snapped into one plane (``iterations`` passes [3, 1-10]); edges sharper
        than ``feature_angle`` degrees [30, 1-90] are shaded hard. See
        :func:`snap_to_planes` for what "planar" can and cannot mean on curved input.
    ``futuristic``
        Quadric decimation to ``ratio`` [0.05, 0.01-1] for large facets, then every edge
        chamfered with a strip ``bevel`` [0.01, 0-0.05] of the bounding-box diagonal wide and
        every corner cut; flat shaded. See :func:`bevel_edges`.
    ``custom``
        ``smoothness`` [0, 0-1] scales Taubin smoothing up to 40 passes; ``detail`` [0, -1-1]
        decimates when negative (down to 5 % of the faces at -1) and loop-subdivides when
        positive (once up to 0.5, twice above; within ``max_faces``); ``symmetry`` ["none",
        "x", "y", "z"] mirrors the ``keep`` ["positive", "negative"] half across the plane
        through the input's bounding-box centre normal to that axis. Smooth shaded.

    Parameters
    ----------
    mesh
        ``vertices : (n, 3) float`` and ``faces : (m, 3) int``, ``m >= 1``.
    style
        One of :data:`STYLES`.
    params
        Parameters of the style; missing ones take their default.

    Returns
    -------
    styled
        A new mesh of positions and faces only. Flat and crease shading split vertices (one
        copy per face, or per smooth region); welding its positions gives the solid, which
        is closed whenever the welded input was, and outward (positive volume).

    Raises
    ------
    InvalidInput
        Unknown style, bad parameters (see :func:`validate_style_params`) or a mesh without
        faces.
    """
    options = validate_style_params(style, params)
    if len(mesh.faces) == 0:
        raise InvalidInput("cannot style a mesh without faces")
    solid = _oriented(welded(mesh))
    return _PRESETS[style](solid, is_closed(solid), options)


def welded(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Return a bare copy of ``mesh`` with coincident vertices merged (``trimesh.tol.merge``).

    Only positions and faces are copied, so neither split normals nor UV seams hold the weld
    apart; unused vertices are dropped.
    """
    bare = _bare(mesh.vertices, mesh.faces)
    bare.merge_vertices(merge_tex=True, merge_norm=True)
    return bare


def is_closed(mesh: trimesh.Trimesh) -> bool:
    """Whether ``mesh``, as indexed, bounds a solid: watertight and consistently wound."""
    return len(mesh.faces) > 0 and bool(mesh.is_watertight) and bool(mesh.is_winding_consistent)


# --------------------------------------------------------------------------- presets


def _low_poly(solid: trimesh.Trimesh, closed: bool, options: dict[str, Any]) -> trimesh.Trimesh:
    return flat_shaded(decimate(solid, options["ratio"], keep_closed=closed))


def _organic(solid: trimesh.Trimesh, closed: bool, options: dict[str, Any]) -> trimesh.Trimesh:
    fine = _subdivided(solid, options["subdivisions"], options["max_faces"])
    return _taubin(fine, options["iterations"])


def _mechanical(solid: trimesh.Trimesh, closed: bool, options: dict[str, Any]) -> trimesh.Trimesh:
    # Decimation comes first: quadric collapses keep planes and make the regions of the
    # coarser mesh larger and cleaner to snap. Decimating after snapping was tried; the
    # needle faces that snapping leaves along region borders make fast-simplification
    # produce non-manifold edges.
    coarse = decimate(solid, options["ratio"], keep_closed=closed)
    planar = snap_to_planes(coarse, options["angle"], iterations=options["iterations"])
    return crease_shaded(planar, options["feature_angle"])


def _futuristic(solid: trimesh.Trimesh, closed: bool, options: dict[str, Any]) -> trimesh.Trimesh:
    facets = decimate(solid, options["ratio"], keep_closed=closed)
    width = options["bevel"] * _diagonal(facets)
    return flat_shaded(bevel_edges(facets, width) if width > 0 else facets)


def _custom(solid: trimesh.Trimesh, closed: bool, options: dict[str, Any]) -> trimesh.Trimesh:
    passes = round(options["smoothness"] * _CUSTOM_SMOOTHING_PASSES)
    detail = options["detail"]
    if detail < 0:
        ratio = 1.0 + detail * (1.0 - _CUSTOM_MIN_RATIO)
        shaped = decimate(_taubin(solid, passes), ratio, keep_closed=closed)
    else:
        levels = 0 if detail == 0 else 1 if detail <= 0.5 else 2
        shaped = _taubin(_subdivided(solid, levels, options["max_faces"]), passes)
    if options["symmetry"] == "none":
        return shaped
    # the plane is placed on the input, which the user sees, not on the smoothed result
    axis = "xyz".index(options["symmetry"])
    keep_positive = options["keep"] == "positive"
    return mirrored(shaped, axis, keep_positive=keep_positive, centre=solid.bounds.mean(axis=0))


_PRESETS: Final[dict[str, Callable[[trimesh.Trimesh, bool, dict[str, Any]], trimesh.Trimesh]]] = {
    "low_poly": _low_poly,
    "organic": _organic,
    "mechanical": _mechanical,
    "futuristic": _futuristic,
    "custom": _custom,
}


# --------------------------------------------------------------------------- building blocks


def decimate(mesh: trimesh.Trimesh, ratio: float, *, keep_closed: bool) -> trimesh.Trimesh:
    """Quadric decimation (fast-simplification) to about ``ratio`` of the faces.

    Quadric error collapses keep planes and sharp features well, which is what a low-poly or
    faceted look wants. At strong reductions the collapses can pinch a thin part or the
    handle of a torus into a non-manifold edge, or fold a feature in; when ``keep_closed``
    and the result is not closed or its volume moved by more than 20 %, the target grows by
    half and the decimation is rerun, up to the input itself.

    Parameters
    ----------
    mesh
        Welded, oriented ``vertices : (n, 3)`` and ``faces : (m, 3)``.
    ratio
        Wanted fraction of the faces, in ``(0, 1]``; never fewer than 12 faces.
    """
    target = max(_MIN_FACES, round(ratio * len(mesh.faces)))
    while target < len(mesh.faces):
        result = welded(mesh.simplify_quadric_decimation(face_count=target))
        if len(result.faces) and (not keep_closed or _same_solid(mesh, result)):
            return _oriented(result)
        target = math.ceil(target * _DECIMATION_GROWTH)
    return mesh.copy()


def _same_solid(before: trimesh.Trimesh, after: trimesh.Trimesh) -> bool:
    """Whether ``after`` is still closed and holds about the volume of ``before`` (closed)."""
    if not is_closed(after):
        return False
    drift = abs(abs(after.volume) - before.volume)
    return bool(drift <= _DECIMATION_VOLUME_DRIFT * before.volume)


def snap_to_planes(mesh: trimesh.Trimesh, angle: float, *, iterations: int = 3) -> trimesh.Trimesh:
    """Flatten near-planar regions into exact planes, keeping the edges where they meet.

    Faces are grouped by normal direction: the largest face not yet grouped leads a group of
    every remaining face whose normal lies within ``angle`` degrees of its own. A *region* is
    a connected patch of faces of one group. Each pass fits a plane to every region (area-
    weighted mean normal and offset) and moves each vertex to the least-squares meeting point
    of the planes of its regions: inside a region onto the plane, on the border of two onto
    their line of intersection, at a corner of three onto their point. This is the quadric
    solve of dual contouring; directions the planes hardly constrain (nearly parallel planes)
    are left alone, and moves are bounded by the vertex's longest edge, so a vertex between
    two almost parallel planes is not flung away. Moves that would fold a face over, or make
    two vertices coincide, are taken back. The topology is unchanged, so a closed mesh stays
    closed.

    On CAD-like input (flat panels meeting at sharp edges) the panels come out exactly planar
    and the edges crisp. On smooth, curved input the regions become facets, but a region's
    border runs along mesh edges in a staircase that no straight line of two planes can
    follow, so border vertices settle at least-squares compromises and the faces next to
    them are only nearly planar. Making those exact would need a remesh that re-triangulates
    each region (variational shape approximation), which this does not do.

    Parameters
    ----------
    mesh
        ``vertices : (n, 3)`` and ``faces : (m, 3)``, welded.
    angle
        Spread of normals, in degrees, merged into one plane.
    iterations
        Fit-and-move passes; each refits the planes to the moved vertices.
    """
    regions = _regions(mesh, _normal_groups(mesh.face_normals, mesh.area_faces, angle))
    original = np.array(mesh.vertices, dtype=np.float64)
    reach = _SNAP_REACH * _longest_edge_per_vertex(original, mesh.edges_unique)
    vertices = original
    for _ in range(iterations):
        current = _bare(vertices, mesh.faces)
        normals, offsets = _region_planes(current, regions)
        moved = _meet_planes(current, regions, normals, offsets, reach)
        vertices = _kept_apart(_unfolded(moved, original, mesh.faces), vertices)
    return _bare(vertices, mesh.faces)


def bevel_edges(mesh: trimesh.Trimesh, width: float) -> trimesh.Trimesh:
    """Chamfer every edge and cut every corner of ``mesh`` (a Conway "expand").

    Each face is shrunk in its own plane towards its incentre so that its sides move in by
    ``width`` (less on small faces: by at most half the inradius). The gap left along each
    edge is bridged by a strip of two triangles, the chamfer, and the gap at each vertex by a
    fan around the mean of the shrunk corners, the corner cut. On a faceted mesh this reads
    as bevelled hard edges. It is a topological bevel, not a constant-angle machined one:
    strips between faces of unequal size are trapezoids, and edges between coplanar faces get
    a flat strip that shades like the faces around it.

    A closed, consistently wound input stays closed and keeps its winding. An edge without a
    twin (a hole's rim, a non-manifold or inconsistently wound edge) gets no chamfer; its
    strip reaches back to the original edge, so the hole stays exactly where it was.

    Parameters
    ----------
    mesh
        Welded ``vertices : (n, 3)`` and ``faces : (m, 3)``.
    width
        Chamfer width in the mesh's units.

    Returns
    -------
    bevelled
        ``7 m`` faces for a closed input: ``m`` shrunk faces, ``3 m`` strip triangles and
        ``3 m`` corner triangles.
    """
    faces = np.asarray(mesh.faces, dtype=np.int64)
    count = len(faces)
    corners = _shrunk_corners(mesh.triangles, width)
    heads, tails, twin = _half_edges(faces)
    centres = _corner_centres(mesh, corners, heads, twin)
    paired = np.flatnonzero(twin >= 0)
    rims = np.flatnonzero(twin < 0)
    own_head, own_tail = paired, 3 * (paired // 3) + (paired % 3 + 1) % 3
    # the twin runs tail -> head: its own corner sits at our tail, the next one at our head
    twin_tail = twin[paired]
    twin_head = 3 * (twin_tail // 3) + (twin_tail % 3 + 1) % 3
    centre = 3 * count + heads[paired]
    once = heads[paired] < tails[paired]
    strips = np.vstack(
        [
            np.column_stack([own_tail, own_head, twin_head])[once],
            np.column_stack([own_tail, twin_head, twin_tail])[once],
        ]
    )
    fans = np.column_stack([twin_head, own_head, centre])
    rim_head, rim_tail = rims, 3 * (rims // 3) + (rims % 3 + 1) % 3
    rim_strips = np.vstack(
        [
            np.column_stack([rim_tail, rim_head, 3 * count + heads[rims]]),
            np.column_stack([rim_tail, 3 * count + heads[rims], 3 * count + tails[rims]]),
        ]
    )
    shrunk = np.arange(3 * count).reshape(-1, 3)
    bevelled = _bare(
        np.vstack([corners.reshape(-1, 3), centres]),
        np.vstack([shrunk, strips, fans, rim_strips]),
    )
    bevelled.remove_unreferenced_vertices()
    return bevelled


def mirrored(
    mesh: trimesh.Trimesh,
    axis: int,
    *,
    keep_positive: bool = True,
    centre: Points | None = None,
) -> trimesh.Trimesh:
    """Keep one half of ``mesh`` and complete it with its mirror image.

    The mirror plane passes through ``centre`` (by default the centre of the bounding box),
    normal to ``axis`` (0, 1, 2 for x, y, z). Vertices within ``trimesh.tol.merge`` of the
    plane are first put exactly on it: the slicer counts them as on the plane for some faces
    and interpolates through them for others, which leaves two seam vertices a hair apart.
    The kept half is cut along the plane without a cap, reflected (the copy wound the other
    way, since a reflection turns faces inside out) and the two are welded along the cut. A
    closed mesh gives a closed result, an open one stays as open as it was.

    manifold3d (trim, mirror, union) was tried first and dropped: its union leaves pairs of
    coincident but distinct vertices along the seam, so the solid is no longer closed once
    its positions are welded, which is how a printer and the rest of the studio read it.
    """
    centre = mesh.bounds.mean(axis=0) if centre is None else np.asarray(centre, dtype=float)
    normal = np.zeros(3)
    normal[axis] = 1.0 if keep_positive else -1.0
    local = _on_plane_snapped(np.asarray(mesh.vertices) - centre, axis)
    vertices, faces, _ = trimesh.intersections.slice_faces_plane(
        local, mesh.faces, normal, np.zeros(3)
    )
    if len(faces) == 0:
        return mesh.copy()
    vertices = _on_plane_snapped(np.asarray(vertices, dtype=np.float64), axis)
    reflected = vertices.copy()
    reflected[:, axis] *= -1.0
    whole = _bare(
        np.vstack([vertices, reflected]) + centre,
        np.vstack([faces, faces[:, ::-1] + len(vertices)]),
    )
    return _oriented(welded(whole))


def _on_plane_snapped(vertices: Points, axis: int) -> Points:
    """``vertices`` with every coordinate along ``axis`` within ``tol.merge`` of 0 set to 0."""
    snapped = np.array(vertices, dtype=np.float64)
    snapped[np.abs(snapped[:, axis]) <= trimesh.tol.merge, axis] = 0.0
    return snapped


def flat_shaded(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Give every face its own three vertices, so a renderer draws each face flat."""
    vertices = np.asarray(mesh.vertices)[mesh.faces].reshape(-1, 3)
    return _bare(vertices, np.arange(len(vertices), dtype=np.int64).reshape(-1, 3))


def crease_shaded(mesh: trimesh.Trimesh, feature_angle: float) -> trimesh.Trimesh:
    """Split vertices along edges sharper than ``feature_angle`` degrees.

    Around each vertex, the faces joined through edges flatter than the angle form one smooth
    region and share one copy of the vertex; a renderer then shades each region smoothly and
    draws the sharp edges between regions crisp.
    """
    faces = np.asarray(mesh.faces, dtype=np.int64)
    smooth = mesh.face_adjacency_angles < np.radians(feature_angle)
    pairs = mesh.face_adjacency[smooth]
    shared = mesh.face_adjacency_edges[smooth]
    links = [
        np.column_stack(
            [
                _corner_of(faces, pairs[:, 0], shared[:, end]),
                _corner_of(faces, pairs[:, 1], shared[:, end]),
            ]
        )
        for end in (0, 1)
    ]
    link = np.vstack(links)
    total = 3 * len(faces)
    graph = sparse.coo_matrix((np.ones(len(link)), (link[:, 0], link[:, 1])), shape=(total, total))
    _, label = csgraph.connected_components(graph, directed=False)
    _, first, new_faces = np.unique(label, return_index=True, return_inverse=True)
    vertices = np.asarray(mesh.vertices)[faces.reshape(-1)[first]]
    return _bare(vertices, new_faces.reshape(-1, 3))


# --------------------------------------------------------------------------- helpers


def _bare(vertices: Points, faces: Faces) -> trimesh.Trimesh:
    """A mesh of just these arrays: no processing, no visuals, nothing shared with the input."""
    return trimesh.Trimesh(
        vertices=np.array(vertices, dtype=np.float64),
        faces=np.array(faces, dtype=np.int64),
        process=False,
    )


def _diagonal(mesh: trimesh.Trimesh) -> float:
    lower, upper = mesh.bounds
    return float(np.linalg.norm(upper - lower))


def _oriented(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Make the winding consistent and closed bodies point outwards, in place; return it.

    Winding is only repaired when it is inconsistent: trimesh's repair walks the face graph,
    which is slow on big meshes that need nothing.
    """
    if len(mesh.faces) == 0:
        return mesh
    if not mesh.is_winding_consistent:
        trimesh.repair.fix_winding(mesh)
    trimesh.repair.fix_inversion(mesh, multibody=True)
    return mesh


def _taubin(mesh: trimesh.Trimesh, passes: int) -> trimesh.Trimesh:
    """A copy of ``mesh`` after ``passes`` Taubin passes (alternately shrink and inflate)."""
    smooth = mesh.copy()
    if passes > 0 and len(smooth.faces):
        trimesh.smoothing.filter_taubin(
            smooth, lamb=_TAUBIN_LAMBDA, nu=_TAUBIN_NU, iterations=passes
        )
    return smooth


def _subdivided(mesh: trimesh.Trimesh, levels: int, max_faces: int) -> trimesh.Trimesh:
    """Loop-subdivide ``levels`` times, fewer if the faces would exceed ``max_faces``."""
    while levels > 0 and len(mesh.faces) * 4**levels > max_faces:
        levels -= 1
    if levels == 0:
        return mesh.copy()
    vertices, faces = trimesh.remesh.subdivide_loop(mesh.vertices, mesh.faces, iterations=levels)
    return _bare(vertices, faces)


def _normal_groups(normals: Points, areas: NDArray[np.float64], angle: float) -> Faces:
    """Label faces by direction: each group lies within ``angle`` of its leader's normal.

    Faces without a normal (zero area) get a group of their own; they weigh nothing in the
    plane fits.
    """
    labels = np.full(len(normals), -1, dtype=np.int64)
    has_normal = np.linalg.norm(normals, axis=1) > 0.5
    remaining = np.flatnonzero(has_normal)[np.argsort(-areas[has_normal], kind="stable")]
    cosine = math.cos(math.radians(angle))
    group = 0
    while remaining.size:
        member = normals[remaining] @ normals[remaining[0]] >= cosine
        labels[remaining[member]] = group
        remaining = remaining[~member]
        group += 1
    loose = np.flatnonzero(~has_normal)
    labels[loose] = group + np.arange(len(loose))
    return labels


def _regions(mesh: trimesh.Trimesh, groups: Faces) -> Faces:
    """Connected patches of faces of one group: ``(m,)`` region index per face."""
    pairs = mesh.face_adjacency
    pairs = pairs[groups[pairs[:, 0]] == groups[pairs[:, 1]]]
    count = len(mesh.faces)
    graph = sparse.coo_matrix(
        (np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(count, count)
    )
    return np.asarray(csgraph.connected_components(graph, directed=False)[1], dtype=np.int64)


def _region_planes(mesh: trimesh.Trimesh, regions: Faces) -> tuple[Points, NDArray[np.float64]]:
    """Area-weighted plane of each region: unit normals ``(r, 3)`` and offsets ``(r,)``.

    A region whose faces have no area gets a zero normal, which constrains nothing.
    """
    count = int(regions.max()) + 1
    weighted = mesh.face_normals * mesh.area_faces[:, None]
    normals = np.column_stack(
        [np.bincount(regions, weighted[:, i], minlength=count) for i in range(3)]
    )
    length = np.linalg.norm(normals, axis=1)
    normals = np.divide(
        normals, length[:, None], out=np.zeros_like(normals), where=length[:, None] > 0
    )
    area = np.bincount(regions, mesh.area_faces, minlength=count)
    moment = np.einsum("ij,ij->i", mesh.triangles_center, normals[regions]) * mesh.area_faces
    offsets = np.divide(
        np.bincount(regions, moment, minlength=count), area, out=np.zeros(count), where=area > 0
    )
    return normals, offsets


def _meet_planes(
    mesh: trimesh.Trimesh,
    regions: Faces,
    normals: Points,
    offsets: NDArray[np.float64],
    reach: NDArray[np.float64],
) -> Points:
    """Move each vertex to the least-squares meeting point of its regions' planes.

    Minimises ``sum_f a_f (n_f . x - d_f)^2`` over the faces ``f`` around the vertex (area
    ``a_f``, plane of its region) with a truncated eigen-solve about the current position:
    directions whose weight is below :data:`_EIGEN_FLOOR` of the total are not moved along.
    """
    vertices = np.asarray(mesh.vertices)
    corner_vertex = mesh.faces.reshape(-1)
    weight = np.repeat(mesh.area_faces, 3)
    n = normals[np.repeat(regions, 3)]
    d = offsets[np.repeat(regions, 3)]
    count = len(vertices)

    def summed(values: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.bincount(corner_vertex, values, minlength=count).astype(np.float64)

    quadric = np.stack(
        [np.column_stack([summed(n[:, i] * n[:, j] * weight) for j in range(3)]) for i in range(3)],
        axis=1,
    )
    rhs = np.column_stack([summed(n[:, i] * d * weight) for i in range(3)])
    total = summed(weight)
    used = total > 0
    quadric[used] /= total[used, None, None]
    rhs[used] /= total[used, None]
    values, vectors = np.linalg.eigh(quadric)
    residual = rhs - np.einsum("vij,vj->vi", quadric, vertices)
    along = np.einsum("vji,vj->vi", vectors, residual)
    scaled = np.divide(along, values, out=np.zeros_like(along), where=values > _EIGEN_FLOOR)
    move = np.einsum("vij,vj->vi", vectors, scaled)
    length = np.linalg.norm(move, axis=1)
    limit = np.minimum(1.0, np.divide(reach, length, out=np.ones_like(length), where=length > 0))
    return vertices + move * limit[:, None]


def _unfolded(moved: Points, before: Points, faces: Faces) -> Points:
    """``moved``, except that vertices of faces the move would turn over stay at ``before``.

    A vertex pulled onto the meeting line of two planes can cross the opposite side of a
    long, thin neighbour and fold it over. Faces whose normal turned by more than
    :data:`_FOLD_ANGLE` from its direction in ``before`` have their vertices sent back, until
    no face folds (each round sends back at least one vertex, so this ends).
    """
    result = np.array(moved, dtype=np.float64)
    reference = _face_normals(before, faces)
    floor = math.cos(math.radians(_FOLD_ANGLE))
    while True:
        turned = np.einsum("ij,ij->i", _face_normals(result, faces), reference) < floor
        back = np.unique(faces[turned])
        back = back[np.any(result[back] != before[back], axis=1)]
        if back.size == 0:
            return result
        result[back] = before[back]


def _face_normals(vertices: Points, faces: Faces) -> Points:
    """Unit normals ``(m, 3)``; zero for faces without area."""
    triangles = vertices[faces]
    cross = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    length = np.linalg.norm(cross, axis=1, keepdims=True)
    return np.divide(cross, length, out=np.zeros_like(cross), where=length > 0)


def _kept_apart(moved: Points, before: Points) -> Points:
    """``moved``, except that vertices it would make coincide step back towards ``before``.

    Several vertices near a corner of three planes all solve to the corner point. They are
    distinct vertices of the mesh, and once two of them coincide, welding by position joins
    them and the solid is no longer a closed manifold. All but the lowest-numbered vertex of
    each coincident group go half-way back, then all the way back, which ``before`` (distinct
    positions) always allows.
    """
    result = np.array(moved, dtype=np.float64)
    digits = trimesh.util.decimal_to_digits(trimesh.tol.merge)
    for blend in (0.5, 1.0):
        first, inverse = trimesh.grouping.unique_rows(result, digits=digits, keep_order=True)
        crowded = np.flatnonzero(first[inverse] != np.arange(len(result)))
        if crowded.size == 0:
            break
        result[crowded] += blend * (before[crowded] - result[crowded])
    return result


def _longest_edge_per_vertex(vertices: Points, edges: Faces) -> NDArray[np.float64]:
    length = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1)
    longest = np.zeros(len(vertices))
    np.maximum.at(longest, edges[:, 0], length)
    np.maximum.at(longest, edges[:, 1], length)
    return longest


def _corner_of(faces: Faces, face: Faces, vertex: Faces) -> Faces:
    """Corner index ``3 f + k`` of ``vertex`` in face ``f``, for arrays of both."""
    k = np.argmax(faces[face] == vertex[:, None], axis=1)
    return 3 * face + k


def _shrunk_corners(triangles: NDArray[np.float64], width: float) -> NDArray[np.float64]:
    """Corners ``(m, 3, 3)`` of each triangle shrunk about its incentre, sides moved ``width``.

    Scaling a triangle about its incentre by ``(r - w) / r`` moves every side inwards by ``w``
    (``r`` the inradius). ``w`` is capped at half the inradius so that small faces keep half
    their size; faces without area stay as they are.
    """
    a = np.linalg.norm(triangles[:, 1] - triangles[:, 2], axis=1)
    b = np.linalg.norm(triangles[:, 2] - triangles[:, 0], axis=1)
    c = np.linalg.norm(triangles[:, 0] - triangles[:, 1], axis=1)
    perimeter = a + b + c
    area = 0.5 * np.linalg.norm(
        np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]), axis=1
    )
    safe = np.where(perimeter > 0, perimeter, 1.0)
    incentre = (
        a[:, None] * triangles[:, 0] + b[:, None] * triangles[:, 1] + c[:, None] * triangles[:, 2]
    ) / safe[:, None]
    inradius = 2.0 * area / safe
    inset = np.minimum(width, 0.5 * inradius)
    factor = np.divide(inradius - inset, inradius, out=np.ones_like(inradius), where=inradius > 0)
    return incentre[:, None, :] + (triangles - incentre[:, None, :]) * factor[:, None, None]


def _half_edges(faces: Faces) -> tuple[Faces, Faces, Faces]:
    """Half-edges ``3 f + k`` from ``faces[f, k]`` to the next corner, and each one's twin.

    Returns ``(heads, tails, twin)``, each ``(3 m,)``: the twin of a half-edge is the one
    running the other way between the same vertices. It is ``-1`` unless both directions
    occur exactly once: on a rim, a non-manifold edge or an edge wound the same way twice.
    """
    heads = faces.reshape(-1)
    tails = np.roll(faces, -1, axis=1).reshape(-1)
    span = int(faces.max()) + 1
    keys = heads * span + tails
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    unique, first, counts = np.unique(sorted_keys, return_index=True, return_counts=True)
    reverse = tails * span + heads
    slot = np.searchsorted(unique, reverse)
    slot = np.minimum(slot, len(unique) - 1)
    found = unique[slot] == reverse
    own = np.searchsorted(unique, keys)
    single = (counts[own] == 1) & found & (counts[slot] == 1) & (heads != tails)
    twin = np.where(single, order[first[slot]], -1)
    return heads, tails, twin


def _corner_centres(
    mesh: trimesh.Trimesh, corners: NDArray[np.float64], heads: Faces, twin: Faces
) -> Points:
    """Centre ``(n, 3)`` of each vertex's corner cut: the mean of its shrunk corners.

    A vertex on a rim (any half-edge around it without a twin) keeps its original position,
    so the rim of an open mesh is not moved by the bevel.
    """
    count = len(mesh.vertices)
    flat = corners.reshape(-1, 3)
    seen = np.bincount(heads, minlength=count).astype(np.float64)
    sums = np.column_stack([np.bincount(heads, flat[:, i], minlength=count) for i in range(3)])
    centres = np.divide(
        sums, seen[:, None], out=np.array(mesh.vertices, dtype=np.float64), where=seen[:, None] > 0
    )
    rim = np.zeros(count, dtype=bool)
    lonely = twin < 0
    rim[heads[lonely]] = True
    tails = np.roll(mesh.faces, -1, axis=1).reshape(-1)
    rim[tails[lonely]] = True
    centres[rim] = np.asarray(mesh.vertices)[rim]
    return centres
