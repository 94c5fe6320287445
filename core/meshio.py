"""Reading a mesh file into one :class:`trimesh.Trimesh`, keeping its defects visible.

This is the one mesh loader of the studio. It lives in ``core`` because the upload check
(:mod:`core.media`) must prove that a file really is a mesh before anything is stored, and the
mesh worker loads the stored blob the same way; ``core`` may not import ``workers``, so the
worker imports it from here.

What the loader does and does not do to the file, and why:

- trimesh's default processing is off (``process=False``). It would merge vertices, drop
  degenerate and duplicate faces and NaN vertices, so an analysis would describe a cleaner mesh
  than the one the user uploaded.
- STL is the exception: the format stores every triangle with its own three corners and has no
  way to say that two triangles share a vertex. Its vertices are merged by position
  (``trimesh.tol.merge``), which only recovers the connectivity the file implies; nothing that
  an STL can carry is lost. Other formats keep their vertices as stored, because their split
  vertices carry distinct normals or texture coordinates that texturing and export must keep
  (:func:`workers.mesh.analysis.basic_stats` welds positions itself for its topology figures).
- A scene (glTF, 3MF, OBJ with several objects) is flattened into one mesh with every node's
  transform applied; geometry that is not a triangle mesh (points, lines) is dropped.
- Only the bytes are read: no resolver is given to trimesh, so references to other files (OBJ
  material libraries, external glTF buffers) are not followed. A stored mesh is one
  self-contained blob, and an upload must not make the server read files beside it.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Final

import numpy as np
import trimesh
from trimesh.exchange.load import mesh_formats

from core.errors import InvalidInput, TooLarge, UnsupportedMedia

MESH_FORMATS: Final = frozenset({"stl", "obj", "ply", "off", "glb", "gltf", "3mf"})
"""File extensions (lower case, no dot) of the mesh formats the studio accepts."""

MAX_FACES: Final = 5_000_000
"""Default face limit: beyond it every later step (analysis, repair, the browser) is too slow
for an interactive studio; a deployment can set another with ``max_faces``."""

MAX_COORDINATE: Final = 1e10
"""Largest coordinate (in the file's units) a mesh may have. Welding positions to trimesh's
``tol.merge`` grid (1e-8) scales them by 1e8 and rounds to 64-bit integers, which hold up to
9.2e18: past 9.2e10 the weld merges unrelated vertices (a box 1e15 from the origin lost every
face), and an OBJ corner at 1e200 made the area infinite and the volume NaN. 1e10 mm is
10,000 km, beyond any printable part in any unit a file uses."""

MAX_UNPACKED_BYTES: Final = 1 << 30
"""A 3MF (a zip) may unpack to at most this much; more is a zip bomb, not a model."""

MAX_PACKING_RATIO: Final = 250
"""Model XML compresses about 5-20 times; a member packed tighter than this is refused."""

_SOFT_DEPENDENCIES: Final = {"3mf": "lxml"}
"""Formats whose trimesh reader needs an optional package, for the error message."""


def readable_mesh_formats() -> frozenset[str]:
    """Return the formats of :data:`MESH_FORMATS` this installation can actually read.

    trimesh registers a reader only when its optional dependencies import (3MF needs lxml), so
    the set is asked for rather than assumed.
    """
    return MESH_FORMATS & frozenset(mesh_formats())


def load_mesh(
    source: Path | bytes, *, file_type: str, name: str | None = None,
    max_faces: int = MAX_FACES,
) -> trimesh.Trimesh:
    """Load a mesh file of any format in :data:`MESH_FORMATS` as one triangle mesh.

    Parameters
    ----------
    source
        Path of the file, or its content.
    file_type
        Format as an extension, e.g. ``"stl"``, ``".STL"`` or ``"glb"``.
    name
        How to name the file in error messages (an upload's original file name); defaults to
        the path's name.
    max_faces
        Refuse meshes with more faces than this.

    Returns
    -------
    mesh
        ``vertices : (n, 3) float64`` and ``faces : (m, 3) int64`` with ``m >= 1``, all
        coordinates finite and every face index in ``[0, n)``.

    Raises
    ------
    InvalidInput
        The file is empty, has no faces (a point cloud, lines only), cannot be parsed, or its
        coordinates are not finite.
    TooLarge
        More faces than ``max_faces``, or a 3MF that would unpack to more than
        :data:`MAX_UNPACKED_BYTES` or is packed suspiciously tight (a zip bomb).
    UnsupportedMedia
        The format is not a mesh format the studio reads, or its reader is not installed.
    """
    mesh, fmt = _load_unmerged(source, file_type, name, max_faces)
    if fmt == "stl":
        mesh.merge_vertices()
    return mesh


def check_mesh(
    source: Path | bytes, *, file_type: str, name: str | None = None,
    max_faces: int = MAX_FACES,
) -> int:
    """Refuse exactly what :func:`load_mesh` refuses, for less; return the face count.

    The upload check needs the verdict, not the mesh, so an STL's vertices are not merged:
    merging never refuses a mesh, and it is half of the cost (for a 60 MiB STL, 5.5 of 7 s
    and 450 of 1,170 MB). Parameters and errors are :func:`load_mesh`'s.
    """
    mesh, _ = _load_unmerged(source, file_type, name, max_faces)
    return len(mesh.faces)


def _load_unmerged(source: Path | bytes, file_type: str, name: str | None,
                   max_faces: int) -> tuple[trimesh.Trimesh, str]:
    """:func:`load_mesh` up to the merging of an STL's vertices; also returns the format."""
    label = name or (source.name if isinstance(source, Path) else f"<{file_type} data>")
    fmt = _checked_format(file_type, label)
    data = source.read_bytes() if isinstance(source, Path) else source
    if not data:
        raise InvalidInput(f"{label}: empty file")
    if fmt == "3mf":
        _check_zip(data, label)
    scene = _parse(data, fmt, label)
    faces = _placed_faces(scene)
    if faces > max_faces:  # counted before to_mesh() copies every instance
        raise TooLarge(f"{label}: {faces} faces once its instances are placed, more than the "
                       f"limit of {max_faces}")
    mesh = scene.to_mesh()
    if len(mesh.faces) > max_faces:
        raise TooLarge(f"{label}: {len(mesh.faces)} faces once its instances are placed, "
                       f"more than the limit of {max_faces}")
    if len(mesh.faces) == 0:
        raise InvalidInput(f"{label}: no faces ({_describe_faceless(scene)})")
    check_arrays(mesh, label)
    return mesh, fmt


def _placed_faces(scene: trimesh.Scene) -> int:
    """Faces of the one mesh the scene flattens to: each triangle mesh once per node that
    places it. A small file can place one mesh thousands of times; counting the geometry
    alone let such a file have to_mesh() build billions of faces before the limit applied."""
    return sum(len(geometry.faces) * len(scene.graph.geometry_nodes.get(name, ()))
               for name, geometry in scene.geometry.items()
               if isinstance(geometry, trimesh.Trimesh))


def _checked_format(file_type: str, label: str) -> str:
    """Normalise ``file_type`` to a lower-case extension the installation can read."""
    fmt = file_type.lower().lstrip(".")
    if fmt not in MESH_FORMATS:
        raise UnsupportedMedia(f"{label}: not a mesh format the studio reads: .{fmt}")
    if fmt not in readable_mesh_formats():
        needed = _SOFT_DEPENDENCIES.get(fmt, "an optional dependency")
        raise UnsupportedMedia(f"{label}: reading .{fmt} needs {needed}, which is not installed")
    return fmt


def _check_zip(data: bytes, label: str) -> None:
    """Refuse a zip bomb before trimesh unpacks it: the sizes come from the zip's directory,
    so nothing is decompressed to find out. A damaged zip is left for the reader to refuse."""
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError):
        return
    unpacked = sum(m.file_size for m in members)
    if unpacked > MAX_UNPACKED_BYTES:
        raise TooLarge(f"{label}: unpacks to {unpacked} bytes, more than the limit of "
                       f"{MAX_UNPACKED_BYTES}")
    for member in members:
        if member.file_size > 1 << 20 and member.file_size > MAX_PACKING_RATIO * max(
                member.compress_size, 1):
            raise TooLarge(f"{label}: {member.filename} unpacks {member.compress_size} bytes "
                           f"into {member.file_size}, a zip bomb rather than a model")


def _parse(data: bytes, fmt: str, label: str) -> trimesh.Scene:
    """Parse ``data`` with trimesh's reader for ``fmt``, unprocessed.

    trimesh's readers fail on malformed input with whatever the parsing code hits (ValueError,
    KeyError, IndexError, struct.error, zipfile and XML errors...), so every exception from
    the reader is translated here, at the boundary, into the studio's own error.
    """
    try:
        return trimesh.load_scene(io.BytesIO(data), file_type=fmt, process=False)
    except MemoryError:  # not the file's fault alone: the caller's memory limit decides
        raise
    except Exception as error:
        reason = str(error) or type(error).__name__
        raise InvalidInput(f"{label}: not a readable .{fmt} file: {reason}") from error


def _describe_faceless(scene: trimesh.Scene) -> str:
    """Say what a scene without triangles holds instead, for the error message."""
    clouds = [g for g in scene.geometry.values() if isinstance(g, trimesh.PointCloud)]
    if clouds:
        points = sum(len(cloud.vertices) for cloud in clouds)
        return f"point cloud? {points} point{'s' if points != 1 else ''} only"
    if scene.geometry:
        return "lines or curves only"
    return "the file holds no geometry"


def check_arrays(mesh: trimesh.Trimesh, label: str) -> None:
    """Refuse non-finite coordinates, coordinates past :data:`MAX_COORDINATE` and face indices
    that point past the vertex array.

    Each would make later figures (bounds, area, volume) wrong, infinite or NaN, or crash the
    algorithms, and NaN is not representable in the JSON the studio stores. MeshFix's crossing
    test runs for over ten minutes on a 1,280-face sphere with one NaN corner (its grid cannot
    split a box holding NaN), so the repair refuses such meshes with this check too.
    """
    if not np.isfinite(mesh.vertices).all():
        bad = int((~np.isfinite(mesh.vertices).all(axis=1)).sum())
        raise InvalidInput(f"{label}: {bad} vertices have non-finite coordinates")
    reach = np.abs(mesh.vertices).max(axis=1) if len(mesh.vertices) else np.zeros(0)
    if len(reach) and reach.max() > MAX_COORDINATE:
        bad = int((reach > MAX_COORDINATE).sum())
        raise InvalidInput(
            f"{label}: {bad} vertices lie farther than {MAX_COORDINATE:.0e} from the origin "
            f"(up to {reach.max():.3g}): positions that large cannot be welded on the "
            "studio's 1e-8 grid; scale the mesh to millimetres or move it to the origin"
        )
    faces = mesh.faces
    if len(faces) and (faces.min() < 0 or faces.max() >= len(mesh.vertices)):
        raise InvalidInput(
            f"{label}: face indices must lie in [0, {len(mesh.vertices)}), "
            f"found [{faces.min()}, {faces.max()}]"
        )
