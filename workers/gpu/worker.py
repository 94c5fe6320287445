"""The GPU worker: runs ``generate`` commands (``cmd.generate``) pulled from JetStream.

Each stage (preview, medium, final) is stored as a GLB blob and recorded as
``Job.StageCompleted`` as soon as it exists, so collaborators see the coarse result first. A
redelivered job resumes after its last recorded stage instead of starting over.

Every stage runs under the worker's :class:`~workers.gpu.vram.DeviceBudget`, and its event
carries the device report: device and precision, peak memory, and seconds per step, so that
analytics (GPU seconds used and saved) and ``GET /jobs/{id}`` read them from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import time
from collections.abc import Mapping
from typing import Any, cast
from uuid import uuid5

import torch
from PIL import Image, UnidentifiedImageError

from core.errors import InvalidInput
from core.events.blobs import BlobStore, digest_of
from core.events.jetstream import connect
from core.events.job import STAGES, Job
from core.events.job_kinds import GENERATE, GENERATOR_VERSIONS, GPU_COMMANDS
from core.events.progress import JobProgress
from core.events.studio import Studio
from core.generators import GeneratorReport, report_generators
from core.scene.scene_object import scene_object, shown_mesh
from core.settings import Settings
from workers.consumer import CommandConsumer, WorkerIdentity
from workers.gpu.backends import GeneratedMesh, GeneratorBackend, Stage
from workers.gpu.heartbeat import keep_reporting
from workers.gpu.mesh_finish import to_height
from workers.gpu.registry import generator_backends
from workers.gpu.vram import DeviceBudget, DevicePlan

log = logging.getLogger(__name__)

POOL = "gpu"
GLB = "model/gltf-binary"
DEFAULT_FACE_BUDGET = {"preview": 20_000, "medium": 60_000, "final": 150_000}


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class GenerationJobs:
    def __init__(self, studio: Studio, blobs: BlobStore,
                 backends: dict[str, GeneratorBackend], device: torch.device,
                 progress: JobProgress | None = None,
                 budget: DeviceBudget | None = None) -> None:
        self._studio = studio
        self._blobs = blobs
        self._backends = backends
        self._device = device
        self._progress = progress
        self._budget = budget or DeviceBudget(device)

    async def __call__(self, job: Job) -> dict[str, Any]:
        if job.kind != GENERATE:
            raise InvalidInput(f"the GPU worker does not run {job.kind!r} jobs")
        picked_up = time.perf_counter()
        backend = self._backend(job.params.get("backend", "inflate"))
        data = await asyncio.to_thread(self._blobs.get_bytes, job.inputs["blob_key"])
        image = _open_image(data)
        asked = job.params.get("face_budget")
        height = job.params.get("height_mm")  # absent in jobs requested before sizes existed
        try:
            for stage in STAGES:
                if stage in job.stages:
                    continue  # done on an earlier delivery
                budget = DEFAULT_FACE_BUDGET[stage]
                glb, stats = await asyncio.to_thread(
                    self._run_stage, backend, image, cast(Stage, stage),
                    int(job.params.get("seed", 0)), min(int(asked), budget) if asked else budget,
                    float(height) if height is not None else None)
                started = time.perf_counter()
                key = await asyncio.to_thread(self._blobs.put_bytes, glb, GLB)
                stats["timings"]["store"] = round(time.perf_counter() - started, 4)
                stats["bytes"] = len(glb)
                # Since this delivery was picked up: the wait a watcher had for this stage.
                stats["elapsed_s"] = round(time.perf_counter() - picked_up, 4)
                shown = _scene_object(job, stage, key,
                                      first=not job.stages and stage == STAGES[0])
                await asyncio.to_thread(
                    self._studio.complete_stage, job.id, stage, key, stats,
                    {str(job.id): shown},
                )
                if self._progress is not None:  # the scene change reaches rooms from the log
                    await self._progress.announce(job.id)
                log.info("job %s: %s stored as %s", job.id, stage, key)
        finally:
            await asyncio.to_thread(self._budget.between_jobs)
        done = await asyncio.to_thread(self._studio.job, job.id)
        result = _result(backend.name, done.stages)
        result["mesh"] = await asyncio.to_thread(self._final_mesh, job, result["blob"],
                                                 done.stages["final"]["stats"])
        return result

    def _final_mesh(self, job: Job, key: str, stats: Mapping[str, Any]) -> dict[str, Any]:
        """The final stage as a mesh asset of the project (made from the image), so that it
        can be analysed, repaired and exported like an upload. Its id comes from the job's:
        a redelivered job names the same asset."""
        size = stats.get("bytes")
        if not isinstance(size, int):  # a stage stored before stages recorded their size
            size = len(self._blobs.get_bytes(key))
        name = str(job.params.get("name") or "generated")
        return {
            "asset_id": str(uuid5(job.id, "mesh")),
            "blob_key": key,
            "sha256": digest_of(key),
            "media_type": GLB,
            "size": size,
            "filename": f"{name}.glb",
            "units": "mm",
        }

    def _run_stage(self, backend: GeneratorBackend, image: Image.Image, stage: Stage,
                   seed: int, face_budget: int,
                   height_mm: float | None) -> tuple[bytes, dict[str, Any]]:
        """One stage under the device budget (measured, retried smaller once on OOM), as GLB
        bytes, in millimetres at the asked height, and the stats its event records."""
        def generate(_: DevicePlan) -> GeneratedMesh:
            return backend.generate(image, stage=stage, seed=seed, device=self._device,
                                    face_budget=face_budget)

        generated, report = self._budget.run(generate)
        if height_mm is not None:
            generated = dataclasses.replace(generated, mesh=to_height(generated.mesh, height_mm))
        started = time.perf_counter()
        glb = _glb(generated)
        stats = _stats(generated, report)
        stats["timings"]["export"] = round(time.perf_counter() - started, 4)
        return glb, stats

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
    if not first:
        return shown_mesh(blob=blob, stage=stage)
    return scene_object(name=str(job.params.get("name") or "generated"),
                        asset=job.inputs["asset_id"], blob=blob, stage=stage,
                        created_by=job.requested_by)


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


DEVICE_REPORT = ("device", "dtype", "batch_size", "attempts", "peak_memory_bytes",
                 "peak_memory_delta_bytes", "peak_memory_source", "seconds")
"""What a stage event keeps of :meth:`DeviceBudget.run`'s report. ``seconds`` is the wall time
of the stage on the device: the GPU seconds analytics add up."""

BACKEND_REPORT = ("dtype", "batch_size", "resolution_scale", "attempts", "decoder")
"""What a backend that measures itself (:class:`~workers.gpu.vram.MeasuredMesh`) knows better
than the worker's wrapper: the precision and batch it really used, and its own OOM retries."""


def _stats(generated: GeneratedMesh, report: Mapping[str, object]) -> dict[str, Any]:
    mesh = generated.mesh
    stats: dict[str, Any] = {
        "faces": generated.face_count,
        "vertices": len(mesh.vertices),
        "watertight": bool(mesh.is_watertight),
        "resolution": generated.resolution,
    }
    stats |= {key: report[key] for key in DEVICE_REPORT if key in report}
    inner = getattr(generated, "report", None)
    if isinstance(inner, Mapping):
        stats |= {key: inner[key] for key in BACKEND_REPORT if key in inner}
    stats["timings"] = {step: round(seconds, 4) for step, seconds in generated.timings.items()
                        if step != "total"}
    return stats


def _result(backend: str, stages: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The job's result: the final mesh, the generator and version that made it (the dedup
    cache serves it only to requests for that version), and the device totals over stages."""
    final = stages["final"]
    stats = [stage["stats"] for stage in stages.values()]
    peaks = [s["peak_memory_bytes"] for s in stats if isinstance(s.get("peak_memory_bytes"), int)]
    return {
        "blob": final["blob"],
        "backend": backend,
        "backend_version": GENERATOR_VERSIONS.get(backend, "unknown"),
        "stats": final["stats"],
        "device": final["stats"].get("device"),
        "gpu_seconds": round(sum(float(s.get("seconds", 0.0)) for s in stats), 4),
        "peak_memory_bytes": max(peaks, default=None),
    }


async def run_gpu_worker(settings: Settings, stop: asyncio.Event) -> None:
    _, _, s3 = settings.require_services()
    assert settings.database_url is not None
    device = pick_device()
    studio = Studio.connect(settings.database_url)
    identity = WorkerIdentity(POOL, device=str(device))
    nc = await connect(settings.nats_url or "", f"orfeas-{POOL}-progress")
    try:
        budget = DeviceBudget(device)
        backends = generator_backends(settings.models_dir, budget,
                                      shap_e_int8=settings.shap_e_int8)
        database_url = settings.database_url
        await asyncio.to_thread(_report, database_url, identity, list(backends.values()))
        heartbeat = asyncio.create_task(keep_reporting(
            lambda: _report(database_url, identity, list(backends.values())), stop,
            settings.generator_heartbeat_s))
        jobs = GenerationJobs(studio, BlobStore(s3), backends, device,
                              JobProgress(nc, settings.namespace), budget)
        consumer = CommandConsumer(settings, identity, GPU_COMMANDS, jobs, studio)
        try:
            await consumer.run(stop)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
    finally:
        await nc.close()
        studio.close()
