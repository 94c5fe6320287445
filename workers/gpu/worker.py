"""The GPU worker: runs ``generate`` commands (``cmd.generate``) pulled from JetStream.

Each stage (preview, medium, final) is stored as a GLB blob and recorded as
``Job.StageCompleted`` as soon as it exists, so collaborators see the coarse result first. A
redelivered job resumes after its last recorded stage instead of starting over.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any, cast
from uuid import UUID

import torch
from PIL import Image, UnidentifiedImageError

from core.crdt.fanout import Fanout
from core.errors import InvalidInput
from core.events.blobs import BlobStore
from core.events.jetstream import connect
from core.events.job import STAGES, Job
from core.events.job_kinds import GENERATE, GENERATOR_VERSIONS, GPU_COMMANDS
from core.events.progress import JobProgress
from core.events.studio import Studio
from core.generators import GeneratorReport, report_generators
from core.settings import Settings
from workers.consumer import CommandConsumer, WorkerIdentity
from workers.gpu.backends import GeneratedMesh, GeneratorBackend, Stage
from workers.gpu.registry import generator_backends
from workers.gpu.vram import DeviceBudget

log = logging.getLogger(__name__)

POOL = "gpu"
GLB = "model/gltf-binary"
DEFAULT_FACE_BUDGET = {"preview": 20_000, "medium": 60_000, "final": 150_000}


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class GenerationJobs:
    def __init__(self, studio: Studio, blobs: BlobStore,
                 backends: dict[str, GeneratorBackend], device: torch.device,
                 fanout: Fanout | None = None, progress: JobProgress | None = None) -> None:
        self._studio = studio
        self._blobs = blobs
        self._backends = backends
        self._device = device
        self._fanout = fanout
        self._progress = progress

    async def __call__(self, job: Job) -> dict[str, Any]:
        if job.kind != GENERATE:
            raise InvalidInput(f"the GPU worker does not run {job.kind!r} jobs")
        backend = self._backend(job.params.get("backend", "inflate"))
        data = await asyncio.to_thread(self._blobs.get_bytes, job.inputs["blob_key"])
        image = _open_image(data)
        asked = job.params.get("face_budget")
        for stage in STAGES:
            if stage in job.stages:
                continue  # done on an earlier delivery
            budget = DEFAULT_FACE_BUDGET[stage]
            generated = await asyncio.to_thread(
                backend.generate, image, stage=cast(Stage, stage),
                seed=int(job.params.get("seed", 0)), device=self._device,
                face_budget=min(int(asked), budget) if asked else budget,
            )
            key = await asyncio.to_thread(self._blobs.put_bytes, _glb(generated), GLB)
            shown = _scene_object(job, stage, key, first=not job.stages and stage == STAGES[0])
            await asyncio.to_thread(
                self._studio.complete_stage, job.id, stage, key, _stats(generated),
                {str(job.id): shown},
            )
            await self._announce(job.id, UUID(job.project_id))
            log.info("job %s: %s stored as %s", job.id, stage, key)
        done = await asyncio.to_thread(self._studio.job, job.id)
        final = done.stages["final"]
        return {"blob": final["blob"], "backend": backend.name, "stats": final["stats"]}

    async def _announce(self, job_id: UUID, project_id: UUID) -> None:
        """Ping the job's watchers, and tell the API nodes' rooms that the scene moved on, so
        collaborators see the stage."""
        if self._progress is not None:
            await self._progress.announce(job_id)
        if self._fanout is not None:
            version = (await asyncio.to_thread(self._studio.scene, project_id)).version
            await self._fanout.scene_changed(project_id, version, version)

    def _backend(self, name: Any) -> GeneratorBackend:
        backend = self._backends.get(name) if isinstance(name, str) else None
        if backend is None:
            raise InvalidInput(f"unknown generator {name!r}; available: "
                               f"{', '.join(sorted(self._backends))}")
        ok, reason = backend.available()
        if not ok:
            raise InvalidInput(f"generator {name!r} is unavailable: {reason}")
        return backend


def _scene_object(job: Job, stage: str, blob: str, *, first: bool) -> dict[str, Any]:
    """The scene object that shows the job's result: created by the first stage, and only
    its mesh (and stage) updated by later ones, so a collaborator may move it meanwhile."""
    fields: dict[str, Any] = {"blob": blob, "stage": stage}
    if first:
        fields |= {
            "name": job.params.get("name") or "generated",
            "asset": job.inputs["asset_id"],
            "transform": {"position": [0.0, 0.0, 0.0], "rotation": [0.0, 0.0, 0.0, 1.0],
                          "scale": [1.0, 1.0, 1.0]},
            "material": {},
            "style": "",
            "visible": True,
            "locked": False,
            "created_by": job.requested_by,
        }
    return fields


def _report(database_url: str, identity: WorkerIdentity,
            backends: list[GeneratorBackend]) -> None:
    reports = []
    for backend in backends:
        available, reason = backend.available()
        reports.append(GeneratorReport(
            name=backend.name, version=GENERATOR_VERSIONS.get(backend.name, "unknown"),
            available=available, reason=reason, device=identity.device,
            capabilities=dict(backend.capabilities)))
    report_generators(database_url, identity.name, reports)


def _open_image(data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as e:
        raise InvalidInput(f"the input is not a readable image: {e}") from None
    return image


def _glb(generated: GeneratedMesh) -> bytes:
    return cast(bytes, generated.mesh.export(file_type="glb"))


def _stats(generated: GeneratedMesh) -> dict[str, Any]:
    mesh = generated.mesh
    return {
        "faces": generated.face_count,
        "vertices": len(mesh.vertices),
        "watertight": bool(mesh.is_watertight),
        "resolution": generated.resolution,
        "device": generated.device,
        "seconds": round(generated.timings.get("total", 0.0), 4),
    }


async def run_gpu_worker(settings: Settings, stop: asyncio.Event) -> None:
    _, _, s3 = settings.require_services()
    assert settings.database_url is not None
    device = pick_device()
    studio = Studio.connect(settings.database_url)
    identity = WorkerIdentity(POOL, device=str(device))
    nc = await connect(settings.nats_url or "", f"orfeas-{POOL}-fanout")
    try:
        backends = generator_backends(settings.models_dir, DeviceBudget(device))
        await asyncio.to_thread(_report, settings.database_url, identity, list(backends.values()))
        fanout = Fanout(nc, settings.namespace, node=identity.name)
        jobs = GenerationJobs(studio, BlobStore(s3), backends, device, fanout,
                              JobProgress(nc, settings.namespace))
        consumer = CommandConsumer(settings, identity, GPU_COMMANDS, jobs, studio)
        await consumer.run(stop)
    finally:
        await nc.close()
        studio.close()
