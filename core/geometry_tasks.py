"""Geometry the API answers at once, computed in a bounded child process.

Two requests need meshes loaded while their client waits: a download converted to another
format, and a history diff that measures how each changed mesh moved (volume, area, Hausdorff
distance). Both run in a fresh child with limited memory and time, as an upload's check does
(:meth:`core.upload_check.UploadChecker.run`), for the same reasons: loading a mesh costs many
times its size, and the API process must not load the geometry stack at all (trimesh brings
SciPy and manifold3d; a test holds the API to it). So the functions here are light to import:
each imports its geometry inside, where it runs, in the child, whose fork server has the
loader imported already. Their inputs are files the API has downloaded the blobs into, since a
child has no blob store client; their answers are small or bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.contracts.export import Exported
from core.events.blobs import BlobStore
from core.scene import document


def fetch_blobs(blobs: BlobStore, keys: Iterable[str], folder: Path) -> dict[str, Path]:
    """Download each blob into a file of ``folder`` (a chunk at a time, so the API never holds
    a mesh in memory) for a child to read; returns each key's file. Blocks: call it in a
    thread."""
    files = {}
    for number, key in enumerate(sorted(set(keys))):
        files[key] = folder / f"blob-{number}"
        with files[key].open("wb") as file:
            for chunk in blobs.iter_chunks(key):
                file.write(chunk)
    return files


def export_file(path: Path, stored: str, fmt: str, filename: str, name: str, units: str,
                packed: bool) -> Exported:
    """The mesh file at ``path`` (format ``stored``, uploaded as ``filename``) written as
    ``fmt`` (:func:`core.mesh_export.export_mesh`); a GLB's geometry packed with
    ``EXT_meshopt_compression`` when ``packed``."""
    from core.mesh_export import export_mesh
    from core.meshio import load_mesh
    from core.meshopt_glb import compress_glb

    mesh = load_mesh(path, file_type=stored, name=filename)
    exported = export_mesh(mesh, fmt, name=name, units=units)
    return replace(exported, data=compress_glb(exported.data)) if packed else exported


def blobs_to_compare(old_state: bytes, new_state: bytes) -> set[str]:
    """The mesh blobs :func:`scene_geometry_diff` loads: both meshes of every object that
    shows another mesh at the second point than at the first. Light: the API asks it to know
    which blobs to download."""
    old = document.snapshot(old_state)[document.OBJECTS]
    new = document.snapshot(new_state)[document.OBJECTS]
    changed = document.diff_objects(old, new)["changed"]
    return {str(state[object_id]["blob"]) for object_id, fields in changed.items()
            if "blob" in fields and old[object_id].get("blob") and new[object_id].get("blob")
            for state in (old, new)}


def scene_geometry_diff(old_state: bytes, new_state: bytes,
                        meshes: dict[str, tuple[Path, str]]) -> dict[str, Any]:
    """:func:`core.projections.diff.scene_diff` of two scene states, each blob loaded from
    the file and format ``meshes`` gives for it (every blob :func:`blobs_to_compare` names).
    Without meshes there is nothing to measure and no geometry is imported, so the API may
    call it in its own process then."""
    if not meshes:
        old = document.snapshot(old_state)[document.OBJECTS]
        new = document.snapshot(new_state)[document.OBJECTS]
        return document.diff_objects(old, new) | {"geometry": {}}
    from core.meshio import load_mesh
    from core.projections.diff import scene_diff

    def load(blob: str) -> Any:
        path, fmt = meshes[blob]
        return load_mesh(path, file_type=fmt)

    return scene_diff(old_state, new_state, load)
