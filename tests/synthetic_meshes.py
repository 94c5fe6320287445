"""A synthetic corpus shaped like the meshes the repair fails on in the world (issue 25).

The project's own corpus (:mod:`tests.corpus`) is the one the repair was built on; an
independent corpus showed the kinds of mesh it had never met. Each kind is generated here from
code and a seed, so the tests and ``bench.repair`` read the same meshes, a failure can be
reproduced from its name, and nothing is downloaded:

- ``spindle_torus``: a torus whose tube is wider than its ring, so that the tube passes
  through itself around the axis (a closed single body whose faces cross);
- ``figure_eight``: a tube along a figure-eight that passes through itself at the crossing;
- ``mirrored_overlap``: a part and a mirrored copy of it that overlap, the copy's faces left
  wound inwards as a mirror without re-winding leaves them (two bodies, one inside out);
- ``offset_shell``: the surface of a star-shaped prism moved along its vertex normals, by
  more than its concave corners allow, so that it crosses itself there;
- ``sliver``: a 12-face box with no thickness: closed, but it encloses no volume;
- ``cad_part``: manifold3d booleans of boxes and cylinders (12k to 20k faces), with a second
  shell pushed through the first (shells that cross), turned by a random rotation.

:func:`synthetic_corpus` gives named cases; ``size`` scales the face counts down for tests.

A second, smaller corpus holds defects of how a file was written rather than of the shape
(:func:`defect_corpus`), found by a hostile sweep of the repair:

- ``noisy_soup``: a sphere written triangle by triangle, each corner with its own rounding
  noise (a millionth of its size), so that no two triangles share a corner exactly;
- ``nested_pin``: a plate with a pin exported as a body of its own whole inside it, so that a
  printable file counts the pin's volume twice;
- ``far_cad_part``: the CAD part placed 10 m from the origin (a build plate's far corner in
  a scene's coordinates), where its boss's tangency reads differently;
- ``t_junctions``: a star prism whose walls are split lengthwise and caps are not, so that
  its rim is open along cracks of no width (T-junctions);
- ``cracks``: the same with the walls' new corners 1-10 µm off the caps' edges;
- ``fin``: a star prism with a stray face hanging from an edge, through the part and out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

import manifold3d
import numpy as np
import trimesh
from numpy.typing import NDArray

Points = NDArray[np.float64]
Faces = NDArray[np.int64]


@dataclass(frozen=True)
class SyntheticMesh:
    """One generated case: its name (kind and seed), the mesh, and what a repair owes it.

    ``printable`` is ``False`` for the cases with nothing a printer could fill (a sliver),
    where the honest answer is a refusal.
    """

    name: str
    kind: str
    mesh: trimesh.Trimesh
    printable: bool = True
    fills: float | None = None
    """The volume of the solid an open input was made from (what a printer should fill),
    where the generator knows it; a closed input's is the union of its shells."""


def _bare(vertices: Points, faces: Faces) -> trimesh.Trimesh:
    return trimesh.Trimesh(
        np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64), process=False
    )


def _joined(*meshes: trimesh.Trimesh) -> trimesh.Trimesh:
    """Concatenate meshes as separate shells, merging nothing."""
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    return _bare(
        np.vstack([m.vertices for m in meshes]),
        np.vstack([m.faces + k for m, k in zip(meshes, offsets, strict=True)]),
    )


def _rotation(rng: np.random.Generator) -> NDArray[np.float64]:
    matrix: NDArray[np.float64] = trimesh.transformations.random_rotation_matrix(rng.random(3))
    return matrix


def _tube(centre: Points, radius: float, sides: int) -> trimesh.Trimesh:
    """A closed tube of ``radius`` around the closed curve ``centre`` (``(k, 3)``), in its
    plane's frame (the curve lies in z = 0)."""
    tangent = np.roll(centre, -1, axis=0) - np.roll(centre, 1, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    up = np.array([0.0, 0.0, 1.0])
    normal = np.cross(tangent, up)
    angle = 2 * np.pi * np.arange(sides) / sides
    ring = np.cos(angle)[None, :, None] * normal[:, None] + np.sin(angle)[None, :, None] * up
    vertices = (centre[:, None, :] + radius * ring).reshape(-1, 3)
    k, s = len(centre), sides
    i, j = np.meshgrid(np.arange(k), np.arange(s), indexing="ij")
    a = i * s + j
    b = ((i + 1) % k) * s + j
    c = ((i + 1) % k) * s + (j + 1) % s
    d = i * s + (j + 1) % s
    faces = np.concatenate([np.stack([a, b, c], -1), np.stack([a, c, d], -1)]).reshape(-1, 3)
    tube = _bare(vertices, faces)
    if tube.volume < 0:
        tube = _bare(vertices, faces[:, ::-1])
    return tube


def spindle_torus(seed: int, size: float = 1.0) -> trimesh.Trimesh:
    """A torus whose tube radius exceeds its ring radius: the tube passes through itself."""
    rng = np.random.default_rng(seed)
    ring = rng.uniform(0.5, 0.8)
    tube = ring * rng.uniform(1.15, 1.6)
    sections = max(12, int(64 * size))
    torus = trimesh.creation.torus(ring, tube, major_sections=sections, minor_sections=sections)
    torus.apply_transform(_rotation(rng))
    return _bare(torus.vertices * 20.0, torus.faces)


def figure_eight(seed: int, size: float = 1.0) -> trimesh.Trimesh:
    """A tube along a figure-eight (Gerono's lemniscate), crossing itself at the middle."""
    rng = np.random.default_rng(seed)
    steps = max(48, int(256 * size))
    u = 2 * np.pi * (np.arange(steps) + 0.5) / steps  # no two samples at the crossing
    width = rng.uniform(0.8, 1.2)
    centre = np.column_stack([np.cos(u), width * np.sin(u) * np.cos(u), np.zeros(steps)])
    tube = _tube(centre, rng.uniform(0.12, 0.2), max(12, int(32 * size)))
    tube.apply_transform(_rotation(rng))
    return _bare(tube.vertices * 30.0, tube.faces)


def mirrored_overlap(seed: int, size: float = 1.0) -> trimesh.Trimesh:
    """A part and its mirror image, overlapping; the mirror's faces are left wound inwards."""
    rng = np.random.default_rng(seed)
    part = manifold3d.Manifold.cube((20.0, 12.0, 8.0), center=True)
    sections = max(12, int(48 * size))
    boss = manifold3d.Manifold.cylinder(14.0, 4.0, 2.0, sections).translate((6.0, 0.0, -2.0))
    part = part + boss
    mesh = _from_manifold(part)
    mesh.apply_transform(_rotation(rng))
    shift = rng.uniform(0.3, 0.5) * mesh.extents
    mirrored = _bare(mesh.vertices * np.array([-1.0, 1.0, 1.0]) + shift, mesh.faces)
    return _joined(mesh, mirrored)


def star_prism(seed: int, size: float = 1.0) -> trimesh.Trimesh:
    """A sound star-shaped prism (20 mm across) with sharp concave notches between its
    points: a part whose inward offset folds wherever vertices move along their normals."""
    rng = np.random.default_rng(seed)
    points = int(rng.integers(5, 9))
    steps = max(4, int(12 * size))
    angle = np.linspace(0, 2 * np.pi, 2 * points * steps, endpoint=False)
    spike = np.abs(((angle * points / np.pi) % 2) - 1)  # 1 at tips, 0 between: sharp notches
    radius = 10.0 * (0.55 + 0.45 * spike)
    outline = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    return _prism(outline, rng.uniform(4.0, 8.0)).subdivide()


def offset_shell(seed: int, size: float = 1.0) -> trimesh.Trimesh:
    """A star prism's surface moved outwards along its vertex normals by more than its
    concave corners allow: the offset crosses itself there, as a careless offset tool does."""
    prism = star_prism(seed, size)
    rng = np.random.default_rng([seed, 1])
    distance = rng.uniform(1.0, 2.0)
    moved = prism.vertices + distance * prism.vertex_normals
    shell = _bare(moved, prism.faces)
    shell.apply_transform(_rotation(rng))
    return shell


def _prism(outline: Points, height: float) -> trimesh.Trimesh:
    """A closed prism over a polygon that is star-shaped about the origin (fan caps)."""
    k = len(outline)
    ring = np.arange(k)
    nxt = (ring + 1) % k
    vertices = np.vstack([
        np.column_stack([outline, np.zeros(k)]),
        np.column_stack([outline, np.full(k, height)]),
        [[0.0, 0.0, 0.0], [0.0, 0.0, height]],
    ])
    bottom, top = 2 * k, 2 * k + 1
    faces = np.concatenate([
        np.column_stack([ring, nxt, nxt + k]),
        np.column_stack([ring, nxt + k, ring + k]),
        np.column_stack([np.full(k, bottom), nxt, ring]),
        np.column_stack([np.full(k, top), ring + k, nxt + k]),
    ])
    prism = _bare(vertices, faces)
    return prism if prism.volume > 0 else _bare(vertices, faces[:, ::-1])


def sliver(seed: int, size: float = 1.0) -> trimesh.Trimesh:
    """A closed 12-face box squashed flat: every vertex in one plane, no volume inside."""
    del size  # always 12 faces
    rng = np.random.default_rng(seed)
    box = trimesh.creation.box(rng.uniform(5.0, 20.0, 3) * np.array([1.0, 1.0, 0.0]))
    box.apply_transform(_rotation(rng))
    return _bare(box.vertices, box.faces)


def cad_part(seed: int, size: float = 1.0) -> trimesh.Trimesh:
    """A machined-looking part from manifold3d booleans, with a second shell (a boss) pushed
    through it and not unioned, turned by a random rotation.

    At ``size=1`` the part has 12k to 20k faces: a plate with fine cylinders drilled and
    added, the sections chosen from the seed.
    """
    rng = np.random.default_rng(seed)
    sections = max(16, int(rng.integers(128, 192) * size))
    holes = max(2, int(rng.integers(18, 30) * size))
    plate = manifold3d.Manifold.cube((80.0, 50.0, 10.0), center=True)
    drills = []
    for _ in range(holes):
        x, y = rng.uniform(-34.0, 34.0), rng.uniform(-20.0, 20.0)
        radius = rng.uniform(1.5, 4.0)
        drill = manifold3d.Manifold.cylinder(14.0, radius, radius, sections, center=True)
        drills.append(drill.translate((x, y, 0.0)))
    part = plate - manifold3d.Manifold.batch_boolean(drills, manifold3d.OpType.Add)
    pegs = manifold3d.Manifold.cylinder(12.0, 6.0, 6.0, sections).translate((0.0, 0.0, 4.0))
    part = part + pegs
    boss = manifold3d.Manifold.cylinder(30.0, 5.0, 5.0, sections, center=True)
    boss = boss.rotate((90.0, 0.0, 0.0)).translate((rng.uniform(-30.0, 30.0), 0.0, 0.0))
    mesh = _joined(_from_manifold(part), _from_manifold(boss))
    mesh.apply_transform(_rotation(rng))
    return mesh


def _from_manifold(solid: manifold3d.Manifold) -> trimesh.Trimesh:
    mesh = solid.to_mesh64()
    return _bare(
        np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3],
        np.asarray(mesh.tri_verts, dtype=np.int64),
    )


KINDS: Final[dict[str, Callable[[int, float], trimesh.Trimesh]]] = {
    "spindle_torus": spindle_torus,
    "figure_eight": figure_eight,
    "mirrored_overlap": mirrored_overlap,
    "offset_shell": offset_shell,
    "sliver": sliver,
    "cad_part": cad_part,
}
"""Each kind's generator, ``f(seed, size) -> mesh``."""

UNPRINTABLE: Final = frozenset({"sliver"})
"""Kinds with no volume at all: a repair must refuse them, not invent a solid."""


def noisy_soup(seed: int, size: float = 1.0) -> trimesh.Trimesh:
    """A sphere of radius 10 written triangle by triangle, each corner moved by Gaussian
    noise of a millionth of the diameter: every triangle a body of its own once welded."""
    rng = np.random.default_rng(seed)
    sphere = trimesh.creation.icosphere(subdivisions=max(1, round(4 * size)), radius=10.0)
    corners = sphere.vertices[sphere.faces].reshape(-1, 3)
    noisy = corners + rng.normal(0.0, 20.0e-6, corners.shape)
    return _bare(noisy, np.arange(len(corners)).reshape(-1, 3))


def nested_pin(seed: int, size: float = 1.0) -> trimesh.Trimesh:
    """A plate with a pin, a body of its own, whole inside its material and touching nothing;
    both wound outwards and no faces cross, so the file is printable as it stands."""
    rng = np.random.default_rng(seed)
    sections = max(16, int(64 * size))
    plate = manifold3d.Manifold.cube((60.0, 40.0, 12.0), center=True)
    length, radius = rng.uniform(15.0, 40.0), rng.uniform(1.0, 4.0)
    pin = manifold3d.Manifold.cylinder(length, radius, radius, sections, center=True)
    pin = pin.rotate((0.0, 90.0, 0.0)).translate((rng.uniform(-5.0, 5.0), 0.0, 0.0))
    return _joined(_from_manifold(plate), _from_manifold(pin))


def far_cad_part(seed: int, size: float = 1.0) -> trimesh.Trimesh:
    """:func:`cad_part` moved 10 m (1e4 mm) from the origin along each axis."""
    mesh = cad_part(seed, size)
    return _bare(mesh.vertices + 1.0e4, mesh.faces)


def t_junctions(seed: int, size: float = 1.0) -> trimesh.Trimesh:
    """:func:`star_prism` with its walls split lengthwise and its caps not, turned and kept in
    single precision (as an STL holds it): each new corner of a wall lies on an edge of a
    cap, so the rim's edges are all open though the surface has no gap (T-junctions)."""
    split = cracked_prism(seed, size, 0.0)
    split.apply_transform(_rotation(np.random.default_rng([seed, 2])))
    return _bare(split.vertices.astype(np.float32).astype(np.float64), split.faces)


def cracked_prism(seed: int, size: float, gap: float) -> trimesh.Trimesh:
    """:func:`star_prism` with its walls split lengthwise and their new corners moved out from
    the centre by ``gap`` of their distance to it: cracks about ``gap`` x 10 mm wide along
    the caps' rims (none at ``gap=0``, where the new corners lie on the caps' edges)."""
    prism = star_prism(seed, size)
    walls = np.flatnonzero(np.abs(prism.face_normals[:, 2]) < 0.5)
    vertices, faces = trimesh.remesh.subdivide(prism.vertices, prism.faces, face_index=walls)
    added = np.arange(len(prism.vertices), len(vertices))
    vertices[added] += (vertices[added] - vertices.mean(axis=0)) * gap
    return _bare(vertices, faces)


def cracks(seed: int, size: float = 1.0) -> trimesh.Trimesh:
    """:func:`cracked_prism` with cracks of 1-10 µm (a gap of 0.01-0.1 %)."""
    return cracked_prism(seed, size, np.random.default_rng([seed, 4]).uniform(1e-4, 1e-3))


def fin(seed: int, size: float = 1.0) -> trimesh.Trimesh:
    """:func:`star_prism` with a stray triangle hanging from one of its wall's edges, reaching
    through the part and out past its top (a boolean's leftover face)."""
    prism = star_prism(seed, size)
    rng = np.random.default_rng([seed, 3])
    walls = np.flatnonzero(np.abs(prism.face_normals[:, 2]) < 0.1)
    first, second = prism.faces[walls[rng.integers(len(walls))], :2]
    middle = 0.5 * (prism.vertices[first] + prism.vertices[second])
    inward = -middle[:2] / np.linalg.norm(middle[:2])
    apex = np.append(middle[:2] + rng.uniform(6.0, 12.0) * inward,
                     rng.uniform(1.5, 2.0) * prism.vertices[:, 2].max())
    return _bare(np.vstack([prism.vertices, apex]),
                 np.vstack([prism.faces, [[first, second, len(prism.vertices)]]]))


DEFECTS: Final[dict[str, Callable[[int, float], trimesh.Trimesh]]] = {
    "noisy_soup": noisy_soup,
    "nested_pin": nested_pin,
    "far_cad_part": far_cad_part,
    "t_junctions": t_junctions,
    "cracks": cracks,
    "fin": fin,
}
"""Each file defect's generator, ``f(seed, size) -> mesh``."""


def _sphere_volume(seed: int, size: float) -> float:
    del seed  # the sphere is the same at every seed; only its noise differs
    return float(trimesh.creation.icosphere(subdivisions=max(1, round(4 * size)),
                                            radius=10.0).volume)


def _prism_volume(seed: int, size: float) -> float:
    return float(star_prism(seed, size).volume)


OPEN_SOLIDS: Final[dict[str, Callable[[int, float], float]]] = {
    "noisy_soup": _sphere_volume,
    "t_junctions": _prism_volume,
    "cracks": _prism_volume,
    "fin": _prism_volume,
}
"""The volume of the solid each open defect was made from, ``f(seed, size)``."""


def defect_case(kind: str, seed: int, size: float = 1.0) -> SyntheticMesh:
    """One file defect, named ``kind-seed``, with the volume it fills where it is open."""
    solid = OPEN_SOLIDS.get(kind)
    return SyntheticMesh(f"{kind}-{seed}", kind, DEFECTS[kind](seed, size),
                         fills=None if solid is None else solid(seed, size))


def defect_corpus(seeds: range = range(2), size: float = 1.0) -> Iterator[SyntheticMesh]:
    """Every file defect at every seed (all printable once repaired)."""
    for kind in DEFECTS:
        for seed in seeds:
            yield defect_case(kind, seed, size)


def synthetic_corpus(seeds: range = range(4), size: float = 1.0) -> Iterator[SyntheticMesh]:
    """Every kind at every seed, named ``kind-seed``; ``size`` below 1 makes smaller meshes."""
    for kind, make in KINDS.items():
        for seed in seeds:
            yield SyntheticMesh(
                f"{kind}-{seed}", kind, make(seed, size), printable=kind not in UNPRINTABLE
            )
