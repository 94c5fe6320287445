"""GLB files re-packed with ``EXT_meshopt_compression``, for the browser to download less.

Stage meshes and exports are stored as plain GLB (every tool reads it); the API packs a copy
on request (``?encoding=meshopt``) because meshoptimizer's codecs encode at hundreds of MB/s
and the browser's decoder (WebAssembly) unpacks them as fast, while the vertex and index
streams of a generated mesh shrink to about a third.

Only the geometry streams are packed: each bufferView that holds one accessor's vertex
attribute (rows of 4 to 256 bytes, in fours) or a triangle list's indices. Images and anything
else stay as they are. Vertices and faces keep their order (no re-ordering for the codec),
since per-face data such as the heat maps refer to faces in file order; the index codec may
start a triangle at another of its corners, which keeps the face and its winding.

The layout is gltfpack's: ``buffers[0]`` is the GLB's binary chunk holding the packed streams
and the untouched views; ``buffers[1]`` is a *fallback* buffer without data, as long as the
unpacked streams, which the packed bufferViews point into. The extension is required: a
reader without it could not read the geometry, so a client asks for this encoding only when
it has the decoder.
"""

from __future__ import annotations

import json
import struct
from typing import Any, Final

import meshopt
import numpy as np

from core.errors import InvalidInput

EXTENSION: Final = "EXT_meshopt_compression"
_MAGIC: Final = 0x46546C67  # "glTF"
_JSON: Final = 0x4E4F534A
_BIN: Final = 0x004E4942
_COMPONENT_BYTES: Final = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
_TYPE_COMPONENTS: Final = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9,
                           "MAT4": 16}
_TRIANGLES: Final = 4


ENCODINGS: Final = ("meshopt",)
"""What ``?encoding=`` may ask of a GLB download."""


def encoding_wanted(value: str | None) -> bool:
    """Whether a request's ``encoding`` parameter asks for packing; refuses unknown ones."""
    if value is None or value == "":
        return False
    if value not in ENCODINGS:
        raise InvalidInput(f"encoding must be one of {', '.join(ENCODINGS)}, got {value!r}")
    return True


def compress_glb(data: bytes) -> bytes:
    """``data`` (a GLB) with its geometry streams packed; unchanged when it has nothing to
    pack or is packed already. Raises :class:`InvalidInput` when it is not a GLB."""
    gltf, binary = _read(data)
    if EXTENSION in gltf.get("extensionsUsed", []) or len(gltf.get("buffers", [])) != 1:
        return data
    streams = _streams(gltf)
    if not streams:
        return data
    packed = bytearray()
    fallback = 0
    for index, view in enumerate(gltf.get("bufferViews", [])):
        start = view.get("byteOffset", 0)
        raw = binary[start:start + view["byteLength"]]
        stream = streams.get(index)
        _pad(packed)
        if stream is None:
            view["byteOffset"] = len(packed)
            packed += raw
            continue
        mode, stride, count = stream
        encoded = _encode(raw, mode, stride, count)
        fallback += -fallback % 4
        view.update(buffer=1, byteOffset=fallback)
        view["extensions"] = {EXTENSION: {
            "buffer": 0, "byteOffset": len(packed), "byteLength": len(encoded),
            "byteStride": stride, "count": count, "mode": mode}}
        if mode == "ATTRIBUTES":
            view["byteStride"] = stride
        fallback += view["byteLength"]
        packed += encoded
    _pad(packed)
    gltf["buffers"] = [{"byteLength": len(packed)},
                       {"byteLength": fallback, "extensions": {EXTENSION: {"fallback": True}}}]
    for key in ("extensionsUsed", "extensionsRequired"):
        gltf[key] = sorted({*gltf.get(key, []), EXTENSION})
    return _write(gltf, bytes(packed))


def _streams(gltf: dict[str, Any]) -> dict[int, tuple[str, int, int]]:
    """bufferView index → (mode, row bytes, rows) for each view that can be packed."""
    accessors = gltf.get("accessors", [])
    users: dict[int, list[int]] = {}
    for i, accessor in enumerate(accessors):
        if "bufferView" in accessor and "sparse" not in accessor:
            users.setdefault(accessor["bufferView"], []).append(i)
    indices: set[int] = set()
    attributes: set[int] = set()
    for mesh in gltf.get("meshes", []):
        for primitive in mesh.get("primitives", []):
            if primitive.get("extensions"):
                continue  # already packed some other way (Draco)
            if "indices" in primitive and primitive.get("mode", _TRIANGLES) == _TRIANGLES:
                indices.add(primitive["indices"])
            attributes.update(primitive.get("attributes", {}).values())
    streams: dict[int, tuple[str, int, int]] = {}
    for view_index, view in enumerate(gltf.get("bufferViews", [])):
        used = users.get(view_index, [])
        if len(used) != 1 or view.get("extensions"):
            continue
        accessor = accessors[used[0]]
        size = (_COMPONENT_BYTES.get(accessor["componentType"], 0)
                * _TYPE_COMPONENTS.get(accessor["type"], 0))
        whole = (accessor.get("byteOffset", 0) == 0 and view.get("byteStride", size) == size
                 and view["byteLength"] == size * accessor["count"] and accessor["count"] > 0)
        if not whole:
            continue
        if used[0] in indices and size in (2, 4) and accessor["count"] % 3 == 0:
            streams[view_index] = ("TRIANGLES", size, accessor["count"])
        elif used[0] in attributes and size % 4 == 0 and size <= 256:
            streams[view_index] = ("ATTRIBUTES", size, accessor["count"])
    return streams


def _encode(raw: bytes, mode: str, stride: int, count: int) -> bytes:
    if mode == "TRIANGLES":
        indices = np.frombuffer(raw, dtype=np.uint16 if stride == 2 else np.uint32)
        return meshopt.encode_gltf_buffer(indices, "TRIANGLES")
    return meshopt.encode_gltf_buffer(np.frombuffer(raw, np.uint8).reshape(count, stride),
                                      "ATTRIBUTES")


def _read(data: bytes) -> tuple[dict[str, Any], bytes]:
    if len(data) < 20:
        raise InvalidInput("not a GLB file: too short")
    magic, version, length = struct.unpack_from("<III", data)
    if magic != _MAGIC or version != 2 or length > len(data):
        raise InvalidInput("not a glTF 2.0 binary (GLB) file")
    gltf: dict[str, Any] | None = None
    binary = b""
    offset = 12
    while offset + 8 <= length:
        chunk_length, kind = struct.unpack_from("<II", data, offset)
        chunk = data[offset + 8:offset + 8 + chunk_length]
        if kind == _JSON:
            gltf = json.loads(chunk)
        elif kind == _BIN and not binary:
            binary = chunk
        offset += 8 + chunk_length
    if gltf is None:
        raise InvalidInput("GLB file without its JSON chunk")
    return gltf, binary


def _write(gltf: dict[str, Any], binary: bytes) -> bytes:
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    length = 12 + 8 + len(text) + 8 + len(binary)
    return b"".join((struct.pack("<III", _MAGIC, 2, length), struct.pack("<II", len(text), _JSON),
                     text, struct.pack("<II", len(binary), _BIN), binary))


def _pad(buffer: bytearray) -> None:
    buffer += b"\0" * (-len(buffer) % 4)
