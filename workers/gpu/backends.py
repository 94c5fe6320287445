"""Generator backends of the GPU worker, and the weight-free one that always works.

Every backend turns one image into a mesh at a requested stage (preview, medium, final)
on a device the caller picks. :class:`InflateBackend` needs no downloaded weights: it
inflates the object's silhouette into a rounded volume (:mod:`workers.gpu.inflate`),
extracts a closed surface (:mod:`workers.gpu.meshing`) and paints it from the image
(:mod:`workers.gpu.colour`). Its stages differ only in grid resolution.
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
import trimesh
from PIL import Image

from core.errors import ConfigurationError, InvalidInput
from workers.gpu.colour import project_vertex_colours
from workers.gpu.inflate import GridFrame, inflate_silhouette
from workers.gpu.meshing import marching_tetrahedra
from workers.gpu.silhouette import foreground_mask, image_to_tensor

Stage = Literal["preview", "medium", "final"]


@dataclass(frozen=True)
class GeneratedMesh:
    """One stage's result.

    Attributes
    ----------
    mesh : watertight, consistently wound trimesh with RGBA uint8 vertex colours
    stage : the stage it was generated for
    timings : seconds per step (``mask``, ``inflate``, ``mesh``, ``budget``, ``colour``,
        ``total``)
    face_count : number of triangles in `mesh`
    device : the torch device the arrays were computed on, e.g. ``"cpu"`` or ``"cuda:0"``
    resolution : the grid resolution that produced `mesh`
    """

    mesh: trimesh.Trimesh
    stage: Stage
    timings: dict[str, float]
    face_count: int
    device: str
    resolution: int


@runtime_checkable
class GeneratorBackend(Protocol):
    """What the GPU worker needs from an image-to-3D backend."""

    @property
    def name(self) -> str:
        """Stable identifier, recorded with every result."""
        ...

    @property
    def capabilities(self) -> Mapping[str, object]:
        """What the backend offers: stages, devices, texture kind, weights needed."""
        ...

    def available(self) -> tuple[bool, str]:
        """Whether the backend can run here, and why not when it cannot."""
        ...

    def generate(
        self,
        image: Image.Image,
        *,
        stage: Stage,
        seed: int,
        device: torch.device,
        face_budget: int | None,
    ) -> GeneratedMesh:
        """Turn one image into a closed mesh for `stage`, within `face_budget` triangles."""
        ...


@dataclass(frozen=True)
class InflateSettings:
    """Tuning of :class:`InflateBackend`.

    Attributes
    ----------
    resolutions : grid cells across the object's longer side, per stage
    depth_ratio : object thickness relative to its width
    smoothing : blur passes over the field (each rounds creases by about a cell)
    max_image_side : larger images are downscaled first: even the final grid spans fewer
        cells than this, so more pixels only slow the mask down (its cost grows with area)
    min_resolution : the coarsest grid tried when shrinking to meet a face budget
    """

    resolutions: Mapping[str, int] = field(
        default_factory=lambda: {"preview": 48, "medium": 96, "final": 160}
    )
    depth_ratio: float = 0.5
    smoothing: int = 2
    max_image_side: int = 512
    min_resolution: int = 16


class InflateBackend:
    """Weight-free image-to-3D: silhouette inflation with projected vertex colours.

    Deterministic: the same image, stage and budget give the same mesh on the same device;
    `seed` is accepted for interface parity and does not change the result.
    """

    name = "inflate"

    def __init__(self, settings: InflateSettings | None = None) -> None:
        self.settings = settings or InflateSettings()

    @property
    def capabilities(self) -> Mapping[str, object]:
        """Stages, devices and output kind; no weights needed."""
        return {
            "stages": ("preview", "medium", "final"),
            "devices": ("cpu", "cuda"),
            "texture": "vertex_colours",
            "needs_weights": False,
            "deterministic": True,
            "quadric_decimation": _has_quadric_decimation(),
        }

    def available(self) -> tuple[bool, str]:
        """Always available: it needs only torch and trimesh."""
        return True, "weight-free; runs on CPU and CUDA"

    def generate(
        self,
        image: Image.Image,
        *,
        stage: Stage,
        seed: int,
        device: torch.device,
        face_budget: int | None,
    ) -> GeneratedMesh:
        """Inflate the image's object into a closed, coloured mesh.

        Raises
        ------
        InvalidInput
            Unknown stage, an image without a separable object, or a face budget below
            what the coarsest grid yields.
        ConfigurationError
            The device is not usable on this machine.
        """
        if stage not in self.settings.resolutions:
            raise InvalidInput(f"unknown stage {stage!r}; expected preview, medium or final")
        if face_budget is not None and face_budget < 4:
            raise InvalidInput(f"face budget must be at least 4, got {face_budget}")
        _check_device(device)
        timings: dict[str, float] = {}
        clock = _Stopwatch(timings)
        rgba = self._load(image, device)
        mask = foreground_mask(rgba)
        clock.lap("mask")
        resolution = self.settings.resolutions[stage]
        vertices, faces = self._surface(mask, resolution, clock)
        if face_budget is not None and faces.shape[0] > face_budget:
            vertices, faces, resolution = self._fit_budget(
                mask, vertices, faces, resolution, face_budget, clock
            )
        frame = GridFrame.fit(mask, resolution=resolution, smoothing=self.settings.smoothing)
        colours = project_vertex_colours(rgba, mask, frame.grid_to_pixel(vertices[:, :2]))
        mesh = _to_trimesh(vertices, faces, colours)
        clock.lap("colour")
        timings["total"] = sum(timings.values())
        return GeneratedMesh(
            mesh=mesh,
            stage=stage,
            timings=timings,
            face_count=len(mesh.faces),
            device=str(device),
            resolution=resolution,
        )

    def _load(self, image: Image.Image, device: torch.device) -> torch.Tensor:
        """(H, W, 4) float RGBA on `device`, downscaled to at most `max_image_side`."""
        rgba = image_to_tensor(image, device=device)
        longest = max(rgba.shape[:2])
        if longest <= self.settings.max_image_side:
            return rgba
        scale = self.settings.max_image_side / longest
        size = [max(1, round(side * scale)) for side in rgba.shape[:2]]
        resized = F.interpolate(
            rgba.permute(2, 0, 1)[None], size=size, mode="bilinear", antialias=True
        )
        return resized[0].permute(1, 2, 0).clamp(0.0, 1.0)

    def _surface(
        self, mask: torch.Tensor, resolution: int, clock: _Stopwatch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, 3) grid-space vertices and (m, 3) faces of the inflated mask at `resolution`."""
        volume = inflate_silhouette(
            mask,
            resolution=resolution,
            depth_ratio=self.settings.depth_ratio,
            smoothing=self.settings.smoothing,
        )
        clock.lap("inflate")
        surface = marching_tetrahedra(volume)
        clock.lap("mesh")
        return surface

    def _fit_budget(
        self,
        mask: torch.Tensor,
        vertices: torch.Tensor,
        faces: torch.Tensor,
        resolution: int,
        budget: int,
        clock: _Stopwatch,
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Bring the surface under `budget` faces.

        Quadric decimation keeps the most detail, so it is tried first where
        ``fast_simplification`` is installed; its result is kept only if it is still
        closed and consistently wound. Otherwise the grid is coarsened: the face count of
        an extracted surface grows with the square of the cells the object spans (the
        resolution less the fixed padding), so each retry scales those by the square root
        of the overshoot.
        """
        smoothing = self.settings.smoothing
        decimated = _decimate(vertices, faces, budget)
        if decimated is not None:
            clock.lap("budget")
            return decimated[0], decimated[1], resolution
        pad = resolution - GridFrame.fit(mask, resolution=resolution, smoothing=smoothing).cells
        while faces.shape[0] > budget:
            shrink = math.sqrt(budget / faces.shape[0]) * 0.97
            smaller = min(resolution - 1, pad + math.floor((resolution - pad) * shrink))
            if smaller < self.settings.min_resolution:
                raise InvalidInput(
                    f"face budget {budget} is too small: the coarsest grid "
                    f"({resolution} cells) still yields {faces.shape[0]} faces"
                )
            resolution = smaller
            vertices, faces = self._surface(mask, resolution, _Stopwatch({}))
        clock.lap("budget")
        return vertices, faces, resolution


class _Stopwatch:
    """Accumulates wall-clock seconds per named step into a timings dict."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.timings[step] = self.timings.get(step, 0.0) + now - self.last
        self.last = now


def _check_device(device: torch.device) -> None:
    """Refuse a CUDA device on a machine without one, with a message that says so."""
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigurationError(f"device {device} requested but CUDA is not available")


def _has_quadric_decimation() -> bool:
    """Whether trimesh's quadric decimation can run (it needs ``fast_simplification``)."""
    return importlib.util.find_spec("fast_simplification") is not None


def _decimate(
    vertices: torch.Tensor, faces: torch.Tensor, budget: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Quadric-decimate to `budget` faces; None if unavailable or the result is not closed."""
    if not _has_quadric_decimation():
        return None
    mesh = trimesh.Trimesh(vertices.cpu().numpy(), faces.cpu().numpy(), process=False)
    simple = mesh.simplify_quadric_decimation(face_count=budget)
    if len(simple.faces) > budget or not _is_closed(simple):
        return None
    return (
        torch.as_tensor(simple.vertices, dtype=torch.float32, device=vertices.device),
        torch.as_tensor(simple.faces, dtype=torch.int64, device=faces.device),
    )


def _is_closed(mesh: trimesh.Trimesh) -> bool:
    """Watertight, consistently wound and enclosing positive volume."""
    return bool(mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0)


def _to_trimesh(
    vertices: torch.Tensor, faces: torch.Tensor, colours: torch.Tensor
) -> trimesh.Trimesh:
    """Move grid-space geometry into the studio's frame: y up, facing +z, unit size.

    Grid y runs down the image, so y is negated; z is negated too, which makes the change
    a rotation (half a turn about x) and keeps the winding outward. The bounding box is
    centred on the origin and its longest side scaled to 1.
    """
    points = vertices * torch.tensor([1.0, -1.0, -1.0], device=vertices.device)
    low, high = points.amin(dim=0), points.amax(dim=0)
    points = (points - (low + high) / 2.0) / (high - low).max()
    return trimesh.Trimesh(
        vertices=points.cpu().double().numpy(),
        faces=faces.cpu().numpy(),
        vertex_colors=colours.cpu().numpy(),
        process=False,
    )
