"""Upload sniffing (:mod:`core.media`) and the shared mesh loader (:mod:`core.meshio`)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from core.errors import InvalidInput, TooLarge, UnsupportedMedia
from core.media import MESH_MEDIA_TYPES, MediaInfo, check_generation_image, sniff_media
from core.meshio import MESH_FORMATS, load_mesh
from tests.corpus import corpus_path
from tests.images import huge_png, png


def _write(tmp_path: Path, data: bytes) -> Path:
    """Store an upload the way the API does: under a name of its own, not the client's."""
    path = tmp_path / "upload.tmp"
    path.write_bytes(data)
    return path


def _png_bytes(fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 40, 10)).save(buffer, fmt)
    return buffer.getvalue()


def _box_bytes(file_type: str) -> bytes:
    exported = trimesh.creation.box((2, 2, 2)).export(file_type=file_type)
    return exported.encode() if isinstance(exported, str) else bytes(exported)


def test_mesh_media_types_cover_every_mesh_format() -> None:
    assert set(MESH_MEDIA_TYPES) == MESH_FORMATS


@pytest.mark.parametrize("filename", ["photo.png", "photo.stl", "photo"])
def test_png_is_an_image_whatever_its_name(tmp_path: Path, filename: str) -> None:
    info = sniff_media(_write(tmp_path, _png_bytes()), filename)
    assert info == MediaInfo(kind="image", media_type="image/png", format="png")


def test_jpeg_is_an_image(tmp_path: Path) -> None:
    info = sniff_media(_write(tmp_path, _png_bytes("JPEG")), "a.jpg")
    assert (info.kind, info.media_type, info.format) == ("image", "image/jpeg", "jpeg")


def test_damaged_png_is_refused(tmp_path: Path) -> None:
    data = bytearray(_png_bytes())
    data[data.index(b"IDAT") + 6] ^= 0xFF  # pixel data whose chunk CRC no longer matches
    with pytest.raises(UnsupportedMedia, match=r"photo\.png: damaged image"):
        sniff_media(_write(tmp_path, bytes(data)), "photo.png")


def test_empty_file_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"^x\.stl: empty file$") as caught:
        sniff_media(_write(tmp_path, b""), "x.stl")
    assert type(caught.value) is InvalidInput


def test_garbage_with_unknown_extension_is_refused(tmp_path: Path) -> None:
    garbage = bytes(range(256)) * 16
    with pytest.raises(
        UnsupportedMedia, match=r"^notes\.txt: not an image and not a mesh format: \.txt$"
    ):
        sniff_media(_write(tmp_path, garbage), "notes.txt")


def test_garbage_without_extension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMedia, match="no extension"):
        sniff_media(_write(tmp_path, b"hello\n"), "README")


@pytest.mark.parametrize("filename", ["text.stl", "text.glb", "text.ply", "text.obj", "text.off"])
def test_text_renamed_as_a_mesh_is_refused(tmp_path: Path, filename: str) -> None:
    text = b"Dear team,\nplease find the model attached.\n" * 10
    with pytest.raises(UnsupportedMedia, match=rf"^{filename.replace('.', '[.]')}: "):
        sniff_media(_write(tmp_path, text), filename)


@pytest.mark.parametrize("file_type", ["stl", "obj", "ply", "off", "glb", "3mf"])
def test_real_meshes_are_recognised(tmp_path: Path, file_type: str) -> None:
    filename = f"box.{file_type.upper()}"
    info = sniff_media(_write(tmp_path, _box_bytes(file_type)), filename)
    assert info == MediaInfo(kind="mesh", media_type=MESH_MEDIA_TYPES[file_type], format=file_type)


def test_point_cloud_ply_is_refused(tmp_path: Path) -> None:
    cloud = trimesh.PointCloud(np.arange(30, dtype=float).reshape(10, 3)).export(file_type="ply")
    with pytest.raises(
        UnsupportedMedia, match=r"^cloud\.ply: no faces \(point cloud\? 10 points only\)$"
    ):
        sniff_media(_write(tmp_path, cloud), "cloud.ply")


def test_every_empty_or_point_only_corpus_file_is_refused() -> None:
    files = sorted(corpus_path("emptyIO").iterdir())
    assert len(files) >= 10
    for path in files:
        with pytest.raises(
            InvalidInput, match=rf"^{path.name.replace('.', '[.]')}: (empty file|no faces)"
        ):
            sniff_media(path, path.name)


def test_loader_welds_stl_corners_only() -> None:
    stl = load_mesh(_box_bytes("stl"), file_type="stl")
    assert (len(stl.vertices), len(stl.faces)) == (8, 12)


def test_loader_keeps_split_vertices_of_indexed_formats() -> None:
    box = trimesh.creation.box((2, 2, 2))
    box.unmerge_vertices()
    mesh = load_mesh(box.export(file_type="ply"), file_type="ply")
    assert (len(mesh.vertices), len(mesh.faces)) == (36, 12)


def test_loader_keeps_degenerate_and_duplicate_faces() -> None:
    obj = b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nf 1 2 3\nf 1 1 2\n"
    assert len(load_mesh(obj, file_type="obj").faces) == 3


def test_loader_applies_scene_transforms() -> None:
    scene = trimesh.Scene()
    scene.add_geometry(
        trimesh.creation.box((1, 1, 1)),
        transform=trimesh.transformations.translation_matrix([10, 0, 0]),
    )
    scene.add_geometry(trimesh.creation.box((1, 1, 1)))
    mesh = load_mesh(scene.export(file_type="glb"), file_type=".GLB")
    assert len(mesh.faces) == 24
    np.testing.assert_allclose(mesh.bounds, [[-0.5, -0.5, -0.5], [10.5, 0.5, 0.5]])


def test_loader_reads_paths_and_names_them(tmp_path: Path) -> None:
    path = tmp_path / "part.stl"
    path.write_bytes(b"")
    with pytest.raises(InvalidInput, match=r"^part\.stl: empty file$"):
        load_mesh(path, file_type="stl")


def test_loader_refuses_non_finite_coordinates() -> None:
    obj = b"v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n"
    with pytest.raises(InvalidInput, match="1 vertices have non-finite coordinates"):
        load_mesh(obj, file_type="obj", name="nan.obj")


@pytest.mark.parametrize("far", ["1e11", "1e200"])
def test_loader_refuses_coordinates_too_large_to_weld(far: str) -> None:
    # Finite in a float64 format, but welding scales by 1e8 into 64-bit integers: at 1e11
    # unrelated vertices merged, at 1e200 the area came out infinite and the volume NaN.
    obj = f"v 0 0 0\nv {far} 0 0\nv 0 1 0\nf 1 2 3\n".encode()
    with pytest.raises(InvalidInput, match=r"^far\.obj: 1 vertices lie farther than 1e\+10 "
                       r"from the origin \(up to 1e\+(11|200)\)"):
        load_mesh(obj, file_type="obj", name="far.obj")


def test_loader_takes_a_part_placed_far_but_within_reach() -> None:
    obj = b"v 9e9 0 0\nv 9e9 1 0\nv 9e9 0 1\nf 1 2 3\n"
    mesh = load_mesh(obj, file_type="obj", name="far.obj")
    assert mesh.vertices[:, 0].min() == 9e9 and len(mesh.faces) == 1


def test_loader_refuses_unparseable_data() -> None:
    with pytest.raises(InvalidInput, match=r"^model\.glb: not a readable \.glb file: "):
        load_mesh(b"glTF but not really", file_type="glb", name="model.glb")


def test_loader_refuses_formats_it_does_not_read() -> None:
    with pytest.raises(UnsupportedMedia, match=r"not a mesh format the studio reads: \.dae"):
        load_mesh(b"<COLLADA/>", file_type="dae", name="scene.dae")


# -- what generation accepts -------------------------------------------------------------------


def test_generation_takes_an_image_with_an_object() -> None:
    image = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    image.putpixel((10, 10), (200, 40, 10, 255))
    assert check_generation_image(io.BytesIO(png(image)), "dot.png") == (64, 48)


def test_generation_refuses_too_many_pixels_from_the_header_alone(tmp_path: Path) -> None:
    data = huge_png(10_000, 10_000)
    assert len(data) < 50_000
    cut = data[:100]  # the header and a sliver of pixels: size is all it can read
    for source in (io.BytesIO(data), io.BytesIO(cut), _write(tmp_path, data)):
        # Pillow warns past its own limit (89 Mpx), as it does in production; with warnings
        # left as warnings, the studio's limit refuses the image.
        with pytest.raises(TooLarge, match=r"big\.png: 10000x10000 is 100\.0 megapixels"), \
                pytest.warns(Image.DecompressionBombWarning):
            check_generation_image(source, "big.png")


def test_generation_refuses_too_many_pixels_where_warnings_are_errors() -> None:
    with pytest.raises(TooLarge, match=r"big\.png: image too large: .*100000000 pixels"):
        check_generation_image(io.BytesIO(huge_png(10_000, 10_000)), "big.png")


def test_generation_refuses_over_its_limit_below_pillows() -> None:
    with pytest.raises(TooLarge, match=r"wide\.png: 8000x6000 is 48\.0 megapixels; "
                                       r"generation takes at most 40 megapixels"):
        check_generation_image(io.BytesIO(huge_png(8_000, 6_000)), "wide.png")


def test_generation_refuses_a_decompression_bomb() -> None:
    with pytest.raises(TooLarge, match=r"bomb\.png: image too large"):
        check_generation_image(io.BytesIO(huge_png(20_000, 20_000)), "bomb.png")


def test_generation_limit_is_a_parameter() -> None:
    data = png(Image.new("RGB", (100, 100), (10, 10, 10)))
    with pytest.raises(TooLarge, match=r"at most 0\.009999 megapixels"):
        check_generation_image(io.BytesIO(data), "a.png", max_pixels=9_999)


@pytest.mark.parametrize(("image", "message"), [
    (Image.new("RGBA", (64, 64), (255, 0, 0, 0)), "fully transparent"),
    (Image.new("LA", (64, 64), (255, 0)), "fully transparent"),
    (Image.new("RGB", (64, 64), (250, 250, 250)), r"blank \(every pixel is RGBA \(250, 250"),
    (Image.new("RGBA", (64, 64), (9, 9, 9, 128)), "blank"),
    (Image.new("L", (64, 64), 0), "blank"),
    (Image.new("RGB", (4, 300), (200, 40, 10)), "too small"),
])
def test_generation_refuses_images_that_show_nothing(image: Image.Image, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as refused:
        check_generation_image(io.BytesIO(png(image)), "x.png")
    assert not isinstance(refused.value, TooLarge | UnsupportedMedia)


def test_generation_refuses_a_palette_image_whose_only_colour_is_transparent() -> None:
    image = Image.new("P", (64, 64), 0)
    image.info["transparency"] = 0
    with pytest.raises(InvalidInput, match="fully transparent"):
        check_generation_image(io.BytesIO(png(image)), "p.png")


def test_generation_refuses_what_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedMedia, match=r"b\.stl: not an image"):
        check_generation_image(_write(tmp_path, _box_bytes("stl")), "b.stl")
    image = png(Image.new("RGB", (64, 64), (200, 40, 10)))
    cut = image[: image.index(b"IDAT") + 12]  # the pixel data stops short
    with pytest.raises(UnsupportedMedia, match=r"d\.png: damaged"):
        check_generation_image(io.BytesIO(cut), "d.png")


def test_generation_leaves_an_open_file_open() -> None:
    image = Image.new("RGB", (16, 16), "white")
    image.putpixel((5, 5), (0, 0, 0))
    upload = io.BytesIO(png(image))
    check_generation_image(upload, "a.png")
    assert not upload.closed
