"""The weight-free inflation backend (:mod:`workers.gpu`), on images drawn by the tests."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image, ImageDraw
from scipy import ndimage

from core.errors import InvalidInput
from workers.gpu.backends import GeneratorBackend, InflateBackend, Stage
from workers.gpu.colour import bleed_colours
from workers.gpu.inflate import euclidean_distance, inflate_silhouette
from workers.gpu.meshing import marching_tetrahedra
from workers.gpu.silhouette import foreground_mask, label_components

SIZE = 512
CPU = torch.device("cpu")
RED = (200, 40, 40)
GREEN = (30, 170, 60)


def _draw(shape: str, fill: int | tuple[int, ...], image: Image.Image) -> None:
    """Draw one of the test shapes onto `image` in `fill`."""
    pen = ImageDraw.Draw(image)
    if shape == "disc":
        pen.ellipse((110, 130, 400, 420), fill=fill)
    elif shape == "star":
        centre, points = (256, 256), []
        for k in range(10):
            radius = 220 if k % 2 == 0 else 95
            angle = math.pi / 2 + k * math.pi / 5
            points.append(
                (centre[0] + radius * math.cos(angle), centre[1] - radius * math.sin(angle))
            )
        pen.polygon(points, fill=fill)
    elif shape == "ring":
        pen.ellipse((90, 90, 420, 420), fill=fill)
        holes: dict[str, int | tuple[int, ...]] = {
            "L": 0,
            "RGB": (255, 255, 255),
            "RGBA": (255, 255, 255, 0),
        }
        hole = holes[image.mode]
        pen.ellipse((190, 190, 320, 320), fill=hole)
    elif shape == "ell":
        pen.rectangle((120, 60, 230, 450), fill=fill)
        pen.rectangle((120, 340, 420, 450), fill=fill)
    else:
        raise ValueError(shape)


def _truth(shape: str) -> torch.Tensor:
    """(H, W) bool ground truth of a test shape."""
    canvas = Image.new("L", (SIZE, SIZE), 0)
    _draw(shape, 255, canvas)
    return torch.from_numpy(np.asarray(canvas) > 127)


def _on_white(shape: str, colour: tuple[int, int, int] = RED) -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
    _draw(shape, colour, image)
    return image


def _with_alpha(shape: str) -> Image.Image:
    image = Image.new("RGBA", (SIZE, SIZE), (255, 255, 255, 0))
    _draw(shape, (*GREEN, 255), image)
    return image


def _on_gradient(shape: str) -> Image.Image:
    """A photo-like shot: shaded object on a smooth colour ramp with sensor noise."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    background = np.stack([0.35 + 0.45 * x, 0.55 + 0.3 * y, 0.85 - 0.35 * x * y], axis=-1)
    shading = 0.75 + 0.25 * x[..., None]
    obj = np.array([0.55, 0.25, 0.1]) * shading
    pixels = np.where(_truth(shape).numpy()[..., None], obj, background)
    noise = np.random.default_rng(7).normal(0.0, 0.01, pixels.shape)
    return Image.fromarray(((pixels + noise).clip(0, 1) * 255).astype(np.uint8))


def _checkerboard() -> Image.Image:
    """A full-frame pattern: all object, no backdrop."""
    cells = (np.indices((SIZE, SIZE)) // 64).sum(axis=0) % 2
    return Image.fromarray(np.where(cells[..., None] == 1, RED, GREEN).astype(np.uint8))


def _iou(mask: torch.Tensor, truth: torch.Tensor) -> float:
    return float((mask & truth).sum() / (mask | truth).sum())


@pytest.mark.parametrize(
    ("image", "truth"),
    [
        pytest.param(_on_white("disc"), _truth("disc"), id="disc-on-white"),
        pytest.param(_with_alpha("star"), _truth("star"), id="star-alpha"),
        pytest.param(_with_alpha("ell"), _truth("ell"), id="ell-alpha"),
        pytest.param(_with_alpha("ring"), _truth("ring"), id="ring-alpha-keeps-hole"),
        # background colour enclosed by the object is not reachable from the border: it stays
        pytest.param(
            _on_white("ring"), _truth("disc").logical_or(_truth("ring")), id="ring-on-white"
        ),
        pytest.param(_on_gradient("ell"), _truth("ell"), id="ell-on-gradient"),
        pytest.param(_on_gradient("star"), _truth("star"), id="star-on-gradient"),
    ],
)
def test_mask_matches_the_drawn_shape(image: Image.Image, truth: torch.Tensor) -> None:
    assert _iou(foreground_mask(image), truth) > 0.95


def test_ring_with_alpha_keeps_its_hole_and_on_white_fills_it() -> None:
    centre = (255, 255)
    assert not foreground_mask(_with_alpha("ring"))[centre]
    assert foreground_mask(_on_white("ring"))[centre]


def test_mask_accepts_tensors() -> None:
    pixels = torch.from_numpy(np.asarray(_on_white("disc")).copy())
    assert _iou(foreground_mask(pixels), _truth("disc")) > 0.95
    assert _iou(foreground_mask(pixels.float() / 255.0), _truth("disc")) > 0.95


@pytest.mark.parametrize(
    ("image", "message"),
    [
        pytest.param(Image.new("RGB", (SIZE, SIZE), (240, 240, 240)), "no foreground", id="blank"),
        pytest.param(Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0)), "no foreground", id="clear"),
        pytest.param(
            Image.fromarray(np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), np.uint8)),
            "not a plain background",
            id="noise",
        ),
        pytest.param(_checkerboard(), "not a plain background", id="checkerboard"),
    ],
)
def test_images_without_a_separable_object_are_refused(image: Image.Image, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        foreground_mask(image)


def test_opaque_everywhere_but_a_corner_is_refused() -> None:
    image = Image.new("RGBA", (SIZE, SIZE), (*RED, 255))
    image.putpixel((0, 0), (0, 0, 0, 0))
    with pytest.raises(InvalidInput, match="covers"):
        foreground_mask(image)


def test_components_are_labelled_like_scipy() -> None:
    mask = torch.from_numpy(np.random.default_rng(3).random((64, 80)) > 0.55)
    labels = label_components(mask).numpy()
    expected, count = ndimage.label(mask.numpy(), structure=np.ones((3, 3)))
    assert len(np.unique(labels[mask.numpy()])) == count
    pairs = {(a, b) for a, b in zip(labels[mask.numpy()], expected[mask.numpy()], strict=True)}
    assert len(pairs) == count


def test_distance_transform_is_exact() -> None:
    mask = torch.from_numpy(np.random.default_rng(5).random((70, 90)) > 0.1)
    expected = ndimage.distance_transform_edt(mask.numpy())
    assert np.allclose(euclidean_distance(mask).numpy(), expected, atol=1e-4)


def test_marching_tetrahedra_closes_a_sphere() -> None:
    axis = torch.arange(40, dtype=torch.float32) - 19.5
    x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
    field = 15.0 - torch.sqrt(x**2 + y**2 + z**2)
    vertices, faces = marching_tetrahedra(field)
    mesh = trimesh.Trimesh(vertices.numpy(), faces.numpy(), process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume == pytest.approx(4.0 / 3.0 * math.pi * 15.0**3, rel=0.02)


def test_inflated_disc_is_a_closed_field_symmetric_front_to_back() -> None:
    field = inflate_silhouette(_truth("disc"), resolution=40, depth_ratio=0.5)
    assert field.shape[:2] == (40, 40) and field.shape[2] % 2 == 1
    assert torch.allclose(field, field.flip(2))
    for axis in range(3):
        assert (field.select(axis, 0) < 0).all() and (field.select(axis, -1) < 0).all()
    thickness = (field[20, 20] > 0).sum()
    width = (field[:, 20, field.shape[2] // 2] > 0).sum()
    assert 0.4 < thickness / width < 0.6


def test_colours_bleed_outwards_from_the_mask() -> None:
    colour = torch.zeros(3, 32, 32)
    colour[0, 10:20, 10:20] = 1.0
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[10:20, 10:20] = True
    filled = bleed_colours(colour, mask)
    assert torch.allclose(filled[0], torch.ones(32, 32))


def _assert_closed(mesh: trimesh.Trimesh) -> None:
    assert mesh.is_watertight
    assert mesh.is_winding_consistent
    assert mesh.volume > 0


def _colours(mesh: trimesh.Trimesh) -> np.ndarray:
    """(n, 4) uint8 vertex colours of a mesh that must carry them."""
    assert isinstance(mesh.visual, trimesh.visual.ColorVisuals)
    assert mesh.visual.kind == "vertex"
    return np.asarray(mesh.visual.vertex_colors)


@pytest.fixture(scope="module")
def backend() -> InflateBackend:
    return InflateBackend()


def test_backend_fits_the_protocol(backend: InflateBackend) -> None:
    assert isinstance(backend, GeneratorBackend)
    assert backend.available()[0]
    assert backend.capabilities["needs_weights"] is False


@pytest.mark.parametrize(
    ("stage", "budget"), [("preview", 20000), ("medium", 40000), ("final", None)]
)
def test_each_stage_is_closed_coloured_and_in_budget(
    backend: InflateBackend, stage: Stage, budget: int | None
) -> None:
    result = backend.generate(
        _on_white("disc"), stage=stage, seed=0, device=CPU, face_budget=budget
    )
    mesh = result.mesh
    _assert_closed(mesh)
    assert result.face_count == len(mesh.faces)
    assert budget is None or result.face_count <= budget
    assert result.stage == stage and result.device == "cpu"
    assert {"mask", "inflate", "mesh", "colour", "total"} <= set(result.timings)
    colours = _colours(mesh)
    assert colours.shape == (len(mesh.vertices), 4) and colours.dtype == np.uint8
    # a one-colour object: every vertex, rim included, carries that colour, no white halo
    assert np.abs(colours[:, :3].astype(int) - RED).max() <= 2
    assert max(mesh.extents) == pytest.approx(1.0)
    assert np.allclose(mesh.bounds.mean(axis=0), 0.0, atol=1e-6)


def test_stages_refine(backend: InflateBackend) -> None:
    faces = [
        backend.generate(
            _with_alpha("star"), stage=s, seed=0, device=CPU, face_budget=None
        ).face_count
        for s in ("preview", "medium")
    ]
    assert faces[0] < faces[1]


def test_mesh_is_y_up_and_coloured_where_the_image_is() -> None:
    image = _on_white("ell")
    ImageDraw.Draw(image).rectangle((120, 60, 230, 160), fill=GREEN)
    result = InflateBackend().generate(image, stage="preview", seed=0, device=CPU, face_budget=None)
    mesh = result.mesh
    _assert_closed(mesh)
    assert mesh.extents[1] == pytest.approx(1.0)
    colours = _colours(mesh)[:, :3].astype(int)
    top = mesh.vertices[:, 1] > 0.4
    bottom = mesh.vertices[:, 1] < -0.2
    assert np.abs(colours[top] - GREEN).max() <= 2
    assert np.abs(colours[bottom] - RED).max() <= 2


def test_face_budget_is_met(backend: InflateBackend) -> None:
    result = backend.generate(
        _with_alpha("star"), stage="final", seed=0, device=CPU, face_budget=3000
    )
    _assert_closed(result.mesh)
    assert result.face_count <= 3000
    if not backend.capabilities["quadric_decimation"]:
        # without fast_simplification the budget is met by a coarser grid
        assert result.resolution < backend.settings.resolutions["final"]


def test_a_budget_no_grid_can_meet_is_refused(backend: InflateBackend) -> None:
    with pytest.raises(InvalidInput, match="face budget"):
        backend.generate(_on_white("disc"), stage="preview", seed=0, device=CPU, face_budget=50)


def test_same_input_gives_the_same_mesh(backend: InflateBackend) -> None:
    runs = [
        backend.generate(
            _on_gradient("ell"), stage="preview", seed=seed, device=CPU, face_budget=None
        )
        for seed in (3, 3, 4)
    ]
    for other in runs[1:]:
        assert np.array_equal(runs[0].mesh.vertices, other.mesh.vertices)
        assert np.array_equal(runs[0].mesh.faces, other.mesh.faces)
        assert np.array_equal(_colours(runs[0].mesh), _colours(other.mesh))


def test_unknown_stage_is_refused(backend: InflateBackend) -> None:
    stage: Any = "ultra"
    with pytest.raises(InvalidInput, match="stage"):
        backend.generate(_on_white("disc"), stage=stage, seed=0, device=CPU, face_budget=None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_topology(backend: InflateBackend) -> None:
    image = _with_alpha("star")
    on_gpu = backend.generate(
        image, stage="medium", seed=0, device=torch.device("cuda"), face_budget=None
    )
    on_cpu = backend.generate(image, stage="medium", seed=0, device=CPU, face_budget=None)
    _assert_closed(on_gpu.mesh)
    assert on_gpu.device.startswith("cuda")
    assert abs(on_gpu.face_count - on_cpu.face_count) <= 0.01 * on_cpu.face_count


def test_large_images_are_downscaled_before_masking(backend: InflateBackend) -> None:
    image = _on_white("ell").resize((1536, 1024))  # stretched: now wider (900 px) than tall
    result = backend.generate(image, stage="preview", seed=0, device=CPU, face_budget=None)
    _assert_closed(result.mesh)
    width, height, _ = result.mesh.extents
    assert width == pytest.approx(1.0)
    assert height == pytest.approx(780 / 900, abs=0.03)
