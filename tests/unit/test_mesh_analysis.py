"""Basic mesh figures (:mod:`workers.mesh.analysis`), on made meshes and on the real corpus."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import trimesh

from core.errors import InvalidInput
from core.meshio import load_mesh
from tests.corpus import REFUSED, corpus_meshes, corpus_name, corpus_path
from workers.mesh.analysis import basic_stats


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


@pytest.mark.parametrize("path", corpus_meshes(), ids=corpus_name)
def test_corpus_mesh_loads_with_finite_stats_or_is_refused(path: Path) -> None:
    file_type = path.suffix.lower().lstrip(".")
    if corpus_name(path) in REFUSED:
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
    assert all(corpus_path(name).is_file() for name in REFUSED)
    # emptyIO/ holds nothing but files to refuse
    assert {corpus_name(path) for path in corpus_path("emptyIO").iterdir()} <= REFUSED
