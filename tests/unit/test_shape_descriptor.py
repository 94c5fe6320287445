"""The shape descriptor the mesh worker keeps with each analysis, and the ranking of designs
by it: form first (the D2 distribution ignores size), then proportions and size."""

from __future__ import annotations

import json

import numpy as np
import trimesh

from core.assistant import shapes
from workers.mesh.analysis import D2_BINS, basic_stats, shape_descriptor


def _sphere(radius: float) -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=3, radius=radius)


def test_the_descriptor_is_stable_json_and_sums_to_one() -> None:
    first = shape_descriptor(_sphere(10.0))
    assert first == shape_descriptor(_sphere(10.0))  # seeded: the same mesh, the same figures
    assert first is not None and first["version"] == shapes.SHAPE_VERSION
    assert len(first["d2"]) == D2_BINS and abs(sum(first["d2"]) - 1.0) < 1e-3
    assert first["proportions"] == [1.0, 1.0, 1.0]
    assert json.loads(json.dumps(first)) == first
    assert basic_stats(_sphere(10.0))["shape"] == first  # kept with every analysis


def test_form_does_not_depend_on_size() -> None:
    small, large = shape_descriptor(_sphere(1.0)), shape_descriptor(_sphere(100.0))
    assert small is not None and large is not None
    assert np.abs(np.subtract(small["d2"], large["d2"])).sum() < 0.05
    assert large["size"] == small["size"] * 100


def test_nearest_ranks_like_shapes_first() -> None:
    own = shape_descriptor(_sphere(10.0))
    candidates = [
        {"asset_id": "rod", "shape": shape_descriptor(trimesh.creation.box(extents=(60, 4, 4)))},
        {"asset_id": "plate", "shape": shape_descriptor(trimesh.creation.box(extents=(20, 20, 1)))},
        {"asset_id": "big ball", "shape": shape_descriptor(_sphere(40.0))},
        {"asset_id": "cube", "shape": shape_descriptor(trimesh.creation.box(extents=(20, 20, 20)))},
        {"asset_id": "old", "shape": {"version": 0, "d2": [1.0]}},  # another recipe: skipped
        {"asset_id": "none", "shape": None},
    ]
    assert own is not None
    ranked = shapes.nearest(own, candidates, 3)
    assert [r["asset_id"] for r in ranked] == ["big ball", "cube", "plate"]
    assert all("shape" not in r for r in ranked)
    assert ranked[0]["distance"] < ranked[1]["distance"] < ranked[2]["distance"]


def test_a_mesh_without_area_has_no_descriptor() -> None:
    flat = trimesh.Trimesh(vertices=[[0, 0, 0], [1, 0, 0], [2, 0, 0]], faces=[[0, 1, 2]],
                           process=False)
    assert shape_descriptor(flat) is None
    assert not shapes.usable(None)
