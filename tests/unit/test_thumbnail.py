"""The mesh thumbnail drawn at analysis: a picture of the shape itself (different shapes give
different silhouettes), on a transparent background, and bounded work for a huge mesh."""

from __future__ import annotations

import io

import numpy as np
import pytest
import trimesh
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from core.assistant import answers
from workers.mesh import thumbnail
from workers.mesh.thumbnail import SIZE, render_thumbnail, thumbnail_of


def _alpha(png: bytes) -> NDArray[np.uint8]:
    picture = Image.open(io.BytesIO(png))
    assert picture.format == "PNG" and picture.mode == "RGBA" and picture.size == (SIZE, SIZE)
    return np.asarray(picture)[:, :, 3]


def test_a_box_and_a_sphere_give_different_non_empty_silhouettes() -> None:
    box = _alpha(render_thumbnail(trimesh.creation.box(extents=(40.0, 10.0, 10.0)))) > 127
    ball = _alpha(render_thumbnail(trimesh.creation.icosphere(subdivisions=3, radius=5.0))) > 127
    for covered in (box, ball):
        assert 0.05 * covered.size < covered.sum() < 0.9 * covered.size
    assert (box != ball).mean() > 0.1


def test_the_background_is_transparent_and_the_shape_is_shaded() -> None:
    png = render_thumbnail(trimesh.creation.box(extents=(10.0, 10.0, 10.0)))
    picture = np.asarray(Image.open(io.BytesIO(png)))
    corners = picture[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners[:, 3] == 0).all()
    opaque = picture[picture[:, :, 3] == 255][:, :3]
    # Three sides of a cube face the three-quarter view, each lit differently.
    assert len({tuple(c) for c in opaque}) >= 3


def test_a_huge_mesh_is_drawn_from_its_largest_faces_only(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[int] = []
    original = thumbnail._draw

    def counting(draw: ImageDraw.ImageDraw, view: NDArray[np.float64], pixels: int) -> None:
        drawn.append(len(view))
        original(draw, view, pixels)

    monkeypatch.setattr(thumbnail, "_draw", counting)
    huge = trimesh.creation.icosphere(subdivisions=6, radius=10.0)  # 81,920 faces
    assert len(huge.faces) > 4 * thumbnail.MAX_FACES
    assert _alpha(render_thumbnail(huge)).any()
    assert drawn == [thumbnail.MAX_FACES]


def test_a_mesh_without_faces_has_no_thumbnail() -> None:
    assert thumbnail_of(trimesh.Trimesh(vertices=np.zeros((3, 3)), faces=np.zeros((0, 3)))) \
        is None


def test_similar_designs_name_only_the_neighbours_without_a_thumbnail() -> None:
    row = {"project_id": "p", "project_name": "P", "distance": 0.1}
    pictured = row | {"asset_id": "a", "filename": "orb.stl",
                      "thumbnail_url": "/api/v1/meshes/a/thumbnail"}
    old = row | {"asset_id": "b", "filename": "rod.stl", "thumbnail_url": None}
    said = answers.similar({"filename": "ball.stl"}, [pictured, old], 2).text
    assert "No thumbnail yet for rod.stl: analyse it again" in said and "orb.stl:" not in said
    assert "thumbnail" not in answers.similar({"filename": "ball.stl"}, [pictured], 1).text
