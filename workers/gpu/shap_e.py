"""Shap-E image-to-3D through diffusers, loaded from a local weights folder.

The pipeline (``ShapEImg2ImgPipeline``: CLIP image encoder, prior transformer, Heun
scheduler, renderer) runs the diffusion to a latent; the renderer then turns the latent into
the weights of a small signed-distance MLP, samples it on a grid and extracts the surface
with marching cubes, colouring vertices from the same MLP. This backend drives the
pipeline to the latent and calls the renderer's ``decode_to_mesh`` itself, because only
there can the grid size be chosen: stages differ in diffusion steps and grid resolution.

Weights are never downloaded: the folder ``<models_dir>/shap-e-img2img`` must hold a
``save_pretrained`` copy (e.g. of ``openai/shap-e-img2img``).
"""

from __future__ import annotations

import importlib.util
import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
import torch
import trimesh
from PIL import Image

from core.errors import ConfigurationError, InvalidInput
from workers.gpu.backends import Stage
from workers.gpu.mesh_finish import (
    close_surface,
    decimate_closed,
    to_studio_frame,
    transfer_vertex_colours,
)
from workers.gpu.quantisation import quantise_linear_int8
from workers.gpu.vram import DeviceBudget, DevicePlan, MeasuredMesh

if TYPE_CHECKING:
    from diffusers.pipelines.shap_e.renderer import ShapERenderer

# diffusers builds pipelines dynamically (components are registered at run time), so their
# attributes and ``__call__`` are invisible to a type checker.
ShapEImg2ImgPipeline = Any

PIPELINE_CLASS = "ShapEImg2ImgPipeline"
REQUIRED_PACKAGES = ("diffusers", "transformers")


@dataclass(frozen=True)
class ShapEStage:
    """Cost of one stage.

    Attributes
    ----------
    steps : diffusion steps of the prior (Shap-E was tuned for 64 Karras steps)
    grid : samples per side of the signed-distance grid; faces grow with its square
    """

    steps: int
    grid: int


@dataclass(frozen=True)
class ShapESettings:
    """Tuning of :class:`ShapEBackend`.

    Attributes
    ----------
    folder : name of the weights folder inside the models directory
    stages : cost per stage; preview is cheap, final uses Shap-E's published settings
    guidance_scale : classifier-free guidance (3.0 in Shap-E's image-to-3D examples)
    query_batch_size : grid points per MLP call for one batch unit of a
        :class:`~workers.gpu.vram.DevicePlan`; the plan's batch size multiplies it
    min_grid : the coarsest grid tried when shrinking to meet a face budget
    int8_on_cpu : on CPU, run the prior (the transformer that makes the latent, most of the
        time of a stage) with int8 dynamically quantised linear layers
        (:mod:`workers.gpu.quantisation`, ``ORFEAS_SHAPE_INT8=1``); the job reports say so.
        Off by default: its speed and output change depend on the model, and are measured
        by ``measure_int8`` rather than assumed
    """

    folder: str = "shap-e-img2img"
    stages: Mapping[str, ShapEStage] = field(
        default_factory=lambda: {
            "preview": ShapEStage(steps=16, grid=64),
            "medium": ShapEStage(steps=32, grid=96),
            "final": ShapEStage(steps=64, grid=128),
        }
    )
    guidance_scale: float = 3.0
    query_batch_size: int = 4096
    min_grid: int = 16
    int8_on_cpu: bool = False


@dataclass(frozen=True)
class _Surface:
    """One extraction: the decoder's raw mesh, its vertex colours and what it saw.

    Attributes
    ----------
    mesh : closed (where possible) surface in Shap-E's z-up frame, inside [-1, 1]^3
    source : the raw decoded mesh, one vertex per crossed grid edge
    colours : (len(source.vertices), 4) uint8 RGBA of `source`
    grid : the grid size it was extracted at
    decoder : ``field_shape``, ``raw_vertices`` and ``raw_faces`` of the decoder call
    """

    mesh: trimesh.Trimesh
    source: trimesh.Trimesh
    colours: npt.NDArray[np.uint8]
    grid: int
    decoder: dict[str, Any]


class ShapEBackend:
    """Image-to-3D with OpenAI's Shap-E, run by diffusers from local weights.

    Parameters
    ----------
    models_dir : the operator's weights folder (``Settings.models_dir``); None disables
    settings : stage costs and sampling options
    budget : the worker's device budget; one is made per device when None

    Deterministic for a given seed, device and precision. Jobs on one backend run one at a
    time: the renderer writes each latent's MLP weights into shared modules.
    """

    name = "shap-e"

    def __init__(
        self,
        models_dir: Path | None,
        settings: ShapESettings | None = None,
        budget: DeviceBudget | None = None,
    ) -> None:
        self.models_dir = models_dir
        self.settings = settings or ShapESettings()
        self._budgets: dict[str, DeviceBudget] = {}
        if budget is not None:
            self._budgets[str(budget.device)] = budget
        self._lock = threading.Lock()

    @property
    def folder(self) -> Path | None:
        """Where the pipeline's ``save_pretrained`` copy is expected."""
        return None if self.models_dir is None else self.models_dir / self.settings.folder

    @property
    def capabilities(self) -> Mapping[str, object]:
        """Stages, devices, output kind and the weights folder it needs."""
        return {
            "stages": tuple(self.settings.stages),
            "devices": ("cpu", "cuda"),
            "texture": "vertex_colours",
            "needs_weights": True,
            "weights": str(self.folder) if self.folder else None,
            "deterministic": True,
        }

    def available(self) -> tuple[bool, str]:
        """Whether the packages and a Shap-E image-to-3D folder are present; loads nothing."""
        for package in REQUIRED_PACKAGES:
            if importlib.util.find_spec(package) is None:
                return False, f"python package {package!r} is not installed"
        folder = self.folder
        if folder is None:
            return False, "no models directory configured (set ORFEAS_MODELS_DIR)"
        return _check_folder(folder)

    def generate(
        self,
        image: Image.Image,
        *,
        stage: Stage,
        seed: int,
        device: torch.device,
        face_budget: int | None,
    ) -> MeasuredMesh:
        """Generate a coloured mesh of the image's object for `stage`.

        Raises
        ------
        InvalidInput
            Unknown stage, a face budget too small for the coarsest grid, or a latent
            whose signed-distance field has no surface (the decoder found no crossing).
        ConfigurationError
            Weights or packages missing, an unusable device or a broken checkpoint.
        OutOfDeviceMemory
            The job did not fit even after the smaller retry.
        """
        if stage not in self.settings.stages:
            raise InvalidInput(f"unknown stage {stage!r}; expected one of "
                               f"{', '.join(self.settings.stages)}")
        if face_budget is not None and face_budget < 4:
            raise InvalidInput(f"face budget must be at least 4, got {face_budget}")
        ok, reason = self.available()
        if not ok:
            raise ConfigurationError(f"Shap-E is unavailable: {reason}")
        budget = self._budget(device)
        timings: dict[str, float] = {}
        with self._lock:
            clock = time.perf_counter()
            pipe = self.pipeline(budget)
            timings["load"] = time.perf_counter() - clock
            rgb = _rgb_on_white(image)

            def attempt(plan: DevicePlan) -> _Surface:
                return self._run(pipe, rgb, stage, seed, plan, face_budget, timings)

            surface, report = budget.run(attempt)
        return self._result(surface, stage, timings, report, device)

    def pipeline(self, budget: DeviceBudget) -> ShapEImg2ImgPipeline:
        """The loaded pipeline for `budget`'s device and precision (cached there)."""
        key = f"{self.name}:{self.folder}:{budget.device}:{budget.dtype}:{self._int8(budget)}"
        return budget.pipelines.get(key, lambda: self._load(budget.device, budget.dtype))

    def _budget(self, device: torch.device) -> DeviceBudget:
        """The device budget for `device`, made on first use."""
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigurationError(f"device {device} requested but CUDA is not available")
        key = str(device)
        if key not in self._budgets:
            self._budgets[key] = DeviceBudget(device)
        return self._budgets[key]

    def _load(self, device: torch.device, dtype: torch.dtype) -> ShapEImg2ImgPipeline:
        """Load the pipeline from the local folder only, at `dtype`, onto `device`."""
        from diffusers import ShapEImg2ImgPipeline as Pipeline

        folder = self.folder
        assert folder is not None  # available() was checked by generate()
        try:
            pipe = Pipeline.from_pretrained(
                str(folder), local_files_only=True, dtype=dtype
            )
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ConfigurationError(f"cannot load Shap-E from {folder}: {e}") from e
        _check_cube_tables(pipe.shap_e_renderer, folder)
        pipe.set_progress_bar_config(disable=True)
        pipe = pipe.to(device)
        if self.settings.int8_on_cpu and device.type == "cpu":
            pipe.prior = quantise_linear_int8(pipe.prior)
        return pipe

    def _int8(self, budget: DeviceBudget) -> bool:
        return self.settings.int8_on_cpu and budget.device.type == "cpu"

    def _run(
        self,
        pipe: ShapEImg2ImgPipeline,
        rgb: Image.Image,
        stage: str,
        seed: int,
        plan: DevicePlan,
        face_budget: int | None,
        timings: dict[str, float],
    ) -> _Surface:
        """One attempt under `plan`: diffusion to a latent, then extraction within budget."""
        cost = self.settings.stages[stage]
        clock = time.perf_counter()
        latent = self._latent(pipe, rgb, cost.steps, seed, plan.device)
        timings["prior"] = time.perf_counter() - clock
        batch = self.settings.query_batch_size * plan.batch_size

        def extract(grid: int) -> _Surface:
            return _extract(pipe.shap_e_renderer, latent, plan.device, grid, batch)

        grid = max(self.settings.min_grid, round(cost.grid * plan.resolution_scale))
        clock = time.perf_counter()
        surface = extract(grid)
        timings["decode"] = time.perf_counter() - clock
        if face_budget is not None and len(surface.mesh.faces) > face_budget:
            clock = time.perf_counter()
            surface = self._fit_budget(surface, face_budget, extract)
            timings["budget"] = time.perf_counter() - clock
        return surface

    def _latent(
        self,
        pipe: ShapEImg2ImgPipeline,
        rgb: Image.Image,
        steps: int,
        seed: int,
        device: torch.device,
    ) -> torch.Tensor:
        """(num_embeddings, embedding_dim) latent of the image's object."""
        generator = torch.Generator(device=device).manual_seed(seed)
        output = pipe(
            rgb,
            num_inference_steps=steps,
            guidance_scale=self.settings.guidance_scale,
            generator=generator,
            output_type="latent",
        )
        latents: torch.Tensor = output.images
        return latents[0]

    def _fit_budget(
        self, surface: _Surface, budget: int, extract: Callable[[int], _Surface]
    ) -> _Surface:
        """Bring the surface under `budget` faces.

        Quadric decimation keeps most detail, so it goes first; where it would open the
        surface, the field is extracted again on a coarser grid. Faces grow with the
        square of the grid, so each retry scales the grid by the square root of the
        overshoot.
        """
        decimated = decimate_closed(surface.mesh, budget)
        if decimated is not None:
            return _Surface(decimated, surface.source, surface.colours, surface.grid,
                            surface.decoder)
        while len(surface.mesh.faces) > budget:
            shrink = math.sqrt(budget / len(surface.mesh.faces)) * 0.97
            smaller = min(surface.grid - 1, math.floor(surface.grid * shrink))
            if smaller < self.settings.min_grid:
                raise InvalidInput(
                    f"face budget {budget} is too small: a {surface.grid}-sample grid "
                    f"still yields {len(surface.mesh.faces)} faces"
                )
            surface = extract(smaller)
        return surface

    def _result(
        self,
        surface: _Surface,
        stage: Stage,
        timings: dict[str, float],
        report: dict[str, object],
        device: torch.device,
    ) -> MeasuredMesh:
        """Colour, reframe and package the surface with its device report."""
        clock = time.perf_counter()
        colours = transfer_vertex_colours(surface.source, surface.colours, surface.mesh)
        mesh = to_studio_frame(surface.mesh, z_up=True)
        mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=colours)
        timings["colour"] = time.perf_counter() - clock
        timings["total"] = sum(timings.values())
        return MeasuredMesh(
            mesh=mesh,
            stage=stage,
            timings=timings,
            face_count=len(mesh.faces),
            device=str(device),
            resolution=surface.grid,
            report={**report, "backend": self.name, "decoder": surface.decoder,
                    "prior_int8": self.settings.int8_on_cpu and device.type == "cpu"},
        )


def _check_folder(folder: Path) -> tuple[bool, str]:
    """Whether `folder` holds a saved Shap-E image-to-3D pipeline, by its model index."""
    index = folder / "model_index.json"
    if not index.is_file():
        return False, f"no Shap-E weights at {folder} (model_index.json missing)"
    try:
        kind = json.loads(index.read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError) as e:
        return False, f"unreadable {index}: {e}"
    if kind != PIPELINE_CLASS:
        return False, f"{folder} holds a {kind!r}, not a {PIPELINE_CLASS}"
    return True, f"Shap-E image-to-3D from {folder}"


def _check_cube_tables(renderer: ShapERenderer, folder: Path) -> None:
    """Refuse a renderer without marching-cubes tables: it would never find a surface.

    Real checkpoints carry the tables as buffers; a converted or hand-built one may not.
    """
    masks = cast(torch.Tensor, renderer.mesh_decoder.masks)
    if not bool(masks.any()):
        raise ConfigurationError(
            f"the Shap-E renderer in {folder} has empty marching-cubes tables "
            "(mesh_decoder.cases/masks); fill them from "
            "workers.gpu.cube_cases.cube_case_tables() and save again"
        )


def _rgb_on_white(image: Image.Image) -> Image.Image:
    """The image as RGB, transparent parts on white (Shap-E's examples use white grounds)."""
    rgba = image.convert("RGBA")
    ground = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(ground, rgba).convert("RGB")


def _extract(
    renderer: ShapERenderer, latent: torch.Tensor, device: torch.device, grid: int, batch: int
) -> _Surface:
    """Decode `latent` on a `grid`-sample grid with the renderer's own ``decode_to_mesh``.

    A forward hook on the renderer's marching-cubes module records what it received and
    produced, and stops an empty extraction there: past that point diffusers fails with an
    unrelated error (it concatenates no colour batches).
    """
    decoder: dict[str, Any] = {}

    def inspect(module: torch.nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        decoder["field_shape"] = tuple(inputs[0].shape)
        decoder["raw_vertices"] = int(output.verts.shape[0])
        decoder["raw_faces"] = int(output.faces.shape[0])
        if decoder["raw_faces"] == 0:
            raise InvalidInput(
                f"Shap-E found no surface: the signed-distance field on the "
                f"{decoder['field_shape']} grid is negative everywhere"
            )

    handle = renderer.mesh_decoder.register_forward_hook(inspect)
    try:
        raw = renderer.decode_to_mesh(
            latent[None], device, grid_size=grid, query_batch_size=batch
        )
    finally:
        handle.remove()
    source = trimesh.Trimesh(
        raw.verts.detach().cpu().double().numpy(), raw.faces.cpu().numpy(), process=False
    )
    colours = _vertex_colours(raw.vertex_channels)
    return _Surface(close_surface(source), source, colours, grid, decoder)


def _vertex_colours(channels: Mapping[str, torch.Tensor]) -> npt.NDArray[np.uint8]:
    """(n, 4) uint8 sRGB colours from the decoder's linear R, G, B channels.

    diffusers converts the MLP's colours to linear light; vertex colours in the studio
    (like the weight-free backend's, sampled from images) are sRGB, so they go back.
    """
    linear = torch.stack([channels[c].float() for c in "RGB"], dim=-1).clamp(0.0, 1.0)
    srgb = torch.where(
        linear <= 0.0031308, linear * 12.92, 1.055 * linear.pow(1.0 / 2.4) - 0.055
    )
    rgb = (srgb.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).cpu().numpy()
    alpha = np.full((rgb.shape[0], 1), 255, dtype=np.uint8)
    return np.concatenate([rgb, alpha], axis=1)
