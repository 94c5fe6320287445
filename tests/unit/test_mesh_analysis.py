"""Basic mesh figures (:mod:`workers.mesh.analysis`), on made meshes and on the real corpus."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import trimesh

from core.errors import InvalidInput
from core.meshio import MESH_FORMATS, load_mesh, readable_mesh_formats
from workers.mesh.analysis import basic_stats

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "meshes" / "trimesh"

REFUSED = frozenset(
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
    }
    | {f"emptyIO/{path.name}" for path in (CORPUS / "emptyIO").glob("*")}
)
"""Corpus files the loader must refuse: empty, point-only or without any faces. Pinned so that a
file that used to load and now is refused (or the reverse) fails the test."""


def _corpus_params() -> list[object]:
    if not CORPUS.is_dir():
        return [
            pytest.param(None, marks=pytest.mark.skip(reason=f"mesh corpus not found at {CORPUS}"))
        ]
    files = sorted(
        path for path in CORPUS.rglob("*") if path.suffix.lower().lstrip(".") in MESH_FORMATS
    )
    return [pytest.param(path, id=path.relative_to(CORPUS).as_posix()) for path in files]


def _two_unit_box() -> trimesh.Trimesh:
    return trimesh.creation.box((2, 2, 2))


def test_closed_box() -> None:
    stats = basic_stats(_two_unit_box())
    assert stats["volume"] == pytest.approx(8.0)
    assert stats["area"] == pytest.approx(24.0)
    assert stats["watertight"] is True
    assert stats["winding_consistent"] is True
    assert (stats["shells"], stats["euler_number"]) == (1, 2)
    assert (stats["vertices"], stats["faces"]) == (8, 12)
    assert stats["bounds"] == {"min": [-1.0, -1.0, -1.0], "max": [1.0, 1.0, 1.0]}
    assert stats["extents"] == [2.0, 2.0, 2.0]
    assert stats["units"] == "mm"


def test_stats_are_plain_json() -> None:
    stats = basic_stats(_two_unit_box(), units="inch")
    assert json.loads(json.dumps(stats, allow_nan=False)) == stats
    assert stats["units"] == "inch"


def test_open_mesh_has_no_volume() -> None:
    box = _two_unit_box()
    open_box = trimesh.Trimesh(box.vertices, box.faces[1:], process=False)
    stats = basic_stats(open_box)
    assert stats["volume"] is None
    assert stats["watertight"] is False
    assert stats["faces"] == 11


def test_inconsistent_winding_has_no_volume() -> None:
    faces = _two_unit_box().faces.copy()
    faces[0] = faces[0][::-1]
    stats = basic_stats(trimesh.Trimesh(_two_unit_box().vertices, faces, process=False))
    assert stats["watertight"] is True
    assert stats["winding_consistent"] is False
    assert stats["volume"] is None


def test_inside_out_box_has_negative_volume() -> None:
    box = _two_unit_box()
    inverted = trimesh.Trimesh(box.vertices, box.faces[:, ::-1], process=False)
    assert basic_stats(inverted)["volume"] == pytest.approx(-8.0)


def test_two_disjoint_boxes_are_two_shells() -> None:
    moved = _two_unit_box().apply_translation([5, 0, 0])
    both = trimesh.util.concatenate([_two_unit_box(), moved])
    assert isinstance(both, trimesh.Trimesh)
    stats = basic_stats(both)
    assert (stats["shells"], stats["euler_number"]) == (2, 4)
    assert stats["volume"] == pytest.approx(16.0)
    assert stats["extents"] == [7.0, 2.0, 2.0]


def test_split_vertices_do_not_read_as_holes() -> None:
    """A box stored one vertex per face corner (as glTF stores seams) is still one closed shell."""
    box = _two_unit_box()
    box.unmerge_vertices()
    stats = basic_stats(box)
    assert (stats["vertices"], stats["watertight"], stats["shells"]) == (8, True, 1)
    assert len(box.vertices) == 36  # the caller's mesh is left as it was


@pytest.mark.parametrize("path", _corpus_params())
def test_corpus_mesh_loads_with_finite_stats_or_is_refused(path: Path) -> None:
    name = path.relative_to(CORPUS).as_posix()
    file_type = path.suffix.lower().lstrip(".")
    if file_type not in readable_mesh_formats():
        pytest.skip(f"{name}: the .{file_type} reader is not installed (3MF needs lxml)")
    if name in REFUSED:
        with pytest.raises(InvalidInput, match=rf"^{path.name.replace('.', '[.]')}: "):
            load_mesh(path, file_type=file_type)
        return
    # the JSON round trip both proves the figures JSON-ready (no NaN) and gives plain values
    stats = json.loads(
        json.dumps(basic_stats(load_mesh(path, file_type=file_type)), allow_nan=False)
    )
    assert stats["faces"] > 0
    assert stats["shells"] >= 1
    numbers = [stats["area"], *stats["extents"], *stats["bounds"]["min"], *stats["bounds"]["max"]]
    assert all(math.isfinite(value) for value in numbers)
    assert stats["volume"] is None or math.isfinite(stats["volume"])


def test_corpus_refusals_are_pinned_to_existing_files() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"mesh corpus not found at {CORPUS}")
    missing = {name for name in REFUSED if not (CORPUS / name).is_file()}
    assert not missing
    assert sum(name.startswith("emptyIO/") for name in REFUSED) >= 10
