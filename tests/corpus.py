"""The mesh corpus the tests and the benches read: where it is and which files the loader refuses.

The corpus ships inside the repository (``tests/data/meshes``; its README gives the source and
the licence), so that a fresh clone tests exactly what a developer's checkout tests and nothing
reads outside the tree. A missing file therefore means a broken checkout, never a reason to
skip: the helpers here raise, so the test that needs the file fails and names it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from core.meshio import MESH_FORMATS

CORPUS: Final = Path(__file__).resolve().parent / "data" / "meshes" / "trimesh"

REFUSED: Final = frozenset(
    {
        "empty.obj",
        "empty.ply",
        "empty.stl",
        "empty_nodes.glb",
        "face_in_group_name.obj",
        "points_ascii.ply",
        "points_ascii_with_lists.ply",
        "points_bin.ply",
        "points_emptyascii.ply",
        "points_emptyface.ply",
        "emptyIO/obj_empty.obj",
        "emptyIO/obj_points.obj",
        "emptyIO/obj_wireframe.obj",
        "emptyIO/ply_empty_ascii.ply",
        "emptyIO/ply_empty_bin.ply",
        "emptyIO/ply_empty_header.ply",
        "emptyIO/ply_points_ascii.ply",
        "emptyIO/ply_points_bin.ply",
        "emptyIO/stl_empty_ascii.stl",
        "emptyIO/stl_empty_bin.stl",
    }
)
"""Corpus files the loader must refuse: empty, point-only or without any faces. Pinned (the
analysis tests check that exactly these are refused) so that a file that used to load and now
is refused, or the reverse, fails a test; the tests of what happens to a loaded mesh leave them
out instead of skipping them."""


def corpus_path(name: str) -> Path:
    """The corpus file or folder ``name`` (relative to :data:`CORPUS`); raises if it is missing."""
    path = CORPUS / name
    if not path.exists():
        raise _incomplete(f"{name!r} is missing from")
    return path


def corpus_name(path: Path) -> str:
    """A corpus file's name relative to :data:`CORPUS`, as :data:`REFUSED` and test ids use it."""
    return path.relative_to(CORPUS).as_posix()


def corpus_meshes(*, loadable_only: bool = False) -> list[Path]:
    """Every corpus file in a mesh format, sorted; with ``loadable_only``, less :data:`REFUSED`.

    Raises when there are none, so that a parametrized test over the corpus fails at collection
    instead of silently running zero cases.
    """
    files = sorted(
        path for path in CORPUS.rglob("*") if path.suffix.lower().lstrip(".") in MESH_FORMATS
    )
    if not files:
        raise _incomplete("there are no meshes in")
    return [path for path in files if not (loadable_only and corpus_name(path) in REFUSED)]


def _incomplete(what: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{what} the mesh corpus at {CORPUS}: the corpus ships with the repository "
        "(tests/data/meshes), so this checkout is incomplete"
    )
