"""Mesh export (:mod:`core.mesh_export`): every format read back by the studio's loader."""

from __future__ import annotations

import io
import zipfile
from functools import cache

import numpy as np
import pytest
import trimesh
from lxml import etree

from core.contracts.export import EXPORT_FORMATS, Exported
from core.errors import InvalidInput
from core.mesh_export import export_mesh
from core.meshio import load_mesh
from workers.mesh.materials import apply_material
from workers.mesh.styles import welded

TEXTURES = ("baseColorTexture", "metallicRoughnessTexture", "normalTexture", "occlusionTexture")


def _plain() -> trimesh.Trimesh:
    return trimesh.creation.annulus(r_min=0.5, r_max=1.0, height=0.3)


@cache
def _textured_once() -> trimesh.Trimesh:
    return apply_material(
        trimesh.creation.icosphere(subdivisions=2), "wood", {"texture_size": 128}, seed=5
    )


def _textured() -> trimesh.Trimesh:
    return _textured_once().copy()


def _coloured() -> trimesh.Trimesh:
    box = trimesh.creation.box()
    colours = np.tile(np.array([[200, 30, 10, 255]], dtype=np.uint8), (len(box.vertices), 1))
    colours[::2] = [10, 200, 30, 255]
    box.visual = trimesh.visual.ColorVisuals(box, vertex_colors=colours)
    return box


def _read_back(exported: Exported) -> trimesh.Trimesh:
    """Load an export with :func:`core.meshio.load_mesh`; an OBJ zip by its ``.obj`` member."""
    if exported.extension != "zip":
        return load_mesh(exported.data, file_type=exported.extension)
    with zipfile.ZipFile(io.BytesIO(exported.data)) as archive:
        (obj,) = [name for name in archive.namelist() if name.endswith(".obj")]
        return load_mesh(archive.read(obj), file_type="obj")


def _material(mesh: trimesh.Trimesh) -> object:
    visual = mesh.visual
    assert isinstance(visual, trimesh.visual.TextureVisuals)
    return visual.material


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
@pytest.mark.parametrize("make", [_plain, _textured, _coloured])
def test_export_round_trips_faces_and_volume(fmt: str, make: object) -> None:
    assert callable(make)
    source = make()
    back = _read_back(export_mesh(source, fmt, name="part"))
    assert len(back.faces) == len(source.faces)
    volume = welded(source).volume
    assert welded(back).volume == pytest.approx(volume, rel=1e-5)


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_export_is_reproducible(fmt: str) -> None:
    first = export_mesh(_textured(), fmt, name="ball", units="cm")
    again = export_mesh(_textured(), fmt, name="ball", units="cm")
    assert first == again


def test_media_types_and_extensions() -> None:
    plain, textured = _plain(), _textured()
    kinds = {
        fmt: (export_mesh(plain, fmt).media_type, export_mesh(plain, fmt).extension)
        for fmt in EXPORT_FORMATS
    }
    assert kinds == {
        "glb": ("model/gltf-binary", "glb"),
        "stl": ("model/stl", "stl"),
        "obj": ("model/obj", "obj"),
        "3mf": ("model/3mf", "3mf"),
    }
    textured_obj = export_mesh(textured, "OBJ")
    assert (textured_obj.media_type, textured_obj.extension) == ("application/zip", "zip")
    assert export_mesh(plain, ".Glb").extension == "glb"


def test_glb_keeps_the_pbr_material() -> None:
    source = _textured()
    back = _read_back(export_mesh(source, "glb"))
    material = _material(back)
    assert isinstance(material, trimesh.visual.material.PBRMaterial)
    original = _material(source)
    assert isinstance(original, trimesh.visual.material.PBRMaterial)
    for name in TEXTURES:
        image = getattr(material, name)
        assert image is not None, name
        assert np.array_equal(
            np.asarray(image.convert("RGB")), np.asarray(getattr(original, name))
        ), name
    visual = back.visual
    assert isinstance(visual, trimesh.visual.TextureVisuals)
    assert np.allclose(visual.uv, source.visual.uv, atol=1e-6)  # type: ignore[union-attr]


def test_glb_keeps_vertex_colours_and_records_units() -> None:
    source = _coloured()
    exported = export_mesh(source, "glb", units="inch")
    back, sent = _read_back(exported).visual, source.visual
    assert isinstance(back, trimesh.visual.ColorVisuals)
    assert isinstance(sent, trimesh.visual.ColorVisuals)
    assert back.kind == "vertex"
    assert np.array_equal(back.vertex_colors, sent.vertex_colors)
    assert b'"units":"inch"' in exported.data


def test_obj_zip_holds_the_obj_its_mtl_and_textures() -> None:
    exported = export_mesh(_textured(), "obj", name="ball", units="mm")
    with zipfile.ZipFile(io.BytesIO(exported.data)) as archive:
        names = archive.namelist()
        mtl = archive.read("ball.mtl").decode()
        obj = archive.read("ball.obj").decode()
    assert names[:2] == ["ball.obj", "ball.mtl"]
    assert {"ball_basecolor.png", "ball_metallic_roughness.png", "ball_normal.png"} <= set(names)
    assert "mtllib ball.mtl" in obj
    assert "# units: millimeter" in obj
    for line in ("map_Kd ball_basecolor.png", "norm ball_normal.png", "map_Pr -imfchan g"):
        assert line in mtl
    loaded = trimesh.load(io.BytesIO(exported.data), file_type="zip", force="mesh")
    assert isinstance(loaded, trimesh.Trimesh)
    image = getattr(_material(loaded), "image", None)
    assert image is not None
    assert image.size == (128, 128)


def test_plain_obj_is_text_with_vertex_colours() -> None:
    exported = export_mesh(_coloured(), "obj")
    assert exported.media_type == "model/obj"
    text = exported.data.decode()
    assert text.startswith("# units: millimeter")
    assert text.count("\nv ") == 8
    assert "mtllib" not in text


def test_stl_is_binary_with_units_in_the_header() -> None:
    exported = export_mesh(_plain(), "stl", name="ring", units="m")
    header = exported.data[:80]
    assert not header.startswith(b"solid")
    assert b"ring units=meter" in header
    assert len(exported.data) == 84 + 50 * len(_plain().faces)


@pytest.mark.parametrize(
    ("units", "unit"), [("mm", "millimeter"), ("inch", "inch"), ("um", "micron")]
)
def test_3mf_carries_the_unit(units: str, unit: str) -> None:
    exported = export_mesh(_plain(), "3mf", name="ring", units=units)
    with zipfile.ZipFile(io.BytesIO(exported.data)) as archive:
        root = etree.fromstring(archive.read("3D/3dmodel.model"))
    assert root.get("unit") == unit
    scene = trimesh.load_scene(io.BytesIO(exported.data), file_type="3mf")
    assert scene.metadata["units"] == unit
    assert "ring" in scene.geometry


def test_3mf_uuids_differ_between_meshes() -> None:
    def uuids(mesh: trimesh.Trimesh) -> list[str]:
        data = export_mesh(mesh, "3mf").data
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            root = etree.fromstring(archive.read("3D/3dmodel.model"))
        key = "{http://schemas.microsoft.com/3dmanufacturing/production/2015/06}UUID"
        return [element.get(key) for element in root.iter() if element.get(key)]

    first, second = uuids(_plain()), uuids(trimesh.creation.box())
    assert first
    assert not set(first) & set(second)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fmt": "fbx"}, r"the formats are \['glb', 'stl', 'obj', '3mf'\]"),
        ({"fmt": "glb", "units": "parsec"}, "unknown unit"),
        ({"fmt": "glb", "name": "../etc/passwd"}, "export name"),
        ({"fmt": "glb", "name": ""}, "export name"),
        ({"fmt": "glb", "name": "a" * 65}, "export name"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        export_mesh(_plain(), **kwargs)


def test_a_mesh_without_faces_is_refused() -> None:
    empty = trimesh.Trimesh(np.zeros((3, 3)), np.zeros((0, 3), dtype=np.int64), process=False)
    with pytest.raises(InvalidInput, match="without faces"):
        export_mesh(empty, "stl")
