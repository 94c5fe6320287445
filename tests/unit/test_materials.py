"""Procedural PBR materials (:mod:`workers.mesh.materials`): atlas, textures, occlusion, GLB."""

from __future__ import annotations

import io
import json
import struct
from functools import cache

import numpy as np
import pytest
import trimesh
from PIL import Image
from scipy.sparse import coo_matrix, csgraph

from core.errors import InvalidInput
from workers.mesh import materials
from workers.mesh.materials import (
    MATERIALS,
    Atlas,
    apply_material,
    dilate,
    rasterise,
    unwrap,
    validate_material_params,
)

SIZE = 128
"""Texture size of most tests: the smallest allowed, to keep the module quick."""

TEXTURES = ("baseColorTexture", "metallicRoughnessTexture", "normalTexture", "occlusionTexture")


def _ball() -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=3)


@cache
def _textured(kind: str, seed: int = 7) -> trimesh.Trimesh:
    return apply_material(_ball(), kind, {"texture_size": SIZE}, seed=seed)


def _visual(mesh: trimesh.Trimesh) -> trimesh.visual.TextureVisuals:
    visual = mesh.visual
    assert isinstance(visual, trimesh.visual.TextureVisuals)
    return visual


def _material(mesh: trimesh.Trimesh) -> trimesh.visual.material.PBRMaterial:
    material = _visual(mesh).material
    assert isinstance(material, trimesh.visual.material.PBRMaterial)
    return material


def _texture_bytes(mesh: trimesh.Trimesh) -> dict[str, bytes]:
    material = _material(mesh)
    return {name: getattr(material, name).tobytes() for name in TEXTURES}


def _glb_json(data: bytes) -> dict[str, object]:
    """The JSON chunk of a GLB, after checking the header the specification requires."""
    magic, version, length = struct.unpack("<4sII", data[:12])
    assert (magic, version, length) == (b"glTF", 2, len(data))
    chunk_length, chunk_type = struct.unpack("<I4s", data[12:20])
    assert chunk_type == b"JSON"
    tree: dict[str, object] = json.loads(data[20 : 20 + chunk_length])
    return tree


# --------------------------------------------------------------------------- the textured mesh


@pytest.mark.parametrize("kind", MATERIALS)
def test_material_gives_uvs_in_the_unit_square_on_the_same_surface(kind: str) -> None:
    textured = _textured(kind)
    source = _ball()
    uv = _visual(textured).uv
    assert uv.shape == (len(textured.vertices), 2)
    assert uv.min() >= 0.0
    assert uv.max() <= 1.0
    assert np.array_equal(textured.triangles, source.triangles)
    material = _material(textured)
    assert isinstance(material, trimesh.visual.material.PBRMaterial)
    for name in TEXTURES:
        assert getattr(material, name).size == (SIZE, SIZE)


@pytest.mark.parametrize("kind", MATERIALS)
def test_every_material_round_trips_through_glb(kind: str) -> None:
    textured = _textured(kind)
    data = trimesh.exchange.gltf.export_glb(textured.scene(), include_normals=True)
    materials_json = _glb_json(data)["materials"]
    assert isinstance(materials_json, list)
    (entry,) = materials_json
    assert {"normalTexture", "occlusionTexture"} <= set(entry)
    assert {"baseColorTexture", "metallicRoughnessTexture"} <= set(entry["pbrMetallicRoughness"])
    loaded = trimesh.load(io.BytesIO(data), file_type="glb", force="mesh")
    assert isinstance(loaded, trimesh.Trimesh)
    assert len(loaded.faces) == len(textured.faces)
    material = _material(loaded)
    for name in TEXTURES:
        image = getattr(material, name)
        assert image is not None, name
        assert image.size == (SIZE, SIZE)
    original = np.asarray(_material(textured).baseColorTexture)
    assert np.array_equal(np.asarray(material.baseColorTexture.convert("RGB")), original)


def test_metal_is_metallic_and_the_others_are_not() -> None:
    for kind in MATERIALS:
        packed = np.asarray(_material(_textured(kind)).metallicRoughnessTexture)
        metallic = packed[..., 2]
        assert (metallic.min() == 255) if kind == "metal" else (metallic.max() == 0), kind


def test_roughness_stays_in_the_range_asked_for() -> None:
    textured = apply_material(
        _ball(), "stone", {"roughness": [0.2, 0.4], "texture_size": SIZE}, seed=1
    )
    roughness = np.asarray(_material(textured).metallicRoughnessTexture)[..., 1]
    assert roughness.min() >= np.floor(0.2 * 255)
    assert roughness.max() <= np.ceil(0.4 * 255)
    assert roughness.max() - roughness.min() > 10


def test_colour_sets_the_base_colour() -> None:
    red = apply_material(_ball(), "plastic", {"color": "#ff0000", "texture_size": SIZE}, seed=1)
    base = np.asarray(_material(red).baseColorTexture).reshape(-1, 3).astype(int)
    assert (base[:, 0] > 200).all()
    assert (base[:, 1:] < 30).all()


def test_gutters_are_filled_with_the_material() -> None:
    textured = _textured("wood")
    base = np.asarray(_material(textured).baseColorTexture).reshape(-1, 3)
    # no texel of the atlas is left black: every gutter takes its nearest chart's colour
    assert base.sum(axis=1).min() > 60


def test_a_flat_shaded_mesh_stays_flat_shaded() -> None:
    flat = _ball()
    flat.unmerge_vertices()
    textured = apply_material(flat, "ceramic", {"texture_size": SIZE}, seed=0)
    corner_normals = textured.vertex_normals[textured.faces]
    assert np.allclose(corner_normals, textured.face_normals[:, None, :], atol=1e-6)


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_textures() -> None:
    first = apply_material(_ball(), "stone", {"texture_size": SIZE}, seed=11)
    again = apply_material(_ball(), "stone", {"texture_size": SIZE}, seed=11)
    assert _texture_bytes(first) == _texture_bytes(again)
    assert np.array_equal(_visual(first).uv, _visual(again).uv)


@pytest.mark.parametrize("kind", MATERIALS)
def test_another_seed_another_pattern(kind: str) -> None:
    one = _textured(kind, seed=7)
    other = _textured(kind, seed=8)
    assert _texture_bytes(one)["baseColorTexture"] != _texture_bytes(other)["baseColorTexture"]


# --------------------------------------------------------------------------- occlusion


def _cup() -> trimesh.Trimesh:
    outer = trimesh.creation.box((1.0, 1.0, 1.0))
    inner = trimesh.creation.box((0.8, 0.8, 1.0))
    inner.apply_translation([0.0, 0.0, 0.1])
    return trimesh.boolean.difference([outer, inner], engine="manifold")


def _occlusion_at(textured: trimesh.Trimesh, faces: np.ndarray) -> np.ndarray:
    """Occlusion texel value (0-255) under the UV centroid of each of ``faces``."""
    occlusion = np.asarray(_material(textured).occlusionTexture)[..., 0]
    size = occlusion.shape[0]
    uv = _visual(textured).uv[textured.faces[faces]].mean(axis=1)
    column = np.clip((uv[:, 0] * size).astype(int), 0, size - 1)
    row = np.clip(((1.0 - uv[:, 1]) * size).astype(int), 0, size - 1)
    return occlusion[row, column].astype(float)


def test_occlusion_is_darker_inside_a_cup_than_outside() -> None:
    cup = _cup()
    textured = apply_material(cup, "plastic", {"texture_size": 256}, seed=3)
    normals, centres = textured.face_normals, textured.triangles_center
    inner_floor = np.flatnonzero((normals[:, 2] > 0.99) & (np.abs(centres[:, 2] + 0.4) < 1e-6))
    outer_walls = np.flatnonzero(
        (np.abs(normals[:, 2]) < 0.01) & (np.abs(centres[:, :2]).max(axis=1) > 0.49)
    )
    assert len(inner_floor) and len(outer_walls)
    inside = _occlusion_at(textured, inner_floor).mean()
    outside = _occlusion_at(textured, outer_walls).mean()
    assert outside > 230
    assert inside < outside - 60


# --------------------------------------------------------------------------- atlases


def _uv_charts(atlas: Atlas) -> list[np.ndarray]:
    """Face indices of each chart: faces joined through shared atlas vertices."""
    faces = atlas.faces
    corners = faces.reshape(-1)
    owner = np.repeat(np.arange(len(faces)), 3)
    graph = coo_matrix(
        (np.ones(len(corners)), (owner, corners)), shape=(len(faces), len(atlas.uv))
    ).tocsr()
    _, label = csgraph.connected_components(graph @ graph.T, directed=False)
    return [np.flatnonzero(label == chart) for chart in range(label.max() + 1)]


def _assert_charts_apart(atlas: Atlas) -> None:
    boxes = []
    for chart in _uv_charts(atlas):
        points = atlas.uv[atlas.faces[chart].reshape(-1)]
        boxes.append((points.min(axis=0), points.max(axis=0)))
    for index, (low, high) in enumerate(boxes):
        for other_low, other_high in boxes[index + 1 :]:
            assert (high <= other_low).any() or (other_high <= low).any()


def test_box_atlas_for_large_meshes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(materials, "XATLAS_MAX_FACES", 0)
    solid = _cup()
    atlas = unwrap(solid, 256)
    assert atlas.source == "box"
    assert atlas.uv.min() >= 0.0
    assert atlas.uv.max() <= 1.0
    assert np.array_equal(atlas.vertex[atlas.faces], solid.faces)
    _assert_charts_apart(atlas)
    # every chart is laid flat without stretch along its axis: areas keep their ratios
    uv_area = trimesh.triangles.area(
        np.dstack([atlas.uv[atlas.faces], np.zeros((len(solid.faces), 3, 1))])
    )
    ratio = uv_area / solid.area_faces
    assert np.allclose(ratio, ratio[0], rtol=1e-6)


def test_box_atlas_when_xatlas_crashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(materials, "_XATLAS_SCRIPT", "import os; os.abort()")
    atlas = unwrap(_ball(), SIZE)
    assert atlas.source == "box"
    textured = apply_material(_ball(), "wood", {"texture_size": SIZE}, seed=1)
    assert _visual(textured).uv.max() <= 1.0


def test_xatlas_atlas_keeps_faces_and_separates_charts() -> None:
    solid = _ball()
    atlas = unwrap(solid, SIZE)
    assert atlas.source == "xatlas"
    assert np.array_equal(atlas.vertex[atlas.faces], solid.faces)
    coverage = rasterise(atlas, SIZE)
    assert 0.3 * SIZE * SIZE < len(coverage.texel) < SIZE * SIZE
    assert set(np.unique(coverage.face)) <= set(range(len(solid.faces)))


def test_rasterise_covers_a_triangle_exactly() -> None:
    atlas = Atlas(
        vertex=np.arange(3),
        faces=np.array([[0, 1, 2]]),
        uv=np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]),
        source="test",
    )
    coverage = rasterise(atlas, 8)
    # texel centres (c + 0.5, r + 0.5) / 8 with u + v <= 1: 8 + 7 + ... + 1 of them
    assert len(coverage.texel) == 36
    assert np.allclose(coverage.barycentric.sum(axis=1), 1.0)
    assert coverage.barycentric.min() >= 0.0


def test_dilate_extends_each_chart_to_its_nearest_texels() -> None:
    image = np.zeros((6, 6, 1))
    mask = np.zeros((6, 6), dtype=bool)
    image[0, 0], mask[0, 0] = 1.0, True
    image[5, 5], mask[5, 5] = 3.0, True
    grown = dilate(image, mask)[..., 0]
    assert grown[0, 1] == grown[1, 1] == grown[2, 0] == 1.0
    assert grown[4, 4] == grown[5, 3] == 3.0
    assert set(np.unique(grown)) == {1.0, 3.0}
    assert np.array_equal(dilate(image, mask)[mask], image[mask])


# --------------------------------------------------------------------------- parameters


def test_defaults_are_filled_in() -> None:
    params = validate_material_params("wood", None)
    assert params["texture_size"] == 512
    assert params["scale"] == 1.0
    assert len(params["color"]) == 3
    low, high = params["roughness"]
    assert 0.0 <= low <= high <= 1.0
    assert validate_material_params("metal", {"color": "#FF8000"})["color"] == pytest.approx(
        [1.0, 128 / 255, 0.0]
    )


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("gold", {}, "unknown material"),
        ("wood", {"grain": 3}, "unknown wood parameter"),
        ("wood", "oak", "must be an object"),
        ("wood", {"color": "red"}, "#rrggbb"),
        ("wood", {"color": "#12345"}, "#rrggbb"),
        ("wood", {"color": [1.0, 0.5]}, r"\[r, g, b\]"),
        ("wood", {"color": [1.0, 0.5, 2.0]}, "must lie in"),
        ("wood", {"roughness": [0.8, 0.2]}, "low <= high"),
        ("wood", {"roughness": 0.5}, r"\[low, high\]"),
        ("wood", {"scale": 0}, "scale must lie in"),
        ("wood", {"scale": "big"}, "must be a number"),
        ("wood", {"texture_size": 300}, "texture_size must be one of"),
        ("wood", {"texture_size": 4096}, "texture_size must be one of"),
        ("wood", {"texture_size": True}, "texture_size must be one of"),
    ],
)
def test_bad_parameters_are_refused(kind: str, params: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        validate_material_params(kind, params)  # type: ignore[arg-type]


def test_bad_seed_and_empty_mesh_are_refused() -> None:
    with pytest.raises(InvalidInput, match="seed"):
        apply_material(_ball(), "wood", {}, seed="7")  # type: ignore[arg-type]
    empty = trimesh.Trimesh(np.zeros((3, 3)), np.zeros((0, 3), dtype=np.int64), process=False)
    with pytest.raises(InvalidInput, match="without faces"):
        apply_material(empty, "wood", {}, seed=1)


def test_texture_images_are_plain_rgb() -> None:
    material = _material(_textured("fabric"))
    for name in TEXTURES:
        image = getattr(material, name)
        assert isinstance(image, Image.Image)
        assert image.mode == "RGB"
