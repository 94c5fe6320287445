"""GLB re-packing with EXT_meshopt_compression: the streams come back byte for byte."""

from __future__ import annotations

import json
import struct
from typing import Any

import meshopt
import numpy as np
import pytest
import trimesh

from core.errors import InvalidInput
from core.meshopt_glb import EXTENSION, compress_glb


def _glb(mesh: trimesh.Trimesh) -> bytes:
    data: bytes = mesh.export(file_type="glb")
    return data


def _parts(data: bytes) -> tuple[dict[str, Any], bytes]:
    json_length = struct.unpack_from("<I", data, 12)[0]
    gltf = json.loads(data[20:20 + json_length])
    binary_at = 20 + json_length
    binary_length = struct.unpack_from("<I", data, binary_at)[0]
    assert len(data) == struct.unpack_from("<I", data, 8)[0]
    return gltf, data[binary_at + 8:binary_at + 8 + binary_length]


def _canonical_triangles(raw: bytes, stride: int) -> bytes:
    """Each triangle turned to start at its smallest index: the index codec may rotate a
    triangle's corners (same face, same winding, same place in the list)."""
    triangles = np.frombuffer(raw, np.uint16 if stride == 2 else np.uint32).reshape(-1, 3)
    first = triangles.argmin(axis=1)
    turned = np.stack([np.roll(t, -f) for t, f in zip(triangles, first, strict=True)])
    return turned.tobytes()


def _unpacked_views(data: bytes) -> list[bytes]:
    """Every bufferView's bytes, decoding the packed ones; index lists as
    :func:`_canonical_triangles`."""
    gltf, binary = _parts(data)
    views = []
    for view in gltf["bufferViews"]:
        packed = view.get("extensions", {}).get(EXTENSION)
        if packed is None:
            start = view.get("byteOffset", 0)
            views.append(binary[start:start + view["byteLength"]])
            continue
        source = binary[packed["byteOffset"]:packed["byteOffset"] + packed["byteLength"]]
        rows = meshopt.decode_gltf_buffer(np.frombuffer(source, np.uint8), packed["count"],
                                          packed["byteStride"], packed["mode"])
        views.append(np.asarray(rows).tobytes()[:view["byteLength"]])
    indices = {a["bufferView"]: a for p in (m["primitives"] for m in gltf["meshes"])
               for a in [gltf["accessors"][q["indices"]] for q in p if "indices" in q]}
    for at, accessor in indices.items():
        stride = 2 if accessor["componentType"] == 5123 else 4
        views[at] = _canonical_triangles(views[at], stride)
    return views


def _sphere() -> trimesh.Trimesh:
    sphere = trimesh.creation.icosphere(subdivisions=4)
    colours = (np.abs(sphere.vertices) * 255).astype(np.uint8)
    sphere.visual.vertex_colors = np.column_stack([colours, np.full(len(colours), 255, np.uint8)])
    return sphere


def test_streams_round_trip_and_shrink() -> None:
    plain = _glb(_sphere())
    packed = compress_glb(plain)
    gltf, _ = _parts(packed)
    assert EXTENSION in gltf["extensionsUsed"] and EXTENSION in gltf["extensionsRequired"]
    assert gltf["buffers"][1]["extensions"][EXTENSION] == {"fallback": True}
    modes = {v["extensions"][EXTENSION]["mode"] for v in gltf["bufferViews"] if "extensions" in v}
    assert modes == {"ATTRIBUTES", "TRIANGLES"}
    assert _unpacked_views(packed) == _unpacked_views(plain)
    assert len(packed) < 0.6 * len(plain), (len(packed), len(plain))


def test_packed_twice_is_packed_once() -> None:
    packed = compress_glb(_glb(_sphere()))
    assert compress_glb(packed) == packed


def test_a_point_cloud_has_nothing_to_pack_but_its_positions() -> None:
    cloud = trimesh.PointCloud(np.random.default_rng(1).random((50, 3)))
    plain: bytes = cloud.export(file_type="glb")
    packed = compress_glb(plain)
    assert _unpacked_views(packed) == _unpacked_views(plain)


@pytest.mark.parametrize("data", [b"", b"solid cube\nendsolid", b"glTF" + b"\0" * 30])
def test_not_a_glb_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        compress_glb(data)
