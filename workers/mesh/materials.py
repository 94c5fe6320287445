"""Procedural PBR materials: UV atlas, textures from seeded noise, baked ambient occlusion.

:func:`apply_material` is pure and deterministic: the same mesh, kind, parameters and seed give
byte-identical textures, so a result can be cached by its inputs and reproduced later.

How a material is made, and why this way:

1. **UV atlas.** The mesh's positions are welded and unwrapped by xatlas into charts packed in
   one square atlas with a gutter between charts. xatlas runs in a child process: it is known
   to crash the process on some inputs (jpcy/xatlas#151; a plain 81 920-face icosphere does it
   here) and a crash must not take the mesh worker down. Its time also grows faster than the
   face count (about 1.5 s for 20 000 faces and 18 s for 80 000 on the development machine),
   so above :data:`XATLAS_MAX_FACES` faces, or when xatlas fails, a box-projection atlas is
   used instead: faces are grouped by the axis their normal points along, each connected
   group is projected flat on that axis's plane and the charts are shelf-packed. It is fast
   and never crashes, at the cost of more seams and some stretch (up to 1.7x, 3x on the few
   faces relabelled to join their neighbours).
2. **Texels to surface.** Every atlas triangle is rasterised into texture space (barycentric
   coverage of texel centres, in numpy), which gives each covered texel its face and 3D point.
3. **Patterns are solid textures.** Colour, roughness, metalness and a height field are
   evaluated at each texel's 3D point with seeded value noise, so wood rings run through the
   object and patterns continue across chart seams. Fabric is the exception: a weave needs
   two surface directions, so it is projected from the axis the surface faces most (triplanar,
   with a seam where that axis changes).
4. **Normal map** from the height field's gradient in texture space, scaled by the world size
   of a texel, in the glTF tangent-space convention (+X along U, +Y along V).
5. **Ambient occlusion** baked by ray casting (Embree through trimesh) at up to 256 px: from
   each covered texel, cosine-weighted rays over the hemisphere of its face normal; the
   fraction that meets the mesh within a quarter of the bounding-box diagonal darkens it. The
   ray count per texel falls on large atlases so that no bake casts more than
   :data:`AO_MAX_RAYS` rays, whatever the face count. It is upsampled to the texture size.
6. **Gutters are filled.** Every texel outside the charts takes the value of the nearest
   covered texel (edge padding), so bilinear filtering and mip-maps at chart borders do not
   pull in background and draw seams.

The textures follow glTF 2.0: base colour in sRGB; one image holding occlusion (R), roughness
(G) and metalness (B), used both as ``metallicRoughnessTexture`` and ``occlusionTexture`` as
the specification allows; and a normal map.
"""

from __future__ import annotations

import io
import itertools
import math
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import trimesh
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage, sparse
from scipy.sparse import csgraph

from core.contracts.mesh_params import (
    MATERIAL_DEFAULTS,
    MATERIAL_KINDS,
    TEXTURE_SIZES,
)
from core.errors import InvalidInput

Points = NDArray[np.float64]
Indices = NDArray[np.int64]
Floats = NDArray[np.float64]

MATERIALS: Final = MATERIAL_KINDS
"""The material kinds, in the order the studio lists them (:mod:`core.contracts.mesh_params`
holds them, and :data:`TEXTURE_SIZES`, for the API too)."""

XATLAS_MAX_FACES: Final = 20_000
"""Largest mesh unwrapped with xatlas; larger meshes get the box-projection atlas."""

XATLAS_TIMEOUT_S: Final = 120.0
"""How long xatlas may run before the box-projection atlas is used instead. Only a machine
far slower than intended reaches it; then the atlas depends on the load, which is the one
case where the same inputs can give different textures."""

AO_SIZE: Final = 256
"""Largest ambient-occlusion bake, in texels a side. Occlusion varies slowly, so it is baked
coarse and upsampled: a 2048 px bake would cast 64 times the rays for no visible gain."""

AO_RAYS: Final = 24
"""Rays per texel of the occlusion bake, when :data:`AO_MAX_RAYS` allows."""

AO_MIN_RAYS: Final = 8
"""Fewest rays per texel; below this the occlusion is visibly noisy."""

AO_MAX_RAYS: Final = 1_000_000
"""Most rays one bake casts (about a second with Embree on two cores)."""

_AO_REACH: Final = 0.25
"""Rays meeting the mesh farther than this fraction of the bounding-box diagonal do not
occlude: light comes round distant geometry, and without a limit every texel facing another
part of the object would darken."""

_FEATURE_FRACTION: Final = 0.125
"""Size of the pattern features at ``scale=1``, as a fraction of the bounding-box diagonal."""

_CORNER_EPSILON: Final = 1e-9
"""Barycentric slack of the rasteriser, so texel centres on a shared edge are not lost."""

_RASTER_BATCH: Final = 1 << 22
"""Candidate texels tested at once while rasterising (bounds the memory to some 300 MB)."""


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class _Defaults:
    """Look of a material kind when the caller gives nothing else."""

    color: tuple[float, float, float]
    roughness: tuple[float, float]
    metallic: float = 0.0  # not a parameter: what the kind is made of


_DEFAULTS: Final = {kind: _Defaults(color, roughness, metallic)
                   for kind, (color, roughness, metallic) in MATERIAL_DEFAULTS.items()}

_PARAMETERS: Final = ("color", "roughness", "scale", "texture_size")

_HEX_COLOR: Final = re.compile(r"#[0-9a-fA-F]{6}")


def validate_material_params(kind: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check a material's parameters and return them complete, defaults filled in.

    Parameters (defaults depend on the kind, see :data:`_DEFAULTS`):

    ``color``
        ``"#rrggbb"`` or ``[r, g, b]`` with components in ``[0, 1]`` (sRGB); returned as
        ``[r, g, b]`` floats.
    ``roughness``
        ``[low, high]`` with ``0 <= low <= high <= 1``: the range the pattern spans.
    ``scale``
        Size of the pattern's features relative to the default (a rough eighth of the
        object's bounding-box diagonal), in ``[0.01, 100]``; default ``1``.
    ``texture_size``
        Texels a side, one of :data:`TEXTURE_SIZES`; default ``512``.

    Raises
    ------
    InvalidInput
        Unknown kind or parameter, wrong type, or a value out of range.
    """
    if kind not in _DEFAULTS:
        raise InvalidInput(f"unknown material {kind!r}; the materials are {list(MATERIALS)}")
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise InvalidInput(f"{kind} parameters must be an object, got {type(params).__name__}")
    unknown = sorted(set(params) - set(_PARAMETERS))
    if unknown:
        raise InvalidInput(
            f"unknown {kind} parameter(s) {unknown}; the parameters are {list(_PARAMETERS)}"
        )
    defaults = _DEFAULTS[kind]
    return {
        "color": _color(kind, params.get("color", list(defaults.color))),
        "roughness": _roughness(kind, params.get("roughness", list(defaults.roughness))),
        "scale": _number(kind, "scale", params.get("scale", 1.0), 0.01, 100.0),
        "texture_size": _texture_size(kind, params.get("texture_size", 512)),
    }


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(kind: str, name: str, value: object, low: float, high: float) -> float:
    if not _is_number(value):
        raise InvalidInput(f"{kind}.{name} must be a number, got {value!r}")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number) or not low <= number <= high:
        raise InvalidInput(f"{kind}.{name} must lie in [{low}, {high}], got {value}")
    return number


def _color(kind: str, value: object) -> list[float]:
    if isinstance(value, str):
        if not _HEX_COLOR.fullmatch(value):
            raise InvalidInput(f'{kind}.color must be "#rrggbb", got {value!r}')
        return [int(value[i : i + 2], 16) / 255.0 for i in (1, 3, 5)]
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise InvalidInput(f'{kind}.color must be "#rrggbb" or [r, g, b], got {value!r}')
    return [_number(kind, "color", component, 0.0, 1.0) for component in value]


def _roughness(kind: str, value: object) -> list[float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise InvalidInput(f"{kind}.roughness must be [low, high], got {value!r}")
    low, high = (_number(kind, "roughness", bound, 0.0, 1.0) for bound in value)
    if low > high:
        raise InvalidInput(f"{kind}.roughness must be [low, high] with low <= high, got {value}")
    return [low, high]


def _texture_size(kind: str, value: object) -> int:
    if not _is_number(value) or value not in TEXTURE_SIZES:
        raise InvalidInput(
            f"{kind}.texture_size must be one of {list(TEXTURE_SIZES)}, got {value!r}"
        )
    return int(value)  # type: ignore[call-overload]


# --------------------------------------------------------------------------- entry point


def apply_material(
    mesh: trimesh.Trimesh, kind: str, params: Mapping[str, Any] | None = None, *, seed: int
) -> trimesh.Trimesh:
    """Return a copy of ``mesh`` with UVs and a procedural PBR material of ``kind``.

    Parameters
    ----------
    mesh
        ``vertices : (n, 3) float`` and ``faces : (m, 3) int``, ``m >= 1``. Its vertex
        splits are kept (a flat-shaded mesh stays flat shaded) and more are added along the
        atlas's chart seams; its own colours and UVs are replaced.
    kind
        One of :data:`MATERIALS`.
    params
        See :func:`validate_material_params`.
    seed
        Seeds the noise and the occlusion rays; equal inputs and seed give byte-identical
        textures.

    Returns
    -------
    textured
        ``vertices : (k, 3)`` (``k >= n`` distinct corners), the same faces in the same
        order, ``visual.uv : (k, 2)`` in ``[0, 1]`` and a
        :class:`trimesh.visual.material.PBRMaterial` with base colour, metallic-roughness,
        normal and occlusion textures of ``texture_size`` texels a side.

    Raises
    ------
    InvalidInput
        Bad kind or parameters, a seed that is not an integer, or a mesh without faces.
    """
    options = validate_material_params(kind, params)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise InvalidInput(f"the material seed must be an integer, got {seed!r}")
    if len(mesh.faces) == 0:
        raise InvalidInput("cannot texture a mesh without faces")
    size = options["texture_size"]
    solid = _welded(mesh)
    atlas = unwrap(solid, size)
    textured, uv = _split_for_atlas(mesh, atlas)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed) & (2**63 - 1)))
    surface = _Baker(solid, atlas, size, _feature_length(solid, options))
    maps = _PATTERNS[kind](surface.points, surface.normals, solid, options, _ValueNoise(rng))
    occlusion = _ambient_occlusion(solid, atlas, min(size, AO_SIZE), rng)
    textured.visual = trimesh.visual.TextureVisuals(
        uv=uv, material=surface.material(kind, maps, occlusion)
    )
    return textured


def _welded(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """A bare copy with coincident vertices merged and the faces in the same order."""
    bare = trimesh.Trimesh(
        vertices=np.array(mesh.vertices, dtype=np.float64),
        faces=np.array(mesh.faces, dtype=np.int64),
        process=False,
    )
    bare.merge_vertices(merge_tex=True, merge_norm=True)
    return bare


# --------------------------------------------------------------------------- UV atlas


@dataclass(frozen=True)
class Atlas:
    """A UV atlas of a welded mesh.

    Attributes
    ----------
    vertex
        ``(k,)`` int: the welded vertex each atlas vertex copies.
    faces
        ``(m, 3)`` int: atlas vertex per corner, faces in the welded mesh's order.
    uv
        ``(k, 2)`` float in ``[0, 1]``; ``v`` up, as trimesh stores UVs.
    source
        ``"xatlas"`` or ``"box"``, the unwrapper that made it.
    """

    vertex: Indices
    faces: Indices
    uv: Floats
    source: str


def unwrap(solid: trimesh.Trimesh, size: int) -> Atlas:
    """Unwrap a welded mesh for a ``size`` texel atlas (see the module docstring, step 1)."""
    padding = _padding(size)
    if len(solid.faces) <= XATLAS_MAX_FACES:
        atlas = _xatlas(solid, size, padding)
        if atlas is not None:
            return atlas
    return _box_atlas(solid, size, padding)


def _padding(size: int) -> int:
    """Gutter texels around each chart: 2 at 128 px, 4 at 512, 16 at 2048."""
    return max(2, size // 128)


_XATLAS_SCRIPT: Final = """
import io, sys
import numpy as np
import xatlas
data = np.load(io.BytesIO(sys.stdin.buffer.read()))
atlas = xatlas.Atlas()
atlas.add_mesh(data["vertices"], data["faces"])
pack = xatlas.PackOptions()
pack.resolution = int(data["resolution"])
pack.padding = int(data["padding"])
pack.bilinear = True
atlas.generate(xatlas.ChartOptions(), pack)
if atlas.atlas_count != 1:
    sys.exit(3)
vmapping, indices, uvs = atlas[0]
out = io.BytesIO()
np.savez(out, vmapping=vmapping, indices=indices, uvs=uvs)
sys.stdout.buffer.write(out.getvalue())
"""
"""Runs xatlas in a child process: arrays in and out as ``.npz`` on stdin and stdout."""


def _xatlas(solid: trimesh.Trimesh, size: int, padding: int) -> Atlas | None:
    """xatlas's atlas of ``solid``, or ``None`` if it crashed, timed out or gave a bad one."""
    payload = io.BytesIO()
    np.savez(
        payload,
        vertices=np.ascontiguousarray(solid.vertices, dtype=np.float32),
        faces=np.ascontiguousarray(solid.faces, dtype=np.uint32),
        resolution=np.int64(size),
        padding=np.int64(padding),
    )
    try:
        run = subprocess.run(
            [sys.executable, "-c", _XATLAS_SCRIPT],
            input=payload.getvalue(),
            capture_output=True,
            timeout=XATLAS_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    if run.returncode != 0:
        return None
    try:
        with np.load(io.BytesIO(run.stdout)) as result:
            vertex = result["vmapping"].astype(np.int64)
            faces = result["indices"].astype(np.int64)
            uv = result["uvs"].astype(np.float64)
    except (ValueError, KeyError, OSError):
        return None
    sound = (
        faces.shape == solid.faces.shape
        and len(uv) == len(vertex)
        and faces.size > 0
        and faces.min() >= 0
        and faces.max() < len(vertex)
        and np.array_equal(vertex[faces], solid.faces)
        and bool(np.all((uv >= 0.0) & (uv <= 1.0)))
    )
    return Atlas(vertex, faces, uv, "xatlas") if sound else None


def _box_atlas(solid: trimesh.Trimesh, size: int, padding: int) -> Atlas:
    """Box-projection atlas: charts of faces facing one axis direction, shelf-packed.

    Each face is labelled by the signed axis its normal is closest to (six labels); charts
    are the connected groups of faces with one label, projected orthographically onto that
    axis's plane, oriented so that no chart is mirrored. A face is at most 54.7 degrees from
    its axis, hence at most 1.7x stretch, except faces relabelled to join their neighbours
    (see :func:`_smoothed_labels`), at most 3x. A chart that winds round over itself (a
    helical ramp) would overlap in projection; such shapes are rare and not split further.
    """
    faces = np.asarray(solid.faces, dtype=np.int64)
    normals = np.asarray(solid.face_normals)
    axis = np.argmax(np.abs(normals), axis=1)
    negative = normals[np.arange(len(faces)), axis] < 0
    label = _smoothed_labels(solid, 2 * axis + negative)
    chart = _charts(solid, label)
    corner_chart = np.repeat(chart, 3)
    keys = np.column_stack([corner_chart, faces.reshape(-1)])
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    vertex = unique[:, 1]
    vertex_chart = unique[:, 0]
    chart_label = np.zeros(int(chart.max()) + 1, dtype=np.int64)
    chart_label[chart] = label
    flat = _projected(np.asarray(solid.vertices)[vertex], chart_label[vertex_chart])
    uv = _packed(flat, vertex_chart, size, padding)
    return Atlas(vertex, inverse.reshape(-1, 3), uv, "box")


_AXES: Final = np.array(
    [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float64
)
"""Direction of each box-projection label."""

_RELABEL_PASSES: Final = 3
_RELABEL_MIN_COSINE: Final = 0.34
"""A face may join its neighbours' label while its normal is within 70 degrees of that
label's axis: its projection then shrinks it at most 3x."""


def _smoothed_labels(solid: trimesh.Trimesh, label: Indices) -> Indices:
    """Labels after a few passes of a majority filter over edge neighbours.

    On a noisy surface the closest axis flips from face to face near the 45-degree lines,
    which makes thousands of one-face charts: each costs a gutter and a seam, and enough of
    them no longer fit in the atlas with their gutters. A face whose neighbours mostly (two
    of three) carry another label takes it, if its normal is not too far from that axis.
    """
    pairs = solid.face_adjacency
    normals = np.asarray(solid.face_normals)
    count = len(label)
    for _ in range(_RELABEL_PASSES):
        votes = np.zeros((count, len(_AXES)), dtype=np.int64)
        np.add.at(votes, (pairs[:, 0], label[pairs[:, 1]]), 1)
        np.add.at(votes, (pairs[:, 1], label[pairs[:, 0]]), 1)
        best = np.argmax(votes, axis=1)
        aligned = np.einsum("ij,ij->i", normals, _AXES[best]) >= _RELABEL_MIN_COSINE
        switch = (best != label) & (votes[np.arange(count), best] >= 2) & aligned
        if not switch.any():
            break
        label = np.where(switch, best, label)
    return label


def _charts(solid: trimesh.Trimesh, label: Indices) -> Indices:
    """Connected components of faces sharing an edge and a label: ``(m,)`` chart index."""
    pairs = solid.face_adjacency
    pairs = pairs[label[pairs[:, 0]] == label[pairs[:, 1]]]
    count = len(solid.faces)
    graph = sparse.coo_matrix(
        (np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(count, count)
    )
    return np.asarray(csgraph.connected_components(graph, directed=False)[1], dtype=np.int64)


_PLANE_AXES: Final = np.array([[1, 2], [2, 1], [2, 0], [0, 2], [0, 1], [1, 0]])
"""For labels +x, -x, +y, -y, +z, -z: the two coordinates kept, ordered so that a face
facing the label's direction keeps its counter-clockwise winding in the plane."""


def _projected(points: Points, label: Indices) -> Floats:
    """``(k, 2)`` coordinates of ``points`` on the plane of each one's label."""
    columns = _PLANE_AXES[label]
    rows = np.arange(len(points))
    return np.column_stack([points[rows, columns[:, 0]], points[rows, columns[:, 1]]])


_PACKING_TRIES: Final = 40
"""Growths of the atlas square (5 % each, 7x in all) tried with gutters between charts."""


def _packed(flat: Floats, chart: Indices, size: int, padding: int) -> Floats:
    """Shelf-pack the charts' bounding boxes into the unit square at one common scale.

    Charts are placed tallest first, left to right on shelves. The side of the square is
    grown by 5 % until everything fits with ``padding`` texels between charts. Gutters take
    a fixed share of the square whatever its side, so past some thousands of charts they
    cannot all fit; after :data:`_PACKING_TRIES` growths the charts are packed edge to
    edge instead (their borders may then bleed into each other when filtered).
    """
    count = int(chart.max()) + 1
    lower = np.full((count, 2), np.inf)
    upper = np.full((count, 2), -np.inf)
    np.minimum.at(lower, chart, flat)
    np.maximum.at(upper, chart, flat)
    extent = np.maximum(upper - lower, 1e-12)
    side = math.sqrt(float(np.prod(extent, axis=1).sum())) * 1.1
    for attempt in itertools.count():
        gap = side * padding / size if attempt < _PACKING_TRIES else 0.0
        origin = _shelves(extent, side, gap=gap)
        if origin is not None:
            return (flat - lower[chart] + origin[chart]) / side
        side *= 1.05
    raise AssertionError("unreachable: itertools.count() does not end")


def _shelves(extent: Floats, side: float, gap: float) -> Floats | None:
    """Lower-left corner of each box on shelves in a ``side`` square; ``None`` if it overflows."""
    order = np.argsort(-extent[:, 1], kind="stable")
    origin = np.zeros_like(extent)
    x = y = gap
    shelf = 0.0
    for index in order:
        width, height = extent[index]
        if x + width + gap > side:
            x, y, shelf = gap, y + shelf + gap, 0.0
        if x + width + gap > side or y + height + gap > side:
            return None
        origin[index] = (x, y)
        x += width + gap
        shelf = max(shelf, height)
    return origin


def _split_for_atlas(mesh: trimesh.Trimesh, atlas: Atlas) -> tuple[trimesh.Trimesh, Floats]:
    """A copy of ``mesh`` with one vertex per distinct (own vertex, atlas vertex) corner, and
    its ``(k, 2)`` UVs.

    Keeping the mesh's own vertex in the key keeps its normal splits (hard edges); the atlas
    vertex adds the chart seams, where the UV jumps.
    """
    own = np.asarray(mesh.faces, dtype=np.int64).reshape(-1)
    keys = np.column_stack([own, atlas.faces.reshape(-1)])
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    normals = np.asarray(mesh.vertex_normals)[unique[:, 0]]
    textured = trimesh.Trimesh(
        vertices=np.asarray(mesh.vertices, dtype=np.float64)[unique[:, 0]],
        faces=inverse.reshape(-1, 3),
        vertex_normals=normals,
        process=False,
    )
    return textured, atlas.uv[unique[:, 1]]


# --------------------------------------------------------------------------- rasterising


@dataclass(frozen=True)
class Coverage:
    """Texels of a square texture covered by the atlas's triangles.

    Attributes
    ----------
    size
        Texels a side.
    texel
        ``(t,)`` int: flat index ``row * size + column`` of each covered texel (row 0 at
        the top, where ``v = 1``).
    face
        ``(t,)`` int: the face covering it.
    barycentric
        ``(t, 3)`` float: the texel centre's barycentric coordinates in that face.
    """

    size: int
    texel: Indices
    face: Indices
    barycentric: Floats

    def mask(self) -> NDArray[np.bool_]:
        covered = np.zeros(self.size * self.size, dtype=bool)
        covered[self.texel] = True
        return covered.reshape(self.size, self.size)


def rasterise(atlas: Atlas, size: int) -> Coverage:
    """Find which face covers each texel centre, in batches of candidate texels.

    A texel centre on an edge shared by two faces goes to the later face; the result
    depends only on the atlas, so it is deterministic.
    """
    corners = atlas.uv[atlas.faces]
    pixels = np.empty_like(corners)
    pixels[..., 0] = corners[..., 0] * size - 0.5
    pixels[..., 1] = (1.0 - corners[..., 1]) * size - 0.5
    low = np.clip(np.ceil(pixels.min(axis=1)), 0, size - 1).astype(np.int64)
    high = np.clip(np.floor(pixels.max(axis=1)), -1, size - 1).astype(np.int64)
    span = np.maximum(high - low + 1, 0)
    counts = span[:, 0] * span[:, 1]
    best_face = np.full(size * size, -1, dtype=np.int64)
    best_bary = np.zeros((size * size, 3))
    for batch in _batches(counts):
        _rasterise_batch(batch, pixels, low, span, counts, size, best_face, best_bary)
    texel = np.flatnonzero(best_face >= 0)
    return Coverage(size, texel, best_face[texel], best_bary[texel])


def _batches(counts: Indices) -> list[Indices]:
    """Split face indices into runs of at most :data:`_RASTER_BATCH` candidate texels."""
    total = np.cumsum(counts)
    marks = np.searchsorted(total, np.arange(_RASTER_BATCH, int(total[-1]), _RASTER_BATCH))
    return [part for part in np.split(np.arange(len(counts)), marks) if part.size]


def _rasterise_batch(
    faces: Indices,
    pixels: Floats,
    low: Indices,
    span: Indices,
    counts: Indices,
    size: int,
    best_face: Indices,
    best_bary: Floats,
) -> None:
    """Test the texel centres in the bounding boxes of ``faces``; write hits in place."""
    count = counts[faces]
    owner = np.repeat(faces, count)
    start = np.repeat(np.cumsum(count) - count, count)
    offset = np.arange(int(count.sum())) - start
    width = span[owner, 0]
    column = low[owner, 0] + offset % np.maximum(width, 1)
    row = low[owner, 1] + offset // np.maximum(width, 1)
    a, b, c = (pixels[owner, k] for k in range(3))
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    valid = np.abs(area) > 1e-18
    safe = np.where(valid, area, 1.0)
    w1 = ((column - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (row - a[:, 1])) / safe
    w2 = ((b[:, 0] - a[:, 0]) * (row - a[:, 1]) - (column - a[:, 0]) * (b[:, 1] - a[:, 1])) / safe
    w0 = 1.0 - w1 - w2
    inside = valid & (w0 >= -_CORNER_EPSILON) & (w1 >= -_CORNER_EPSILON)
    inside &= w2 >= -_CORNER_EPSILON
    flat = row[inside] * size + column[inside]
    best_face[flat] = owner[inside]
    best_bary[flat] = np.column_stack([w0[inside], w1[inside], w2[inside]])


# --------------------------------------------------------------------------- noise


class _ValueNoise:
    """Seeded 3D value noise: random values on the integer lattice, smoothly interpolated.

    The lattice values and the permutation that hashes lattice points come from the seed's
    generator, so patterns are reproducible and differ between seeds.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self._permutation = np.tile(rng.permutation(256), 2)
        self._values = rng.random(256)
        self._shifts = rng.uniform(0.0, 256.0, size=(8, 3))

    def value(self, points: Points) -> Floats:
        """Noise in ``[0, 1]`` at ``points : (t, 3)``; features about one unit across.

        The eight lattice corners of each point are hashed axis by axis (Perlin's nested
        permutation) and blended with a smoothstep, one axis at a time.
        """
        cell = np.floor(points)
        fraction = points - cell
        weight = fraction * fraction * (3.0 - 2.0 * fraction)
        low = cell.astype(np.int64) & 255
        high = (low + 1) & 255
        p, values = self._permutation, self._values
        rows = [p[low[:, 0]], p[high[:, 0]]]
        planes = [p[row + corner[:, 1]] for row in rows for corner in (low, high)]
        corners = [values[p[plane + corner[:, 2]]] for plane in planes for corner in (low, high)]
        wx, wy, wz = weight[:, 0], weight[:, 1], weight[:, 2]
        edges = [a + wz * (b - a) for a, b in zip(corners[0::2], corners[1::2], strict=True)]
        faces = [a + wy * (b - a) for a, b in zip(edges[0::2], edges[1::2], strict=True)]
        return faces[0] + wx * (faces[1] - faces[0])

    def fractal(self, points: Points, octaves: int, gain: float = 0.5) -> Floats:
        """Sum of ``octaves`` octaves (each twice the frequency), rescaled to ``[0, 1]``."""
        total = np.zeros(len(points))
        amplitude, norm = 1.0, 0.0
        for octave in range(octaves):
            shifted = points * 2.0**octave + self._shifts[octave % len(self._shifts)]
            total += amplitude * self.value(shifted)
            norm += amplitude
            amplitude *= gain
        return total / norm


# --------------------------------------------------------------------------- patterns


@dataclass(frozen=True)
class SurfaceMaps:
    """Per covered texel: ``albedo (t, 3)`` sRGB in [0, 1], ``roughness``, ``metallic`` and
    ``height (t,)``; height in units of the pattern's feature size."""

    albedo: Floats
    roughness: Floats
    metallic: Floats
    height: Floats


_Pattern = Callable[[Points, Points, trimesh.Trimesh, dict[str, Any], _ValueNoise], SurfaceMaps]


def _feature_length(solid: trimesh.Trimesh, options: dict[str, Any]) -> float:
    """World size of one pattern feature: a share of the diagonal, times ``scale``."""
    diagonal = float(np.linalg.norm(solid.extents)) or 1.0
    return diagonal * _FEATURE_FRACTION * float(options["scale"])


def _feature_points(points: Points, solid: trimesh.Trimesh, options: dict[str, Any]) -> Points:
    """Texel points in pattern units: centred on the mesh, one unit per feature."""
    centre = np.asarray(solid.bounds).mean(axis=0)
    return (points - centre) / _feature_length(solid, options)


def _long_axis(solid: trimesh.Trimesh) -> int:
    """The axis along which the mesh is longest: wood grain and brushing run along it."""
    return int(np.argmax(solid.extents))


def _spread(options: dict[str, Any], amount: Floats) -> Floats:
    low, high = options["roughness"]
    return low + (high - low) * np.clip(amount, 0.0, 1.0)


def _tinted(options: dict[str, Any], shade: Floats) -> Floats:
    return np.clip(np.asarray(options["color"])[None, :] * shade[:, None], 0.0, 1.0)


def _wood(
    points: Points,
    normals: Points,
    solid: trimesh.Trimesh,
    options: dict[str, Any],
    noise: _ValueNoise,
) -> SurfaceMaps:
    """Growth rings round the long axis, warped by noise, with fine grain along it."""
    p = _feature_points(points, solid, options)
    axis = _long_axis(solid)
    across = np.delete(p, axis, axis=1)
    radius = np.linalg.norm(across + 0.7, axis=1) * 3.0 + 0.8 * noise.fractal(p * 0.5, 3)
    ring = (radius - np.floor(radius)) ** 3
    stretch = np.full(3, 24.0)
    stretch[axis] = 0.6
    grain = noise.fractal(p * stretch, 2)
    shade = (1.0 - 0.45 * ring) * (0.9 + 0.12 * grain)
    return SurfaceMaps(
        albedo=_tinted(options, shade),
        roughness=_spread(options, 0.6 * ring + 0.4 * grain),
        metallic=np.full(len(p), _DEFAULTS["wood"].metallic),
        height=-0.02 * ring - 0.01 * grain,
    )


def _stone(
    points: Points,
    normals: Points,
    solid: trimesh.Trimesh,
    options: dict[str, Any],
    noise: _ValueNoise,
) -> SurfaceMaps:
    """Fractal mottling with dark cracks along the zero set of a second fractal."""
    p = _feature_points(points, solid, options)
    body = noise.fractal(p * 1.5, 5)
    fault = np.abs(noise.fractal(p * 0.7 + 17.0, 4) - 0.5)
    crack = 1.0 - np.clip(fault / 0.025, 0.0, 1.0)
    shade = (0.7 + 0.6 * (body - 0.5) + 0.3) * (1.0 - 0.55 * crack)
    return SurfaceMaps(
        albedo=_tinted(options, shade),
        roughness=_spread(options, 0.3 + 0.7 * body),
        metallic=np.full(len(p), _DEFAULTS["stone"].metallic),
        height=0.06 * body - 0.08 * crack,
    )


def _metal(
    points: Points,
    normals: Points,
    solid: trimesh.Trimesh,
    options: dict[str, Any],
    noise: _ValueNoise,
) -> SurfaceMaps:
    """Brushed metal: noise stretched along the long axis into fine streaks; fully metallic."""
    p = _feature_points(points, solid, options)
    stretch = np.full(3, 80.0)
    stretch[_long_axis(solid)] = 0.8
    streak = noise.fractal(p * stretch, 2)
    blotch = noise.fractal(p, 2)
    return SurfaceMaps(
        albedo=_tinted(options, 0.9 + 0.1 * streak),
        roughness=_spread(options, 0.7 * streak + 0.3 * blotch),
        metallic=np.full(len(p), _DEFAULTS["metal"].metallic),
        height=0.002 * streak,
    )


def _plastic(
    points: Points,
    normals: Points,
    solid: trimesh.Trimesh,
    options: dict[str, Any],
    noise: _ValueNoise,
) -> SurfaceMaps:
    """Smooth plastic: faint, broad variation of shade and gloss."""
    p = _feature_points(points, solid, options)
    broad = noise.fractal(p * 2.0, 3)
    return SurfaceMaps(
        albedo=_tinted(options, 0.96 + 0.06 * broad),
        roughness=_spread(options, broad),
        metallic=np.full(len(p), _DEFAULTS["plastic"].metallic),
        height=0.003 * broad,
    )


def _ceramic(
    points: Points,
    normals: Points,
    solid: trimesh.Trimesh,
    options: dict[str, Any],
    noise: _ValueNoise,
) -> SurfaceMaps:
    """Glossy glaze with sparse dark speckles that are slightly less glossy."""
    p = _feature_points(points, solid, options)
    glaze = noise.fractal(p * 1.5, 3)
    speck = np.clip((noise.value(p * 30.0) - 0.9) / 0.05, 0.0, 1.0)
    return SurfaceMaps(
        albedo=_tinted(options, (0.97 + 0.04 * glaze) * (1.0 - 0.5 * speck)),
        roughness=_spread(options, 0.3 * glaze + 0.7 * speck),
        metallic=np.full(len(p), _DEFAULTS["ceramic"].metallic),
        height=0.002 * glaze - 0.004 * speck,
    )


def _fabric(
    points: Points,
    normals: Points,
    solid: trimesh.Trimesh,
    options: dict[str, Any],
    noise: _ValueNoise,
) -> SurfaceMaps:
    """Plain weave projected from the axis each texel faces most (triplanar).

    Warp threads run along the first plane coordinate, weft along the second; in a
    checkerboard of cells one or the other lies on top.
    """
    p = _feature_points(points, solid, options) * 12.0
    axis = np.argmax(np.abs(normals), axis=1)
    plane = np.take_along_axis(p, np.array([[1, 2], [2, 0], [0, 1]])[axis], axis=1)
    cell = np.floor(plane).astype(np.int64)
    along = plane - cell
    warp = np.sin(np.pi * along[:, 1]) * (0.6 + 0.4 * np.sin(np.pi * along[:, 0]))
    weft = np.sin(np.pi * along[:, 0]) * (0.6 + 0.4 * np.sin(np.pi * along[:, 1]))
    on_top = (cell[:, 0] + cell[:, 1]) % 2 == 0
    thread = np.where(on_top, warp, weft)
    fibre = noise.fractal(p * 4.0, 2)
    return SurfaceMaps(
        albedo=_tinted(options, (0.55 + 0.45 * thread) * (0.93 + 0.1 * fibre)),
        roughness=_spread(options, 1.0 - 0.4 * thread + 0.2 * fibre),
        metallic=np.full(len(p), _DEFAULTS["fabric"].metallic),
        height=0.025 * thread,
    )


_PATTERNS: Final[dict[str, _Pattern]] = {
    "metal": _metal,
    "plastic": _plastic,
    "wood": _wood,
    "stone": _stone,
    "ceramic": _ceramic,
    "fabric": _fabric,
}


# --------------------------------------------------------------------------- baking


class _Baker:
    """The covered texels of one texture size and the images baked onto them."""

    def __init__(self, solid: trimesh.Trimesh, atlas: Atlas, size: int, feature: float) -> None:
        self.size = size
        self.coverage = rasterise(atlas, size)
        self.solid = solid
        self.feature = feature
        self.points = _surface_points(solid, self.coverage)
        self.normals = np.asarray(solid.face_normals)[self.coverage.face]

    def material(
        self, kind: str, maps: SurfaceMaps, occlusion: NDArray[np.uint8]
    ) -> trimesh.visual.material.PBRMaterial:
        """Fill the images from ``maps`` and wrap them in a glTF PBR material."""
        layers = np.column_stack([maps.albedo, maps.height, maps.roughness, maps.metallic])
        image = self._image(layers)
        albedo = image[..., :3]
        height, roughness, metallic = image[..., 3], image[..., 4], image[..., 5]
        upsampled = Image.fromarray(occlusion).resize(
            (self.size, self.size), Image.Resampling.BILINEAR
        )
        orm = np.stack([np.asarray(upsampled), _bytes(roughness), _bytes(metallic)], axis=-1)
        packed = Image.fromarray(orm)
        return trimesh.visual.material.PBRMaterial(
            name=kind,
            baseColorTexture=Image.fromarray(_bytes(albedo)),
            metallicRoughnessTexture=packed,
            occlusionTexture=packed,
            normalTexture=Image.fromarray(self._normal_map(height)),
            metallicFactor=1.0,
            roughnessFactor=1.0,
        )

    def _image(self, values: Floats) -> Floats:
        """Scatter per-texel ``values : (t, c)`` into an image and fill its gutters."""
        image = np.zeros((self.size * self.size, values.shape[1]))
        image[self.coverage.texel] = values
        return dilate(image.reshape(self.size, self.size, -1), self.coverage.mask())

    def _normal_map(self, height: Floats) -> NDArray[np.uint8]:
        """Tangent-space normals from the height field, heights in world units per texel.

        Row 0 is ``v = 1``, so the slope along ``v`` is minus the slope down the rows.
        """
        rows, columns = np.gradient(height * self.feature / self._texel_length())
        normal = np.stack([-columns, rows, np.ones_like(height)], axis=-1)
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
        return _bytes(normal * 0.5 + 0.5)

    def _texel_length(self) -> float:
        """World length of one texel side: the surface area per covered texel, square-rooted."""
        covered = max(len(self.coverage.texel), 1)
        return math.sqrt(max(float(self.solid.area), 1e-30) / covered)


def _surface_points(solid: trimesh.Trimesh, coverage: Coverage) -> Points:
    triangles = np.asarray(solid.triangles)[coverage.face]
    return np.einsum("tk,tkd->td", coverage.barycentric, triangles)


def _bytes(values: Floats) -> NDArray[np.uint8]:
    return np.asarray(np.clip(np.rint(values * 255.0), 0, 255), dtype=np.uint8)


def dilate(image: Floats, mask: NDArray[np.bool_]) -> Floats:
    """Give every texel of ``image : (s, s, c)`` outside ``mask`` its nearest covered value.

    This is edge padding: each chart is extended outwards by its own border texels until it
    meets the extension of the next chart, so bilinear filtering and mip-maps at a chart's
    edge sample the chart's own colours instead of the background, which would show as a
    seam. One Euclidean distance transform (scipy) finds the nearest covered texel of every
    texel at once, however wide the gutter.
    """
    values = np.array(image, dtype=np.float64)
    if not mask.any() or mask.all():
        return values
    rows, columns = ndimage.distance_transform_edt(
        ~mask, return_distances=False, return_indices=True
    )
    return values[rows, columns]


def _ambient_occlusion(
    solid: trimesh.Trimesh, atlas: Atlas, size: int, rng: np.random.Generator
) -> NDArray[np.uint8]:
    """Bake ambient occlusion into a ``size`` texel image (1 open, 0 enclosed), gutters filled.

    Rays leave each covered texel's point, nudged off the surface along the face normal,
    in cosine-weighted directions over the face's hemisphere: a stratified set of
    directions shared by all texels, turned about the normal by a random angle per texel so
    that the strata do not line up into bands. A ray occludes when the first face it meets
    lies within :data:`_AO_REACH` of the diagonal.
    """
    coverage = rasterise(atlas, size)
    normals = np.asarray(solid.face_normals)[coverage.face]
    # faces without area have no normal and no hemisphere: they stay open
    facing = np.linalg.norm(normals, axis=1) > 0.5
    texels = int(facing.sum())
    visible = np.ones(size * size)
    if texels:
        points = _surface_points(solid, coverage)[facing]
        rays = int(np.clip(AO_MAX_RAYS // texels, AO_MIN_RAYS, AO_RAYS))
        blocked = _occluded_fraction(solid, points, normals[facing], rays, rng)
        visible[coverage.texel[facing]] = 1.0 - blocked
    image = dilate(visible.reshape(size, size, 1), coverage.mask())
    return _bytes(image[..., 0])


def _occluded_fraction(
    solid: trimesh.Trimesh, points: Points, normals: Points, rays: int, rng: np.random.Generator
) -> Floats:
    """Fraction of ``rays`` cosine-weighted rays per point that meet the mesh nearby."""
    count = len(points)
    stratum = (np.arange(rays) + rng.random(rays)) / rays
    spin = rng.random(rays) * 2.0 * np.pi
    turn = rng.random(count) * 2.0 * np.pi
    radius = np.sqrt(stratum)
    angle = spin[None, :] + turn[:, None]
    local = np.stack(
        [
            radius[None, :] * np.cos(angle),
            radius[None, :] * np.sin(angle),
            np.broadcast_to(np.sqrt(1.0 - stratum), (count, rays)),
        ],
        axis=-1,
    )
    tangent, bitangent = _frames(normals)
    directions = (
        local[..., 0:1] * tangent[:, None, :]
        + local[..., 1:2] * bitangent[:, None, :]
        + local[..., 2:3] * normals[:, None, :]
    ).reshape(-1, 3)
    diagonal = float(np.linalg.norm(solid.extents)) or 1.0
    origins = np.repeat(points + normals * (1e-5 * diagonal), rays, axis=0)
    hit = np.asarray(solid.ray.intersects_first(origins, directions), dtype=np.int64)
    distance = np.full(len(hit), np.inf)
    struck = hit >= 0
    plane_normal = np.asarray(solid.face_normals)[hit[struck]]
    plane_point = np.asarray(solid.triangles)[hit[struck], 0]
    facing = np.einsum("ij,ij->i", plane_normal, directions[struck])
    along = np.einsum("ij,ij->i", plane_normal, plane_point - origins[struck])
    distance[struck] = np.divide(
        along, facing, out=np.zeros_like(along), where=np.abs(facing) > 1e-12
    )
    occluded = (distance >= 0.0) & (distance <= _AO_REACH * diagonal)
    return occluded.reshape(count, rays).mean(axis=1)


def _frames(normals: Points) -> tuple[Points, Points]:
    """Two unit tangents per normal, completing a right-handed frame."""
    helper = np.where(
        (np.abs(normals[:, 0]) < 0.9)[:, None], np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    )
    tangent = np.cross(helper, normals)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-30)
    return tangent, np.cross(normals, tangent)
