"""How well a mesh will print on a given printer, with the figures and the maps that say why.

:func:`analyse_printability` measures a mesh as it stands (or as the caller says it will stand,
``up``) on a :class:`~workers.mesh.printer.PrinterProfile` and returns a JSON-ready report,
per-face maps for the viewer and a list of recommended actions, each with the score it is
expected to reach. Nothing here changes the mesh; :mod:`workers.mesh.optimise` applies the
actions. Broken meshes (open, inconsistently wound, in pieces) are analysed too: what cannot be
measured on them is reported as unknown (``None`` in the report, 255 in the face maps).

All measures are taken in the *print frame*: positions welded, converted to millimetres and
turned so that ``up`` is +z; the build plate is the lowest point of the mesh.

Wall thickness
    A shape-diameter estimate: from each face's centroid, a hair inside the surface, a ray is
    cast straight inwards (against the outward normal); the distance to the first face it
    leaves the solid through is that face's wall thickness. A ray that misses, or whose first
    hit faces it (it entered more material: overlapping shells, flipped faces), leaves the face
    unknown; so is a face in contact with another body (see *Bodies in contact*). Meshes with
    more than 200 000 faces are sampled (a seeded subset of 200 000 faces) and the others
    take the value of the nearest sampled centroid. Faces thinner than the profile's
    ``min_wall_mm`` are *thin*; neighbouring thin faces form *thin regions*.
Overhang
    A face needs support when it faces downwards more steeply than the profile's overhang
    angle θ from the vertical, i.e. its normal's z is below ``-sin θ``, unless it lies on the
    build plate (all its corners within one layer height of the lowest point) or on another
    body (see *Bodies in contact*). The per-face severity is ``(φ - θ) / (90° - θ)`` for a
    face leaning φ from the vertical, at least 1/254 (one step of the face map) for every
    face that needs support, 0 for the others.
Bodies in contact
    In a closed, consistently wound mesh of several bodies, a face whose outer side lies
    inside another body, or against one (its ray along the outward normal first meets another
    body's face within :data:`CONTACT_FRACTION` of the diagonal, or leaves that body's
    material), is inside the part a slicer prints: slicers merge overlapping bodies. Such a
    face is never an overhang and has no wall of its own, and bodies in contact count as one
    part when floating is judged. A lid on its pot is the case that made this matter: the
    repair of the open teapot closes the lid's underside, which then lies on the pot's closed
    top; counted as an overhang with a column down to the pot's floor, it made the repaired
    teapot need 11 times the support of the open one (11 661 mm³ instead of 1 061). On an
    open or inconsistently wound mesh which side of a face is material is unknown, and no
    face is taken to be in contact.
Support volume
    For every overhanging face, a column of its projected (horizontal) area, as high as the
    gap below it: a ray cast straight down from the face finds the part below, and a ray that
    misses falls to the plate. Columns are summed; their overlaps and the slope of the surface
    they stand on are ignored. (:func:`rank_orientations` uses the cheaper all-to-the-plate
    height.)
Print estimate
    FDM: extruded volume = shell + infill + support, with shell = min(V, A · perimeters ·
    nozzle), infill = infill fraction · (V - shell), support = support volume · support
    density (V volume, A area); time = extruded / volumetric flow + layers · layer overhead.
    Resin: the part prints solid, so material = V + support volume · support density, and
    time = layers · layer cycle. Layers = ceil(height / layer height); weight = material in
    cm³ · density. V is exact for a closed, consistently wound mesh; otherwise it is
    estimated as ½ Σ area · wall thickness over the faces whose thickness is known (exact for
    a box, an estimate elsewhere), and the report says so.
Score
    ``100 - defects - thin - overhang - fit - floating``, clamped to [0, 100], where
    ``defects`` = 25 unless the mesh is a closed, consistently wound, outward-facing solid
    that encloses a volume;
    ``thin`` = 30 · min(1, 4 · thin area / area) (a quarter of the surface thin costs all 30);
    ``overhang`` = 20 · min(1, 2 · overhang area / area);
    ``fit`` = 20 when it does not fit the build volume as it stands;
    ``floating`` = 5 per shell whose lowest point is above the plate (cavities, i.e. shells
    wound inwards, excepted), at most 10;
    ``small`` = 50 when the part is too small to print: its largest extent is under
    :data:`MIN_PART_WALLS` minimum walls (3.2 mm with a 0.4 mm nozzle), or its exact volume
    under a cube of two minimum walls (4.1 mm³). Such a part is a blob or nothing on any printer, so
    it does not fit the printer either (``build.fits_as_is`` is false).
    The weights follow what ruins a print: a slicer guesses at a broken mesh, thin walls vanish,
    overhangs sag, and a part that does not fit or floats does not print at all.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Final

import numpy as np
import trimesh
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from core.errors import InvalidInput
from workers.mesh.edge_topology import body_labels
from workers.mesh.printer import PrinterProfile, mm_per_unit

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

RAY_BUDGET: Final = 200_000
"""Most rays cast per measure (wall thickness, support); larger meshes are sampled."""

SCALE_MARGIN_MM: Final = 5.0
"""Space kept free on every side when a part is scaled to fit the build volume."""

HOLLOW_WALL_MM: Final = 2.0
"""Wall left by the recommended hollowing of a resin part (a common resin guideline)."""

MIN_PART_WALLS: Final = 4.0
"""A part whose largest extent is under this many minimum walls is too small to print: the
printer cannot draw its outline and fill (a generated object left at its unit size, 1 mm)."""

ENLARGE_TO_MM: Final = 20.0
"""The largest extent a too-small part is recommended to be enlarged to (a small figurine)."""

_HOLLOW_MIN_VOLUME_MM3: Final = 10_000.0
"""Resin parts smaller than 10 cm³ are not worth hollowing: they cost little and drain badly."""

_HOLLOW_MIN_SAVING: Final = 0.4
"""Hollowing is recommended when it would save at least this fraction of the resin."""

CONTACT_FRACTION: Final = 1e-4
"""Faces of two bodies closer than this fraction of the bounding-box diagonal are in contact
(0.008 mm on an 80 mm part): far above float32 rounding, which is how a GLB stores a face that
another body's face lies on, and far below any gap a printer keeps open."""

_THIN_REGIONS_LISTED: Final = 5
_SEED: Final = 0
_INSET: Final = 1e-5
"""Ray origins start this fraction of the bounding-box diagonal inside (or below) the surface,
so that a ray cannot hit the face it starts from."""

FACE_MAP_MAGIC: Final = b"OFM1"
_UNKNOWN: Final = 255
_LEVELS: Final = 254


# --------------------------------------------------------------------------- score


@dataclass(frozen=True)
class ScoreInputs:
    """What the printability score depends on; changing a field is how an action is priced."""

    sound: bool
    thin_fraction: float
    overhang_fraction: float
    fits: bool
    floating_shells: int
    too_small: bool = False

    def penalties(self) -> dict[str, float]:
        """The points each problem costs (see the module docstring for the formula)."""
        return {
            "defects": 0.0 if self.sound else 25.0,
            "thin": 30.0 * min(1.0, 4.0 * self.thin_fraction),
            "overhang": 20.0 * min(1.0, 2.0 * self.overhang_fraction),
            "fit": 0.0 if self.fits else 20.0,
            "floating": 5.0 * min(2, self.floating_shells),
            "small": 50.0 if self.too_small else 0.0,
        }

    def score(self) -> float:
        """Score from 0 to 100, rounded to 0.1."""
        return round(min(100.0, max(0.0, 100.0 - sum(self.penalties().values()))), 1)


# --------------------------------------------------------------------------- the frame


@dataclass(frozen=True)
class PrintFrame:
    """A mesh welded, in millimetres and turned so that its up is +z, with its face figures.

    Attributes
    ----------
    mesh
        ``vertices : (n, 3)`` in mm, ``faces : (m, 3)`` in the caller's order.
    rotation
        ``(3, 3)`` rotation taking the caller's (scaled) coordinates to the print frame.
    normals
        ``(m, 3)`` unit normals, turned outwards when the whole mesh was wound inwards; zero
        for degenerate faces.
    areas
        ``(m,)`` face areas in mm².
    watertight, winding_consistent
        As trimesh says of the welded mesh.
    volume
        Enclosed volume in mm³ when the mesh is closed and consistently wound, else ``None``.
    inward
        The mesh is closed and consistently wound but its faces point inwards.
    """

    mesh: trimesh.Trimesh
    rotation: Floats
    normals: Floats
    areas: Floats
    watertight: bool
    winding_consistent: bool
    volume: float | None
    inward: bool

    @property
    def sound(self) -> bool:
        """A closed, consistently wound solid facing outwards: what a slicer can trust."""
        enclosing = self.volume is not None and self.volume > 0
        return self.watertight and self.winding_consistent and enclosing and not self.inward

    @cached_property
    def centroids(self) -> Floats:
        return np.asarray(self.mesh.triangles_center, dtype=np.float64)

    @cached_property
    def diagonal(self) -> float:
        return float(np.linalg.norm(np.ptp(self.mesh.vertices, axis=0)))

    @cached_property
    def plate_z(self) -> float:
        return float(self.mesh.vertices[:, 2].min())

    @cached_property
    def resting_on(self) -> Ints:
        """``(m,) int``: for a face in contact with another body (module docstring, *Bodies in
        contact*), the face of that body it meets; -1 for the others.

        Only closed, consistently wound meshes of more than one body are probed, so a
        single-body mesh costs no rays. Meshes with more than :data:`RAY_BUDGET` faces are
        sampled, the others take the answer of the nearest sampled centroid.
        """
        met = np.full(len(self.areas), -1, dtype=np.int64)
        count, bodies = body_labels(self.mesh.faces, len(self.mesh.vertices))
        if self.volume is None or count < 2:
            return met
        measured = _sample(np.flatnonzero(self.areas > 0), RAY_BUDGET)
        inset = _INSET * max(self.diagonal, 1e-9)
        directions = self.normals[measured]
        origins = self.centroids[measured] + directions * inset
        distance, hit = _first_faces(self, origins, directions)
        found = hit >= 0
        other = found & (bodies[np.maximum(hit, 0)] != bodies[measured])
        leaving = np.einsum("ij,ij->i", self.normals[np.maximum(hit, 0)], directions) > 0
        against = distance + inset <= CONTACT_FRACTION * self.diagonal
        met[measured] = np.where(other & (leaving | against), hit, -1)
        if len(measured) < int((self.areas > 0).sum()):
            met = _spread(self, measured, met, self.areas > 0)
        return met

    @cached_property
    def exposed(self) -> NDArray[np.bool_]:
        """``(m,) bool``: faces with area in contact with no other body, the surface a slicer
        prints; the faces in contact are inside the part, with no wall and no overhang."""
        exposed: NDArray[np.bool_] = (self.areas > 0) & (self.resting_on < 0)
        return exposed


def print_frame(
    mesh: trimesh.Trimesh, *, units: str = "mm", up: ArrayLike = (0, 0, 1), weld: bool = True
) -> PrintFrame:
    """Weld ``mesh``, scale it to mm and turn ``up`` to +z, leaving ``mesh`` untouched.

    ``weld=False`` keeps the vertices as they are, for a mesh that was welded already and whose
    vertex indices the caller holds on to.

    Raises
    ------
    InvalidInput
        The mesh has no faces or non-finite coordinates, ``units`` is unknown or ``up`` is not
        a non-zero 3-vector.
    """
    scale = mm_per_unit(units)
    direction = _unit_vector(up, "up")
    if len(mesh.faces) == 0:
        raise InvalidInput("the mesh has no faces")
    if not np.isfinite(mesh.vertices).all():
        raise InvalidInput("the mesh has non-finite vertex coordinates")
    rotation = trimesh.geometry.align_vectors(direction, [0.0, 0.0, 1.0])[:3, :3]
    vertices = (np.asarray(mesh.vertices, dtype=np.float64) * scale) @ rotation.T
    solid = trimesh.Trimesh(vertices=vertices, faces=np.asarray(mesh.faces), process=False)
    if weld:
        solid.merge_vertices(merge_tex=True, merge_norm=True)
        solid.remove_unreferenced_vertices()
    return _framed(solid, rotation)


def _framed(solid: trimesh.Trimesh, rotation: Floats) -> PrintFrame:
    cross = np.cross(
        solid.triangles[:, 1] - solid.triangles[:, 0], solid.triangles[:, 2] - solid.triangles[:, 0]
    )
    length = np.linalg.norm(cross, axis=1)
    normals = np.divide(cross, length[:, None], out=np.zeros_like(cross), where=length[:, None] > 0)
    watertight = bool(solid.is_watertight)
    consistent = bool(solid.is_winding_consistent)
    volume = signed_volume(solid.triangles) if watertight and consistent else None
    inward = volume is not None and volume < 0
    return PrintFrame(
        mesh=solid,
        rotation=rotation,
        normals=-normals if inward else normals,
        areas=0.5 * length,
        watertight=watertight,
        winding_consistent=consistent,
        volume=abs(volume) if volume is not None else None,
        inward=inward,
    )


def signed_volume(triangles: Floats) -> float:
    """Volume enclosed by ``(m, 3, 3)`` triangles, negative when wound inwards.

    trimesh's mass properties would do, but they divide by the volume for the centre of mass
    and warn on a closed shell that encloses nothing (a sheet with both sides).
    """
    triple = np.einsum("ij,ij->i", triangles[:, 0], np.cross(triangles[:, 1], triangles[:, 2]))
    return float(triple.sum()) / 6.0


def _unit_vector(value: ArrayLike, name: str) -> Floats:
    try:
        vector = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"{name} must be 3 numbers, got {value!r}") from error
    norm = float(np.linalg.norm(vector)) if vector.shape == (3,) else 0.0
    if vector.shape != (3,) or not math.isfinite(norm) or norm == 0:
        raise InvalidInput(f"{name} must be a non-zero vector of 3 finite numbers, got {value!r}")
    result: Floats = vector / norm
    return result


# --------------------------------------------------------------------------- measures


def wall_thickness(frame: PrintFrame) -> tuple[Floats, int]:
    """Measure every face's wall thickness by an inward ray (see the module docstring).

    Returns
    -------
    thickness
        ``(m,) float`` in mm, NaN where unknown.
    rays
        How many rays were cast (fewer than ``m`` when sampled).
    """
    count = len(frame.areas)
    measured = _sample(np.flatnonzero(frame.exposed), RAY_BUDGET)
    inset = _INSET * max(frame.diagonal, 1e-9)
    directions = -frame.normals[measured]
    origins = frame.centroids[measured] + directions * inset
    found = _first_hits(frame, origins, directions, exits=True)
    thickness = np.full(count, np.nan)
    thickness[measured] = found + inset
    if len(measured) < int(frame.exposed.sum()):
        thickness = _spread(frame, measured, thickness, frame.exposed)
    return thickness, len(measured)


def _first_faces(frame: PrintFrame, origins: Floats, directions: Floats) -> tuple[Floats, Ints]:
    """Distance along each ray to its first hit and the face hit: NaN and -1 for a miss."""
    distance = np.full(len(origins), np.nan)
    faces = np.full(len(origins), -1, dtype=np.int64)
    if len(origins) == 0:
        return distance, faces
    locations, rays, triangles = frame.mesh.ray.intersects_location(
        origins, directions, multiple_hits=False
    )
    distance[rays] = np.linalg.norm(locations - origins[rays], axis=1)
    faces[rays] = triangles
    return distance, faces


def _first_hits(frame: PrintFrame, origins: Floats, directions: Floats, *, exits: bool) -> Floats:
    """Distance along each ray to its first hit, NaN for a miss.

    With ``exits`` a hit only counts when the ray leaves the solid through it (the face's
    outward normal points along the ray); otherwise any hit counts.
    """
    distance, faces = _first_faces(frame, origins, directions)
    if exits:
        leaving = np.einsum("ij,ij->i", frame.normals[np.maximum(faces, 0)], directions) > 0
        distance[~leaving] = np.nan
    return distance


def _sample(candidates: Ints, budget: int) -> Ints:
    if len(candidates) <= budget:
        return candidates
    chosen = np.random.default_rng(_SEED).choice(candidates, size=budget, replace=False)
    return np.sort(chosen)


def _spread(frame: PrintFrame, measured: Ints, thickness: Any, among: NDArray[np.bool_]) -> Any:
    """Give every unmeasured face the value (a thickness, a face met) of the nearest measured
    face's centroid, for the faces ``among``."""
    centroids = frame.centroids
    others = np.setdiff1d(np.flatnonzero(among), measured)
    _, nearest = cKDTree(centroids[measured]).query(centroids[others])
    filled = thickness.copy()
    filled[others] = thickness[measured[nearest]]
    return filled


def overhang_severity(frame: PrintFrame, angle_deg: float, layer_mm: float) -> Floats:
    """Per-face overhang severity in [0, 1]; positive exactly for the faces that need support.

    Returns
    -------
    severity
        ``(m,) float``: ``(φ - θ) / (90° - θ)`` for a face leaning ``φ`` from the vertical past
        ``θ = angle_deg``, not lying on the plate nor on another body, else 0.
    """
    down = -frame.normals[:, 2]
    threshold = math.sin(math.radians(angle_deg))
    lean = np.degrees(np.arcsin(np.clip(down, -1.0, 1.0)))
    severity = np.clip((lean - angle_deg) / (90.0 - angle_deg), 0.0, 1.0)
    on_plate = frame.mesh.triangles[:, :, 2].max(axis=1) <= frame.plate_z + layer_mm
    needs = (down > threshold) & ~on_plate & frame.exposed
    # a face just past the threshold still needs support: keep it visibly above zero
    result: Floats = np.where(needs, np.maximum(severity, 1.0 / _LEVELS), 0.0)
    return result


def support_volume(frame: PrintFrame, overhanging: NDArray[np.bool_]) -> float:
    """Sum of the support columns under the overhanging faces, in mm³ (module docstring)."""
    faces = np.flatnonzero(overhanging)
    if len(faces) == 0:
        return 0.0
    measured = _sample(faces, RAY_BUDGET)
    projected = frame.areas * np.clip(-frame.normals[:, 2], 0.0, 1.0)
    inset = _INSET * max(frame.diagonal, 1e-9)
    down = np.tile([0.0, 0.0, -1.0], (len(measured), 1))
    origins = frame.centroids[measured] + down * inset
    to_plate = frame.centroids[measured, 2] - frame.plate_z
    gap = _first_hits(frame, origins, down, exits=False) + inset
    height = np.where(np.isnan(gap), to_plate, np.minimum(gap, to_plate))
    columns = float(np.dot(projected[measured], np.clip(height, 0.0, None)))
    sampled_area = float(projected[measured].sum())
    return columns * float(projected[faces].sum()) / sampled_area if sampled_area > 0 else 0.0


@dataclass(frozen=True)
class Shells:
    """Connected bodies of a mesh (faces joined through shared vertices).

    Attributes
    ----------
    count
        Number of bodies.
    floating
        Bodies whose part (see ``part``) is more than a layer above the plate at its lowest
        point, cavities excepted.
    vertex_labels
        ``(n,) int`` body of each vertex, ``-1`` for vertices no face uses.
    solid
        ``(k,) bool`` per label: the body is not a cavity (a body wound inwards, which is
        empty space inside another body).
    part
        ``(k,) int`` per label: the part the body prints as, one for bodies in contact
        (module docstring, *Bodies in contact*), so a lid on its pot does not float.
    """

    count: int
    floating: int
    vertex_labels: Ints
    solid: NDArray[np.bool_]
    part: Ints

    def lowest(self, heights: Floats) -> Floats:
        """Lowest of ``heights`` ``(n,)`` per body label (``inf`` for labels of unused vertices)."""
        lowest = np.full(len(self.solid), np.inf)
        used = self.vertex_labels >= 0
        np.minimum.at(lowest, self.vertex_labels[used], heights[used])
        return lowest

    def floating_at(self, heights: Floats, plate: float, layer: float) -> int:
        """How many solid bodies float with the vertices at ``heights`` ``(n,)``: their part's
        lowest point is more than ``layer`` above ``plate``."""
        lowest = self.lowest(heights)
        by_part = np.full(int(self.part.max()) + 1, np.inf)
        np.minimum.at(by_part, self.part, lowest)
        lifted = by_part[self.part] > plate + layer
        return int((np.isfinite(lowest) & lifted & self.solid).sum())


def shells(frame: PrintFrame, layer_mm: float) -> Shells:
    """Split ``frame``'s faces into bodies and find the floating ones (see :class:`Shells`)."""
    faces = frame.mesh.faces
    size = len(frame.mesh.vertices)
    edges = faces[:, [0, 1, 1, 2]].reshape(-1, 2)
    graph = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), (size, size))
    count, labels = csgraph.connected_components(graph, directed=False)
    vertex_labels = np.full(size, -1, dtype=np.int64)
    used = np.unique(faces)
    vertex_labels[used] = labels[used]
    triangles = frame.mesh.triangles
    signed = np.einsum("ij,ij->i", triangles[:, 0], np.cross(triangles[:, 1], triangles[:, 2]))
    volume = np.bincount(labels[faces[:, 0]], weights=signed / 6.0, minlength=count)
    solid = (-volume if frame.inward else volume) >= 0
    resting = np.flatnonzero(frame.resting_on >= 0)
    touching = labels[faces[resting, 0]], labels[faces[frame.resting_on[resting], 0]]
    contacts = sparse.coo_matrix((np.ones(len(resting)), touching), (count, count))
    _, part = csgraph.connected_components(contacts, directed=False)
    bodies = Shells(
        count=len(np.unique(labels[used])), floating=0, vertex_labels=vertex_labels,
        solid=solid, part=part.astype(np.int64),
    )
    floating = bodies.floating_at(frame.mesh.vertices[:, 2], frame.plate_z, layer_mm)
    return replace(bodies, floating=floating)


# --------------------------------------------------------------------------- orientations


@dataclass(frozen=True)
class Orientation:
    """One candidate print orientation, priced with the cheap model of :func:`rank_orientations`.

    ``up`` is the direction in the print frame that would point up; the other figures are for
    the part turned that way: overhang area (mm²), support volume to the plate (mm³), area on
    the plate (mm²), height (mm), whether its footprint fits the build volume in one of the two
    quarter turns about z, and how many shells would float.
    """

    up: tuple[float, float, float]
    cost: float
    overhang_area: float
    support_volume: float
    contact_area: float
    height: float
    fits: bool
    floating_shells: int


def rank_orientations(
    frame: PrintFrame, profile: PrinterProfile, *, candidates: int = 30
) -> list[Orientation]:
    """Price the promising orientations of a part and return them best first.

    Candidates (after Tweaker): the part stood on each of its ``candidates`` largest flat
    areas (faces grouped by normal rounded to 0.02, weighted by area), on each of the six
    axis directions, and as it stands (+z). Each is priced by the documented cost

        cost = overhang area + support volume / diagonal - 0.1 · plate contact area
               + total area if it does not fit the build volume,

    all in mm² (the support volume divided by the bounding-box diagonal is an area of the
    same order as the overhang it holds up). Overhang, support and floating shells follow the
    module docstring, with support columns all the way to the plate. Everything is vectorised
    over the faces, one candidate at a time, and only the downward-facing faces are gathered.
    """
    pricing = _Pricing.of(frame, profile)
    priced = [pricing.price(up) for up in _candidate_ups(frame, candidates)]
    return sorted(priced, key=lambda o: o.cost)


def _candidate_ups(frame: PrintFrame, limit: int) -> list[Floats]:
    normals, areas = frame.normals, frame.areas
    valid = areas > 0
    # normals rounded to 0.02 are integers in [-50, 50]: pack the three into one key
    keys = np.round(normals[valid] / 0.02).astype(np.int64) + 64
    packed = (keys[:, 0] << 14) | (keys[:, 1] << 7) | keys[:, 2]
    _, inverse = np.unique(packed, return_inverse=True)
    weight = np.bincount(inverse, weights=areas[valid])
    summed = np.column_stack(
        [np.bincount(inverse, weights=areas[valid] * normals[valid, k]) for k in range(3)]
    )
    top = np.argsort(weight)[::-1][:limit]
    axes = np.vstack([np.eye(3), -np.eye(3)])
    ups = [np.array([0.0, 0.0, 1.0]), *axes, *(-summed[top])]
    chosen: list[Floats] = []
    for up in ups:
        norm = np.linalg.norm(up)
        if norm == 0:
            continue
        unit = up / norm
        if all(float(np.dot(unit, seen)) < 1 - 1e-6 for seen in chosen):
            chosen.append(unit)
    return chosen


@dataclass(frozen=True)
class _Pricing:
    """What pricing an orientation needs that does not depend on the orientation.

    The arrays are plain numpy copies: trimesh's tracked arrays cost a hash check on every
    operation, which adds up over dozens of candidates.
    """

    profile: PrinterProfile
    vertices: Floats
    faces: Ints
    normals: Floats
    areas: Floats
    used: Ints
    bodies: Shells
    diagonal: float
    fits_any_way: bool
    exposed: NDArray[np.bool_]
    """Faces with area that rest on no other body: only these can overhang or stand on the
    plate."""

    @classmethod
    def of(cls, frame: PrintFrame, profile: PrinterProfile) -> _Pricing:
        faces = np.array(frame.mesh.faces, dtype=np.int64)
        vertices = np.array(frame.mesh.vertices, dtype=np.float64)
        used = np.unique(faces)
        diagonal = float(np.linalg.norm(np.ptp(vertices[used], axis=0)))
        return cls(
            profile=profile,
            vertices=vertices,
            faces=faces,
            normals=np.array(frame.normals),
            areas=np.array(frame.areas),
            used=used,
            bodies=shells(frame, profile.layer_height_mm),
            diagonal=diagonal,
            # no extent along any direction exceeds the bounding-box diagonal
            fits_any_way=diagonal <= min(profile.build_volume_mm),
            exposed=np.array(frame.exposed),
        )

    def price(self, up: Floats) -> Orientation:
        layer = self.profile.layer_height_mm
        heights = self.vertices @ up
        used_heights = heights[self.used]
        plate, top = float(used_heights.min()), float(used_heights.max())
        facing = self.normals @ up
        threshold = math.sin(math.radians(self.profile.overhang_angle_deg))
        down = np.flatnonzero((facing < -min(threshold, 0.999)) & self.exposed)
        corner = heights[self.faces[down]]
        on_plate = corner.max(axis=1) <= plate + layer
        steep = (facing[down] < -threshold) & ~on_plate
        over = down[steep]
        lift = corner[steep].mean(axis=1) - plate
        support = float(np.dot(self.areas[over] * -facing[over], lift))
        contact = float(self.areas[down[on_plate & (facing[down] < -0.999)]].sum())
        floating = 0
        if self.bodies.count > 1:
            floating = self.bodies.floating_at(heights, plate, layer)
        fits = self.fits_any_way or _fits_standing(self.vertices[self.used], up, self.profile)
        overhang = float(self.areas[over].sum())
        cost = overhang + support / max(self.diagonal, 1e-9) - 0.1 * contact
        return Orientation(
            up=(float(up[0]), float(up[1]), float(up[2])),
            cost=cost + (0.0 if fits else float(self.areas.sum())),
            overhang_area=overhang,
            support_volume=support,
            contact_area=contact,
            height=top - plate,
            fits=fits,
            floating_shells=floating,
        )


def _fits_standing(points: Floats, up: Floats, profile: PrinterProfile) -> bool:
    """Whether ``points`` stood with ``up`` up fit the build volume in one of two quarter turns."""
    rotation = trimesh.geometry.align_vectors(up, [0.0, 0.0, 1.0])[:3, :3]
    extents = np.ptp(points @ rotation.T, axis=0)
    build = profile.build_volume_mm
    return bool(
        extents[2] <= build[2]
        and (
            (extents[0] <= build[0] and extents[1] <= build[1])
            or (extents[1] <= build[0] and extents[0] <= build[1])
        )
    )


# --------------------------------------------------------------------------- the analysis


@dataclass(frozen=True)
class Printability:
    """What :func:`analyse_printability` found.

    Attributes
    ----------
    report
        JSON-ready figures, score and recommendations (see :func:`analyse_printability`).
    face_maps
        Per input face, ``(m,) float32``, NaN where unknown: ``"overhang"`` (severity 0..1)
        and ``"wall_thickness_mm"``.
    map_limits
        The value each map's top quantisation level stands for in :meth:`face_maps_bytes`.
    """

    report: dict[str, Any]
    face_maps: dict[str, NDArray[np.float32]]
    map_limits: dict[str, float]

    def face_maps_bytes(self) -> bytes:
        """The face maps in the compact binary of :func:`encode_face_maps`."""
        return encode_face_maps(self.face_maps, self.map_limits)


def analyse_printability(
    mesh: trimesh.Trimesh,
    profile: PrinterProfile,
    *,
    units: str = "mm",
    up: ArrayLike = (0, 0, 1),
) -> Printability:
    """Measure how ``mesh`` would print standing with ``up`` up on ``profile``'s printer.

    Parameters
    ----------
    mesh
        ``vertices : (n, 3) float``, ``faces : (m, 3) int``, in ``units``; any mesh with faces
        and finite coordinates, broken ones included. Not modified.
    profile
        The printer and material.
    units
        Unit of the coordinates, a key of :data:`workers.mesh.printer.UNITS`.
    up
        The direction in the mesh's coordinates that points up on the printer.

    Returns
    -------
    printability
        ``report`` keys: ``units``, ``up``, ``profile``, ``faces``, ``area_mm2``,
        ``extents_mm``, ``volume_mm3``, ``volume_exact``, ``watertight``,
        ``winding_consistent``, ``inward``, ``shells``, ``floating_shells``, ``wall``
        (``min_mm``, ``p5_mm``, ``median_mm``, ``measured_fraction``, ``rays``, ``sampled``),
        ``thin`` (``limit_mm``, ``faces``, ``area_mm2``, ``area_fraction``, ``regions``: the
        largest few with ``faces``, ``area_mm2``, ``min_mm`` and ``centroid`` in the mesh's
        own coordinates), ``overhang`` (``angle_deg``, ``faces``, ``area_mm2``,
        ``area_fraction``), ``support`` (``volume_mm3``), ``build`` (``volume_mm``,
        ``fits_as_is``, ``fits_rotated``, ``scale_needed``), ``print`` (``technology``,
        ``material``, ``density_g_cm3``, ``layers``, ``model_mm3``, ``extruded_mm3``,
        ``support_mm3``, ``time_s``, ``weight_g``), ``score``, ``penalties`` and
        ``recommendations`` (``action``, ``params``, ``reason``, ``expected_score``,
        ``expected_change``; hollowing adds ``expected_weight_g``), best first.

    Raises
    ------
    InvalidInput
        See :func:`print_frame`.
    """
    frame = print_frame(mesh, units=units, up=up)
    thickness, rays = wall_thickness(frame)
    severity = overhang_severity(frame, profile.overhang_angle_deg, profile.layer_height_mm)
    bodies = shells(frame, profile.layer_height_mm)
    support = support_volume(frame, severity > 0)
    findings = _Findings(frame, profile, thickness, severity, bodies, support)
    report = findings.report(rays=rays, units=units, up=_unit_vector(up, "up"), mesh=mesh)
    maps = {
        "overhang": severity.astype(np.float32),
        "wall_thickness_mm": thickness.astype(np.float32),
    }
    limits = {"overhang": 1.0, "wall_thickness_mm": 10.0 * profile.min_wall_mm}
    return Printability(report=report, face_maps=maps, map_limits=limits)


@dataclass(frozen=True)
class _Findings:
    """The per-face measures of one analysis, and the report and prices derived from them."""

    frame: PrintFrame
    profile: PrinterProfile
    thickness: Floats
    severity: Floats
    bodies: Shells
    support: float

    @property
    def area(self) -> float:
        return float(self.frame.areas.sum())

    @cached_property
    def extents(self) -> Floats:
        return np.asarray(np.ptp(self.frame.mesh.vertices, axis=0), dtype=np.float64)

    @property
    def volume(self) -> float:
        if self.frame.volume is not None:
            return self.frame.volume
        known = np.isfinite(self.thickness)
        return 0.5 * float(np.dot(self.frame.areas[known], self.thickness[known]))

    def thin_fraction(self, scale: float = 1.0) -> float:
        """Fraction of the area thinner than the limit once the part is scaled by ``scale``."""
        thin = self.thickness * scale < self.profile.min_wall_mm
        return float(self.frame.areas[thin].sum()) / self.area if self.area > 0 else 0.0

    def score_inputs(self) -> ScoreInputs:
        overhang = float(self.frame.areas[self.severity > 0].sum())
        return ScoreInputs(
            sound=self.frame.sound,
            thin_fraction=self.thin_fraction(),
            overhang_fraction=overhang / self.area if self.area > 0 else 0.0,
            fits=_fit(self.extents, self.profile.build_volume_mm)["fits_as_is"],
            floating_shells=self.bodies.floating,
            too_small=self.too_small,
        )

    @property
    def min_size_mm(self) -> float:
        return MIN_PART_WALLS * self.profile.min_wall_mm

    @property
    def too_small(self) -> bool:
        """Under the smallest printable size (module docstring, *Score*)."""
        smallest_volume = (2.0 * self.profile.min_wall_mm) ** 3
        exact = self.frame.volume is not None  # an open mesh's estimate may read near zero
        return bool(self.extents.max() < self.min_size_mm
                    or (exact and self.volume < smallest_volume))

    def _build(self) -> dict[str, Any]:
        """Whether it fits the build volume, and whether it is large enough to print at all:
        a part too small to print does not fit the printer as it is, nor turned."""
        build = _fit(self.extents, self.profile.build_volume_mm)
        small = self.too_small
        return build | {
            "fits_as_is": build["fits_as_is"] and not small,
            "fits_rotated": build["fits_rotated"] and not small,
            "too_small": small,
            "min_size_mm": self.min_size_mm,
        }

    def report(self, *, rays: int, units: str, up: Floats, mesh: trimesh.Trimesh) -> dict[str, Any]:
        inputs = self.score_inputs()
        estimate = print_estimate(
            self.volume, self.area, self.support, float(self.extents[2]), self.profile
        )
        return {
            "units": units,
            "up": up.tolist(),
            "profile": self.profile.to_json(),
            "faces": len(self.frame.areas),
            "area_mm2": self.area,
            "extents_mm": self.extents.tolist(),
            "volume_mm3": self.volume,
            "volume_exact": self.frame.volume is not None,
            "watertight": self.frame.watertight,
            "winding_consistent": self.frame.winding_consistent,
            "inward": self.frame.inward,
            "shells": self.bodies.count,
            "floating_shells": self.bodies.floating,
            "wall": self._wall(rays),
            "thin": self._thin(mesh),
            "overhang": self._overhang(),
            "support": {"volume_mm3": self.support},
            "build": self._build(),
            "print": estimate,
            "score": inputs.score(),
            "penalties": inputs.penalties(),
            "recommendations": self.recommendations(inputs, estimate),
        }

    def _wall(self, rays: int) -> dict[str, Any]:
        known = np.isfinite(self.thickness)
        values, weights = self.thickness[known], self.frame.areas[known]
        figures: dict[str, Any] = {"min_mm": None, "p5_mm": None, "median_mm": None}
        if known.any():
            figures = {
                "min_mm": float(values.min()),
                "p5_mm": _weighted_quantile(values, weights, 0.05),
                "median_mm": _weighted_quantile(values, weights, 0.5),
            }
        return figures | {
            "measured_fraction": float(weights.sum()) / self.area if self.area > 0 else 0.0,
            "rays": rays,
            "sampled": rays < int(self.frame.exposed.sum()),
        }

    def _thin(self, mesh: trimesh.Trimesh) -> dict[str, Any]:
        thin = self.thickness < self.profile.min_wall_mm
        return {
            "limit_mm": self.profile.min_wall_mm,
            "faces": int(thin.sum()),
            "area_mm2": float(self.frame.areas[thin].sum()),
            "area_fraction": self.thin_fraction(),
            "regions": _thin_regions(self.frame, thin, self.thickness, mesh),
        }

    def _overhang(self) -> dict[str, Any]:
        over = self.severity > 0
        area = float(self.frame.areas[over].sum())
        return {
            "angle_deg": self.profile.overhang_angle_deg,
            "faces": int(over.sum()),
            "area_mm2": area,
            "area_fraction": area / self.area if self.area > 0 else 0.0,
        }

    def recommendations(
        self, inputs: ScoreInputs, estimate: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        score = inputs.score()
        found = [
            self._repair(inputs),
            self._reorient(inputs),
            self._scale(inputs),
            self._enlarge(inputs),
            self._thicken(inputs),
            self._hollow(inputs, estimate),
        ]
        actions = [proposal.to_json(score) for proposal in found if proposal is not None]
        return sorted(actions, key=lambda a: -a["expected_change"])

    def _repair(self, inputs: ScoreInputs) -> _Proposal | None:
        if inputs.sound:
            return None
        frame = self.frame
        problems = [
            "open or non-manifold" if not frame.watertight else "",
            "inconsistently wound" if not frame.winding_consistent else "",
            "wound inwards" if frame.inward else "",
            "closed around no volume" if frame.volume == 0 else "",
        ]
        reason = "the mesh is " + " and ".join(p for p in problems if p) + "; slicers guess at it"
        return _Proposal("repair", {}, reason, replace(inputs, sound=True))

    def _reorient(self, inputs: ScoreInputs) -> _Proposal | None:
        ranked = rank_orientations(self.frame, self.profile)
        best, current = ranked[0], next(o for o in ranked if o.up == (0.0, 0.0, 1.0))
        if best.cost >= current.cost - 0.005 * self.area:
            return None
        priced = replace(
            inputs,
            overhang_fraction=best.overhang_area / self.area,
            fits=best.fits,
            floating_shells=best.floating_shells,
        )
        less_support = best.support_volume < 0.8 * current.support_volume
        if priced.score() <= inputs.score() and not less_support:
            return None
        up = self.frame.rotation.T @ np.asarray(best.up)
        reason = (
            f"standing it the other way cuts the overhang from {current.overhang_area:.0f} to "
            f"{best.overhang_area:.0f} mm² and the support from {current.support_volume:.0f} to "
            f"{best.support_volume:.0f} mm³ (columns to the plate)"
        )
        return _Proposal("reorient", {"up": up.tolist()}, reason, priced)

    def _scale(self, inputs: ScoreInputs) -> _Proposal | None:
        if inputs.fits:
            return None
        factor = scale_to_fit_factor(self.extents, self.profile.build_volume_mm)
        priced = replace(inputs, fits=True, thin_fraction=self.thin_fraction(factor))
        size = " x ".join(f"{e:.0f}" for e in self.extents)
        reason = f"{size} mm does not fit the build volume; scaled by {factor:.3f} it does"
        params = {"factor": factor, "margin_mm": SCALE_MARGIN_MM}
        return _Proposal("scale", params, reason, priced)

    def _enlarge(self, inputs: ScoreInputs) -> _Proposal | None:
        if not inputs.too_small:
            return None
        largest = float(self.extents.max())
        room = scale_to_fit_factor(self.extents * (ENLARGE_TO_MM / largest),
                                   self.profile.build_volume_mm) if largest > 0 else 1.0
        factor = ENLARGE_TO_MM / largest * room if largest > 0 else 1.0
        # Scaled up, less of it lies within a layer of the plate: overhangs and floating
        # shells are measured again at the new size (a layer the factor thinner).
        layer = self.profile.layer_height_mm / factor
        severity = overhang_severity(self.frame, self.profile.overhang_angle_deg, layer)
        overhang = float(self.frame.areas[severity > 0].sum())
        priced = replace(inputs, too_small=False, thin_fraction=self.thin_fraction(factor),
                         overhang_fraction=overhang / self.area if self.area > 0 else 0.0,
                         floating_shells=shells(self.frame, layer).floating)
        reason = (
            f"the part is {largest:.2g} mm at its largest and {self.volume:.2g} mm³: too small "
            f"to print (under {self.min_size_mm:g} mm, {MIN_PART_WALLS:g} minimum walls); "
            f"enlarge it, e.g. {factor:.3g} times to {largest * factor:.0f} mm"
        )
        return _Proposal("enlarge", {"factor": factor}, reason, priced)

    def _thicken(self, inputs: ScoreInputs) -> _Proposal | None:
        if inputs.thin_fraction <= 0:
            return None
        reason = (
            f"{100 * inputs.thin_fraction:.1f} % of the surface is thinner than "
            f"{self.profile.min_wall_mm:g} mm and may not print"
        )
        priced = replace(inputs, thin_fraction=0.0)
        return _Proposal("thicken", {"target_mm": self.profile.min_wall_mm}, reason, priced)

    def _hollow(self, inputs: ScoreInputs, estimate: Mapping[str, Any]) -> _Proposal | None:
        if self.profile.technology != "resin" or not self.frame.sound:
            return None
        shell = min(self.volume, self.area * HOLLOW_WALL_MM)
        if self.volume < _HOLLOW_MIN_VOLUME_MM3 or shell > (1 - _HOLLOW_MIN_SAVING) * self.volume:
            return None
        height = float(self.extents[2])
        hollowed = print_estimate(shell, self.area, self.support, height, self.profile)
        reason = (
            f"a solid resin part of {self.volume / 1000:.0f} cm³; hollowed with "
            f"{HOLLOW_WALL_MM:g} mm walls it needs about {hollowed['weight_g']:.0f} g of resin "
            f"instead of {estimate['weight_g']:.0f} g"
        )
        params = {"wall_mm": HOLLOW_WALL_MM, "drain_holes": 2}
        return _Proposal("hollow", params, reason, inputs, float(hollowed["weight_g"]))


@dataclass(frozen=True)
class _Proposal:
    """One recommended action, priced by the score it leaves (``after``)."""

    action: str
    params: dict[str, Any]
    reason: str
    after: ScoreInputs
    expected_weight_g: float | None = None

    def to_json(self, score: float) -> dict[str, Any]:
        expected = self.after.score()
        plain: dict[str, Any] = {
            "action": self.action,
            "params": self.params,
            "reason": self.reason,
            "expected_score": expected,
            "expected_change": round(expected - score, 1),
        }
        if self.expected_weight_g is not None:
            plain["expected_weight_g"] = self.expected_weight_g
        return plain


# --------------------------------------------------------------------------- estimates


def print_estimate(
    volume: float, area: float, support: float, height: float, profile: PrinterProfile
) -> dict[str, Any]:
    """Material, weight and time to print a part (module docstring, *Print estimate*).

    Parameters
    ----------
    volume, area, support, height
        The part's volume (mm³), surface area (mm²), support volume (mm³) and height (mm).
    """
    layers = math.ceil(height / profile.layer_height_mm - 1e-9) if height > 0 else 0
    support_mm3 = support * profile.support_density
    if profile.technology == "resin":
        model = volume
        time = layers * profile.resin_layer_s
    else:
        shell = min(volume, area * profile.perimeters * profile.nozzle_mm)
        model = shell + profile.infill * (volume - shell)
        time = 0.0
    extruded = model + support_mm3
    if profile.technology == "fdm":
        time = extruded / profile.volumetric_flow_mm3_s + layers * profile.layer_overhead_s
    return {
        "technology": profile.technology,
        "material": profile.material,
        "density_g_cm3": profile.density_g_cm3,
        "layers": layers,
        "model_mm3": model,
        "support_mm3": support_mm3,
        "extruded_mm3": extruded,
        "time_s": time,
        "weight_g": extruded / 1000.0 * profile.density_g_cm3,
    }


def scale_to_fit_factor(extents: ArrayLike, build: Sequence[float]) -> float:
    """Uniform scale that fits ``extents`` (mm) in the build volume with :data:`SCALE_MARGIN_MM`
    free on every side; at most 1 (this never enlarges)."""
    sizes = np.asarray(extents, dtype=np.float64)
    room = np.maximum(np.asarray(build, dtype=np.float64) - 2 * SCALE_MARGIN_MM, 1e-3)
    positive = sizes > 0
    if not positive.any():
        return 1.0
    return float(min(1.0, float((room[positive] / sizes[positive]).min())))


def _fit(extents: Floats, build: Sequence[float]) -> dict[str, Any]:
    room = np.asarray(build, dtype=np.float64)
    fits = bool((extents <= room + 1e-9).all())
    rotated = bool((np.sort(extents) <= np.sort(room) + 1e-9).all())
    positive = extents > 0
    needed = float((room[positive] / extents[positive]).min()) if positive.any() else 1.0
    return {
        "volume_mm": room.tolist(),
        "fits_as_is": fits,
        "fits_rotated": rotated,
        "scale_needed": min(1.0, needed),
    }


def _weighted_quantile(values: Floats, weights: Floats, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    if cumulative[-1] <= 0:
        return float(np.quantile(values, q))
    index = int(np.searchsorted(cumulative, q * cumulative[-1]))
    return float(values[order][min(index, len(values) - 1)])


def _thin_regions(
    frame: PrintFrame, thin: NDArray[np.bool_], thickness: Floats, mesh: trimesh.Trimesh
) -> list[dict[str, Any]]:
    """The largest groups of edge-adjacent thin faces, centroids in the mesh's own coordinates."""
    faces = np.flatnonzero(thin)
    if len(faces) == 0:
        return []
    pairs = frame.mesh.face_adjacency
    pairs = pairs[thin[pairs[:, 0]] & thin[pairs[:, 1]]] if len(pairs) else pairs
    size = len(thin)
    graph = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), (size, size))
    _, labels = csgraph.connected_components(graph, directed=False)
    _, groups = np.unique(labels[faces], return_inverse=True)
    groups = groups.reshape(-1)
    areas = frame.areas[faces]
    area_by_group = np.bincount(groups, weights=areas)
    largest = np.argsort(area_by_group)[::-1][:_THIN_REGIONS_LISTED]
    centres = np.asarray(mesh.triangles_center, dtype=np.float64)[faces]
    regions = []
    for group in largest:
        members = groups == group
        weights = areas[members]
        centre = np.average(
            centres[members], axis=0, weights=weights if weights.sum() > 0 else None
        )
        regions.append(
            {
                "faces": int(members.sum()),
                "area_mm2": float(weights.sum()),
                "min_mm": float(thickness[faces[members]].min()),
                "centroid": centre.tolist(),
            }
        )
    return regions


# --------------------------------------------------------------------------- face maps


def encode_face_maps(maps: Mapping[str, ArrayLike], limits: Mapping[str, float]) -> bytes:
    """Pack per-face maps into a compact binary for the viewer.

    Layout (little-endian): ``b"OFM1"``, ``uint32`` face count, ``uint16`` map count; per map
    ``uint8`` name length, the UTF-8 name and a ``float32`` scale; then each map's data, one
    ``uint8`` per face in map order. A byte ``q`` in 0..254 stands for ``q · scale``; values at
    or above ``254 · scale`` (the map's limit) are stored as 254; 255 means unknown (NaN).

    Raises
    ------
    InvalidInput
        Maps of different lengths, a name longer than 255 bytes or a limit that is not
        positive.
    """
    arrays = {
        name: np.asarray(values, dtype=np.float64).reshape(-1) for name, values in maps.items()
    }
    counts = {len(a) for a in arrays.values()}
    if len(counts) > 1:
        raise InvalidInput(f"face maps must have one value per face, got lengths {sorted(counts)}")
    count = counts.pop() if counts else 0
    head = [FACE_MAP_MAGIC, struct.pack("<IH", count, len(arrays))]
    body = []
    for name, values in arrays.items():
        encoded = name.encode("utf-8")
        limit = float(limits.get(name, 0.0))
        if len(encoded) > 255 or not (math.isfinite(limit) and limit > 0):
            raise InvalidInput(
                f"face map {name!r}: name over 255 bytes or limit {limit!r} not positive"
            )
        scale = np.float32(limit / _LEVELS)
        head.append(struct.pack("<B", len(encoded)) + encoded + struct.pack("<f", scale))
        quantised = np.clip(np.rint(np.nan_to_num(values, nan=0.0) / float(scale)), 0, _LEVELS)
        body.append(np.where(np.isnan(values), _UNKNOWN, quantised).astype(np.uint8).tobytes())
    return b"".join(head + body)


def decode_face_maps(data: bytes) -> dict[str, NDArray[np.float32]]:
    """Unpack :func:`encode_face_maps`' binary into ``(m,) float32`` maps, NaN for unknown.

    Raises
    ------
    InvalidInput
        Wrong magic, or the data is cut short or runs on past the last map.
    """
    view = memoryview(data)
    if bytes(view[:4]) != FACE_MAP_MAGIC or len(view) < 10:
        raise InvalidInput("not a face map binary (expected the magic b'OFM1')")
    count, maps = struct.unpack_from("<IH", view, 4)
    offset, headers = 10, []
    for _ in range(maps):
        if offset >= len(view):
            raise InvalidInput("face map binary cut short in its header")
        length = view[offset]
        name = bytes(view[offset + 1 : offset + 1 + length]).decode("utf-8", errors="replace")
        if offset + 5 + length > len(view):
            raise InvalidInput("face map binary cut short in its header")
        (scale,) = struct.unpack_from("<f", view, offset + 1 + length)
        headers.append((name, scale))
        offset += 5 + length
    if len(view) != offset + maps * count:
        raise InvalidInput(
            f"face map binary holds {len(view) - offset} data bytes, expected {maps * count}"
        )
    decoded = {}
    for index, (name, scale) in enumerate(headers):
        raw = np.frombuffer(data, dtype=np.uint8, count=count, offset=offset + index * count)
        values = raw.astype(np.float32) * np.float32(scale)
        decoded[name] = np.where(raw == _UNKNOWN, np.float32(np.nan), values).astype(np.float32)
    return decoded
