"""Writing a mesh as a downloadable file: GLB, STL, OBJ (with its material) or 3MF.

:func:`export_mesh` turns one :class:`trimesh.Trimesh` into the bytes of a single download
and says what they are (media type, file extension). What each format keeps:

========  =================================================================  ====================
format    keeps                                                              units recorded in
========  =================================================================  ====================
``glb``   positions, normals, UVs, the PBR material and its textures, or     ``asset.extras.units``
          vertex colours
``stl``   positions only (binary STL, one normal per face)                   the 80-byte header
``obj``   positions, normals, UVs; with a material a zip of ``name.obj``,    a comment line
          ``name.mtl`` and the texture PNGs, else plain OBJ text
``3mf``   positions and faces                                                the model's ``unit``
========  =================================================================  ====================

Only 3MF has a real unit attribute; the others have none, so the unit is written where a
reader can see it without affecting geometry. Coordinates are never rescaled: a glTF viewer
reads metres, so a model in millimetres looks a thousand times too big there, and the
``extras`` say why. trimesh writes every 3MF as millimetres, so the model XML is rewritten
with the unit asked for.

The bytes depend only on the mesh and the arguments (fixed zip timestamps, 3MF object UUIDs
derived from the geometry instead of random ones), so blobs stored under content addresses
deduplicate and an export can be reproduced.

It lives in ``core``, beside the loader (:mod:`core.meshio`), because the API converts a
download on request: in a bounded child process (:mod:`core.geometry_tasks`), since ``api``
imports nothing of ``workers`` and loads no geometry stack itself. The formats and the
:class:`~core.contracts.export.Exported` answer are in :mod:`core.contracts.export`.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import re
import uuid
import zipfile
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import trimesh
from PIL import Image

from core.contracts.export import EXPORT_FORMATS, Exported
from core.errors import InvalidInput

UNITS: Final = {
    "micron": "micron",
    "um": "micron",
    "mm": "millimeter",
    "millimeter": "millimeter",
    "millimeters": "millimeter",
    "cm": "centimeter",
    "centimeter": "centimeter",
    "centimeters": "centimeter",
    "m": "meter",
    "meter": "meter",
    "meters": "meter",
    "in": "inch",
    "inch": "inch",
    "inches": "inch",
    "ft": "foot",
    "foot": "foot",
    "feet": "foot",
}
"""Accepted unit names and the 3MF unit each one means (3MF's six units)."""

_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A file stem safe inside a zip and in every format's headers."""

_ZIP_TIME: Final = (1980, 1, 1, 0, 0, 0)
"""Timestamp of every zip member (the earliest zip can store), so equal input, equal bytes."""

_THREEMF_MODEL: Final = "3D/3dmodel.model"

_MODEL_UNIT: Final = re.compile(rb"(<model\b[^>]*?)\bunit=\"[A-Za-z]*\"")
"""The ``unit`` attribute of the model element (trimesh always writes ``millimeter``)."""

_PRODUCTION_UUID: Final = re.compile(rb'p:UUID="[^"]*"')
"""The object UUIDs of 3MF's production extension, as trimesh writes them."""


def export_mesh(
    mesh: trimesh.Trimesh, fmt: str, *, name: str = "mesh", units: str = "mm"
) -> Exported:
    """Write ``mesh`` in format ``fmt`` as a single download.

    Parameters
    ----------
    mesh
        ``vertices : (n, 3) float``, ``faces : (m, 3) int`` with ``m >= 1``; its visual
        (texture and material, or colours) is written where the format can hold it.
    fmt
        One of :data:`EXPORT_FORMATS` (case and a leading dot are ignored).
    name
        File stem used inside the file (object names, the zip's member names): a letter or
        digit, then up to 63 letters, digits, ``.``, ``_`` or ``-``.
    units
        Unit of the coordinates, one of :data:`UNITS`; recorded, never applied.

    Returns
    -------
    exported
        ``glb``: ``model/gltf-binary``; ``stl``: ``model/stl``; ``3mf``: ``model/3mf``;
        ``obj``: ``application/zip`` with extension ``zip`` when the mesh has a textured
        material (UVs), else ``model/obj`` text.

    Raises
    ------
    InvalidInput
        Unknown format or unit, a bad name, or a mesh without faces.
    """
    writer = _WRITERS.get(fmt.lower().lstrip(".")) if isinstance(fmt, str) else None
    if writer is None:
        raise InvalidInput(f"cannot export as {fmt!r}; the formats are {list(EXPORT_FORMATS)}")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"export name {name!r} must be a letter or digit followed by up to 63 letters, "
            "digits, '.', '_' or '-'"
        )
    if units not in UNITS:
        raise InvalidInput(f"unknown unit {units!r}; the units are {sorted(UNITS)}")
    if len(mesh.faces) == 0:
        raise InvalidInput("cannot export a mesh without faces")
    return writer(mesh, name, UNITS[units])


# --------------------------------------------------------------------------- formats


def _glb(mesh: trimesh.Trimesh, name: str, unit: str) -> Exported:
    def record_unit(tree: dict[str, Any]) -> None:
        tree.setdefault("asset", {}).setdefault("extras", {})["units"] = unit

    data = trimesh.exchange.gltf.export_glb(
        _scene(mesh, name), include_normals=True, tree_postprocessor=record_unit
    )
    return Exported(bytes(data), "model/gltf-binary", "glb")


def _stl(mesh: trimesh.Trimesh, name: str, unit: str) -> Exported:
    """Binary STL with the name and unit in its free-text header.

    The header must not start with ``solid``, which readers take for ASCII STL.
    """
    data = trimesh.exchange.stl.export_stl(mesh)
    header = f"ORFEAS Studio {name} units={unit}".encode("ascii")[:80].ljust(80, b" ")
    return Exported(header + bytes(data[80:]), "model/stl", "stl")


def _obj(mesh: trimesh.Trimesh, name: str, unit: str) -> Exported:
    """Plain OBJ text, or a zip of the OBJ, its MTL and textures when it has a material."""
    material = _material(mesh)
    text = trimesh.exchange.obj.export_obj(
        mesh,
        include_normals=True,
        include_texture=material is not None,
        return_texture=False,
        mtl_name=f"{name}.mtl",
    )
    text = f"# units: {unit}\n{text}"
    if material is None:
        return Exported(text.encode("utf-8"), "model/obj", "obj")
    used = re.search(r"^usemtl (.+)$", text, flags=re.MULTILINE)
    material_name = used.group(1).strip() if used else "material"
    mtl, images = _mtl(material, material_name, name)
    members = {f"{name}.obj": text.encode("utf-8"), f"{name}.mtl": mtl, **images}
    return Exported(_zipped(members), "application/zip", "zip")


def _threemf(mesh: trimesh.Trimesh, name: str, unit: str) -> Exported:
    data = trimesh.exchange.threemf.export_3MF(_scene(mesh, name))
    return Exported(_rewritten_3mf(bytes(data), unit, _digest(mesh)), "model/3mf", "3mf")


_WRITERS: Final[dict[str, Callable[[trimesh.Trimesh, str, str], Exported]]] = {
    "glb": _glb,
    "stl": _stl,
    "obj": _obj,
    "3mf": _threemf,
}


# --------------------------------------------------------------------------- helpers


def _scene(mesh: trimesh.Trimesh, name: str) -> trimesh.Scene:
    """A scene of ``mesh`` alone, its geometry and node called ``name``."""
    scene = trimesh.Scene()
    scene.add_geometry(mesh, geom_name=name, node_name=name)
    return scene


def _material(mesh: trimesh.Trimesh) -> Any:
    """The mesh's material when it has UVs to go with it, else ``None``."""
    visual = mesh.visual
    if not isinstance(visual, trimesh.visual.TextureVisuals) or visual.uv is None:
        return None
    if len(visual.uv) != len(mesh.vertices):
        return None
    return visual.material


def _mtl(material: Any, material_name: str, name: str) -> tuple[bytes, dict[str, bytes]]:
    """The MTL text for ``material`` and its texture PNGs, keyed by member name.

    A PBR material uses the MTL PBR extension (``Pr``, ``Pm``, ``map_Pr``, ``map_Pm``,
    ``norm``): roughness and metalness are read from the green and blue channels of the
    glTF metallic-roughness image (``-imfchan``). Readers that know only classic MTL still
    get the base colour as ``map_Kd``.
    """
    lines = [f"newmtl {material_name}", "Ka 0.000000 0.000000 0.000000"]
    images: dict[str, bytes] = {}
    if isinstance(material, trimesh.visual.material.PBRMaterial):
        factor = _rgb(material.baseColorFactor)
        lines += [f"Kd {factor}", "Ks 0.000000 0.000000 0.000000"]
        lines += [
            f"Pr {_factor(material.roughnessFactor)}",
            f"Pm {_factor(material.metallicFactor)}",
        ]
        textures = {
            "map_Kd": (material.baseColorTexture, "basecolor", ""),
            "map_Pr": (material.metallicRoughnessTexture, "metallic_roughness", "-imfchan g "),
            "map_Pm": (material.metallicRoughnessTexture, "metallic_roughness", "-imfchan b "),
            "norm": (material.normalTexture, "normal", ""),
        }
    else:
        lines += [f"Kd {_rgb(getattr(material, 'diffuse', None))}"]
        textures = {"map_Kd": (getattr(material, "image", None), "basecolor", "")}
    for key, (image, role, option) in textures.items():
        if image is None:
            continue
        member = f"{name}_{role}.png"
        images.setdefault(member, _png(image))
        lines.append(f"{key} {option}{member}")
    return ("\n".join(lines) + "\n").encode("utf-8"), images


def _rgb(color: Any) -> str:
    """MTL colour from an RGBA sequence (0-255 integers or 0-1 floats); white when unset."""
    if color is None:
        return "1.000000 1.000000 1.000000"
    values = np.asarray(color, dtype=np.float64)[:3]
    if np.asarray(color).dtype.kind in "iu" or values.max() > 1.0:
        values = values / 255.0
    return " ".join(f"{value:.6f}" for value in values)


def _factor(value: float | None) -> str:
    return f"{1.0 if value is None else float(value):.6f}"


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _zipped(members: dict[str, bytes]) -> bytes:
    """A deflated zip of ``members`` in the given order, with fixed timestamps."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, content in members.items():
            info = zipfile.ZipInfo(member, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


def _digest(mesh: trimesh.Trimesh) -> str:
    """SHA-256 of the mesh's positions and faces, the seed of its 3MF object UUIDs."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(mesh.vertices, dtype="<f8").tobytes())
    digest.update(np.ascontiguousarray(mesh.faces, dtype="<i8").tobytes())
    return digest.hexdigest()


def _rewritten_3mf(data: bytes, unit: str, digest: str) -> bytes:
    """trimesh's 3MF with the model's ``unit`` set and its random UUIDs made reproducible.

    3MF's production extension wants every object to carry a UUID; trimesh draws them at
    random, which would make every export of the same mesh a different blob. They are
    replaced by UUIDs derived (uuid5) from the geometry's digest and their order. The model
    XML is edited as bytes rather than parsed: it holds one element per vertex and face, and
    a tree of a million-face model would take hundreds of megabytes.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        members = {info.filename: source.read(info) for info in source.infolist()}
    model = members[_THREEMF_MODEL]
    unit_attribute = f'unit="{unit}"'.encode()
    model, found = _MODEL_UNIT.subn(rb"\g<1>" + unit_attribute, model, count=1)
    if not found:
        model = re.sub(rb"<model\b", b"<model " + unit_attribute, model, count=1)
    numbers = itertools.count()

    def reproducible(_: re.Match[bytes]) -> bytes:
        made = uuid.uuid5(uuid.NAMESPACE_URL, f"{digest}/{next(numbers)}")
        return f'p:UUID="{made}"'.encode()

    members[_THREEMF_MODEL] = _PRODUCTION_UUID.sub(reproducible, model)
    return _zipped(members)
