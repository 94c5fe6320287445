"""Adapter for Tencent's Hunyuan3D-2 shape pipeline (``hy3dgen``), for operators who have it.

Neither the code (``pip install hy3dgen``, or a checkout of Hunyuan3D-2) nor the weights
come with the studio. Weights are looked up under ``$HY3DGEN_MODELS`` (hy3dgen's own
variable) or ``<models_dir>/hunyuan3d``, laid out as hy3dgen expects:
``<root>/<model_id>/<subfolder>/config.yaml`` and ``model.<variant>.safetensors``. The
folder is checked before loading because hy3dgen falls back to downloading from the Hub
when a local folder is missing, which would hang or fail on machines without internet.

Written against hy3dgen 2.0.2's ``Hunyuan3DDiTFlowMatchingPipeline``
(``from_pretrained(model_path, device, dtype, use_safetensors, variant, subfolder)``;
``pipeline(image=, num_inference_steps=, octree_resolution=, num_chunks=, generator=,
output_type="trimesh")`` returns one ``trimesh.Trimesh`` per image, ``None`` where no
surface was found).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import trimesh
from PIL import Image

from core.errors import ConfigurationError, InvalidInput
from workers.gpu.backends import Stage
from workers.gpu.mesh_finish import close_surface, decimate_closed, to_studio_frame
from workers.gpu.silhouette import foreground_mask, image_to_tensor
from workers.gpu.vram import DeviceBudget, DevicePlan, MeasuredMesh

MODELS_ENV = "HY3DGEN_MODELS"
PACKAGE = "hy3dgen"


@dataclass(frozen=True)
class HunyuanStage:
    """Cost of one stage: flow-matching steps and the octree resolution of extraction."""

    steps: int
    octree_resolution: int


@dataclass(frozen=True)
class HunyuanSettings:
    """Which checkpoint to load and how much each stage spends.

    Attributes
    ----------
    model_id : the model's folder under the weights root (its Hub name)
    subfolder : the shape model inside it
    variant : weights file variant (``model.<variant>.safetensors``); None for ``model.``
    stages : cost per stage; final follows the project's README (30 steps, 380)
    num_chunks : points per decoder call during extraction (memory against speed)
    guidance_scale : classifier-free guidance of the flow-matching sampler
    """

    model_id: str = "tencent/Hunyuan3D-2"
    subfolder: str = "hunyuan3d-dit-v2-0"
    variant: str | None = "fp16"
    stages: Mapping[str, HunyuanStage] = field(
        default_factory=lambda: {
            "preview": HunyuanStage(steps=10, octree_resolution=128),
            "medium": HunyuanStage(steps=20, octree_resolution=256),
            "final": HunyuanStage(steps=30, octree_resolution=380),
        }
    )
    num_chunks: int = 20000
    guidance_scale: float = 5.0


class Hunyuan3DBackend:
    """Image-to-3D shape generation with Hunyuan3D-2 (geometry only, no texture).

    Parameters
    ----------
    models_dir : the studio's weights folder; ``hunyuan3d`` inside it is the weights root
        unless ``$HY3DGEN_MODELS`` names another
    settings : checkpoint and stage costs
    budget : the worker's device budget; one is made per device when None
    """

    name = "hunyuan3d"

    def __init__(
        self,
        models_dir: Path | None,
        settings: HunyuanSettings | None = None,
        budget: DeviceBudget | None = None,
    ) -> None:
        self.models_dir = models_dir
        self.settings = settings or HunyuanSettings()
        self._budgets: dict[str, DeviceBudget] = {}
        if budget is not None:
            self._budgets[str(budget.device)] = budget
        self._lock = threading.Lock()

    @property
    def weights_root(self) -> Path | None:
        """``$HY3DGEN_MODELS`` if set, else ``<models_dir>/hunyuan3d``."""
        if os.environ.get(MODELS_ENV):
            return Path(os.environ[MODELS_ENV]).expanduser()
        return None if self.models_dir is None else self.models_dir / "hunyuan3d"

    @property
    def capabilities(self) -> Mapping[str, object]:
        """Stages, devices (CUDA in practice: CPU runs take many minutes) and weights."""
        return {
            "stages": tuple(self.settings.stages),
            "devices": ("cuda", "cpu"),
            "texture": None,
            "needs_weights": True,
            "weights": str(self.weights_root) if self.weights_root else None,
            "deterministic": True,
        }

    def available(self) -> tuple[bool, str]:
        """Whether the weights folder and the ``hy3dgen`` package are present.

        The folder is checked first: it is cheap, while importing hy3dgen pulls in
        diffusers, transformers and its mesh libraries.
        """
        ok, reason = self._check_weights()
        if not ok:
            return ok, reason
        if importlib.util.find_spec(PACKAGE) is None:
            return False, f"python package {PACKAGE!r} (Hunyuan3D-2) is not installed"
        try:
            importlib.import_module(f"{PACKAGE}.shapegen")
        except Exception as e:  # a broken install raises anything from its imports
            return False, f"{PACKAGE}.shapegen cannot be imported: {e!r}"
        return True, f"Hunyuan3D-2 from {self._checkpoint_folder()}"

    def generate(
        self,
        image: Image.Image,
        *,
        stage: Stage,
        seed: int,
        device: torch.device,
        face_budget: int | None,
    ) -> MeasuredMesh:
        """Generate a closed mesh of the image's object for `stage` (no colours).

        Raises
        ------
        InvalidInput
            Unknown stage, an image without a separable object, no surface found, or a
            face budget the decimation cannot meet.
        ConfigurationError
            hy3dgen or the weights are missing, or the device is unusable.
        OutOfDeviceMemory
            The job did not fit even after the smaller retry.
        """
        if stage not in self.settings.stages:
            raise InvalidInput(f"unknown stage {stage!r}")
        ok, reason = self.available()
        if not ok:
            raise ConfigurationError(f"Hunyuan3D is unavailable: {reason}")
        budget = self._budget(device)
        rgba = _with_alpha(image)
        timings: dict[str, float] = {}
        with self._lock:
            clock = time.perf_counter()
            pipe = self.pipeline(budget)
            timings["load"] = time.perf_counter() - clock

            def attempt(plan: DevicePlan) -> trimesh.Trimesh:
                return self._run(pipe, rgba, stage, seed, plan)

            clock = time.perf_counter()
            raw, report = budget.run(attempt)
            timings["shape"] = time.perf_counter() - clock
        clock = time.perf_counter()
        mesh = self._finish(raw, face_budget)
        timings["budget"] = time.perf_counter() - clock
        timings["total"] = sum(timings.values())
        return MeasuredMesh(
            mesh=mesh, stage=stage, timings=timings, face_count=len(mesh.faces),
            device=str(device), resolution=self.settings.stages[stage].octree_resolution,
            report={**report, "backend": self.name},
        )

    def pipeline(self, budget: DeviceBudget) -> Any:
        """The loaded shape pipeline for `budget`'s device and precision (cached there)."""
        key = f"{self.name}:{self._checkpoint_folder()}:{budget.device}:{budget.dtype}"
        return budget.pipelines.get(key, lambda: self._load(budget.device, budget.dtype))

    def _checkpoint_folder(self) -> Path | None:
        root = self.weights_root
        return None if root is None else root / self.settings.model_id / self.settings.subfolder

    def _check_weights(self) -> tuple[bool, str]:
        """Whether the checkpoint's config and weights file exist locally."""
        folder = self._checkpoint_folder()
        if folder is None:
            return False, f"no weights folder: set {MODELS_ENV} or ORFEAS_MODELS_DIR"
        variant = f".{self.settings.variant}" if self.settings.variant else ""
        for needed in ("config.yaml", f"model{variant}.safetensors"):
            if not (folder / needed).is_file():
                return False, f"no Hunyuan3D weights: {folder / needed} is missing"
        return True, str(folder)

    def _budget(self, device: torch.device) -> DeviceBudget:
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigurationError(f"device {device} requested but CUDA is not available")
        key = str(device)
        if key not in self._budgets:
            self._budgets[key] = DeviceBudget(device)
        return self._budgets[key]

    def _load(self, device: torch.device, dtype: torch.dtype) -> Any:
        """Load from the local folder; an absolute model path makes hy3dgen skip the Hub."""
        from hy3dgen.shapegen import Hunyuan3DDiTFlowMatchingPipeline

        root = self.weights_root
        assert root is not None  # available() was checked by generate()
        try:
            return Hunyuan3DDiTFlowMatchingPipeline.from_pretrained(
                str(root / self.settings.model_id),
                device=str(device),
                dtype=dtype,
                use_safetensors=True,
                variant=self.settings.variant,
                subfolder=self.settings.subfolder,
            )
        except (OSError, RuntimeError, KeyError, ValueError) as e:
            raise ConfigurationError(f"cannot load Hunyuan3D from {root}: {e}") from e

    def _run(
        self, pipe: Any, rgba: Image.Image, stage: str, seed: int, plan: DevicePlan
    ) -> trimesh.Trimesh:
        """One attempt: sample the shape latent and extract its surface under `plan`."""
        cost = self.settings.stages[stage]
        resolution = max(64, round(cost.octree_resolution * plan.resolution_scale))
        meshes = pipe(
            image=rgba,
            num_inference_steps=cost.steps,
            guidance_scale=self.settings.guidance_scale,
            octree_resolution=resolution,
            num_chunks=max(1000, self.settings.num_chunks * plan.batch_size // 4),
            generator=torch.Generator(device=plan.device).manual_seed(seed),
            output_type="trimesh",
            enable_pbar=False,
        )
        mesh = meshes[0] if isinstance(meshes, list) else meshes
        if mesh is None or len(mesh.faces) == 0:
            raise InvalidInput("Hunyuan3D found no surface for this image")
        return mesh

    def _finish(self, raw: trimesh.Trimesh, face_budget: int | None) -> trimesh.Trimesh:
        """Close, fit the face budget, and move into the studio's frame (hy3dgen is y-up)."""
        mesh = close_surface(raw)
        if face_budget is not None and len(mesh.faces) > face_budget:
            decimated = decimate_closed(mesh, face_budget)
            if decimated is None:
                raise InvalidInput(
                    f"cannot bring {len(mesh.faces)} faces under a budget of {face_budget} "
                    "and keep the surface closed"
                )
            mesh = decimated
        return to_studio_frame(mesh, z_up=False)


def _with_alpha(image: Image.Image) -> Image.Image:
    """RGBA with the background transparent, as hy3dgen's image processor expects.

    hy3dgen removes backgrounds with ``rembg``, which downloads its model on first use;
    the studio's own silhouette separation is used instead, as for the weight-free backend.
    """
    rgba = image.convert("RGBA")
    mask = foreground_mask(image_to_tensor(rgba))
    alpha = Image.fromarray(mask.cpu().numpy().astype("uint8") * 255)
    rgba.putalpha(alpha)
    return rgba
