"""The mesh worker: runs mesh commands (``cmd.mesh.>``) pulled from JetStream.

Geometry runs in a child process (:mod:`workers.mesh.pool`) so that the consumer's
in-progress acks keep flowing while a large mesh is worked on, and so that a job over its
time budget can be stopped. A job that makes a mesh stores it as a blob and returns it under
``mesh``; the job's success event and the new asset (and, when asked, the scene object now
showing it) are then committed together by :meth:`core.events.studio.Studio.succeed_job`.
This module imports no torch (DESIGN: the mesh worker stays light).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from pathlib import PurePosixPath
from typing import Any
from uuid import uuid5

from core.errors import InvalidInput
from core.events.blobs import BlobStore
from core.events.jetstream import connect
from core.events.job import Job
from core.events.job_kinds import (
    MESH_ANALYSE,
    MESH_COMMANDS,
    MESH_MATERIAL,
    MESH_OPERATIONS,
    MESH_OPTIMISE,
    MESH_REPAIR,
    MESH_STYLE,
)
from core.events.progress import JobProgress
from core.events.studio import Studio
from core.settings import Settings
from workers.consumer import CommandConsumer, WorkerIdentity
from workers.mesh.operations import GLB_MEDIA_TYPE, analyse, operate
from workers.mesh.pool import GeometryPool
from workers.mesh.thumbnail import MEDIA_TYPE as THUMBNAIL_TYPE

log = logging.getLogger(__name__)

POOL = "mesh"
FACE_MAPS_TYPE = "application/vnd.orfeas.face-maps"
_MAKES_A_MESH = frozenset(MESH_OPERATIONS.values())


class MeshJobs:
    """The handlers of the mesh pool, keyed by job kind."""

    def __init__(self, blobs: BlobStore, geometry: GeometryPool) -> None:
        self._blobs = blobs
        self._geometry = geometry

    async def __call__(self, job: Job) -> dict[str, Any]:
        if job.kind != MESH_ANALYSE and job.kind not in _MAKES_A_MESH:
            raise InvalidInput(f"the mesh worker does not run {job.kind!r} jobs")
        data = await asyncio.to_thread(self._blobs.get_bytes, job.inputs["blob_key"])
        file_type = job.inputs["format"]
        log.info("job %s: %s of a %d-byte .%s", job.id, job.kind, len(data), file_type)
        if job.kind == MESH_ANALYSE:
            stats, face_maps, thumbnail = await self._geometry.run(analyse, data, file_type,
                                                                  job.params)
            key = await asyncio.to_thread(self._blobs.put_bytes, face_maps, FACE_MAPS_TYPE)
            stats |= {"face_maps": key}
            if thumbnail is not None:
                stats["thumbnail"] = await asyncio.to_thread(self._blobs.put_bytes, thumbnail,
                                                             THUMBNAIL_TYPE)
            return stats
        glb, report = await self._geometry.run(operate, job.kind, data, file_type, job.params,
                                               job.inputs.get("material"))
        key = await asyncio.to_thread(self._blobs.put_bytes, glb, GLB_MEDIA_TYPE)
        return {"mesh": made_mesh(job, glb, key), "report": report}


# What each operation did, as a result's name says it: "teapot (repaired, optimised)".
DONE = {MESH_REPAIR: "repaired", MESH_STYLE: "styled", MESH_MATERIAL: "textured",
        MESH_OPTIMISE: "optimised"}
_STEP = "|".join(DONE.values())
_MADE = re.compile(rf"^(?P<base>.+?) \((?P<done>(?:{_STEP})(?:, (?:{_STEP}))*)\)$")


def made_name(filename: str, kind: str) -> str:
    """The file name of a mesh ``kind`` made from ``filename``: its base name and, in
    brackets, what was done to it so far (each step once, in order), never an id."""
    stem = PurePosixPath(filename or "mesh").stem or "mesh"
    made = _MADE.match(stem)
    base, done = (made["base"], made["done"].split(", ")) if made else (stem, [])
    step = DONE.get(kind, kind.removeprefix("mesh."))
    return f"{base} ({', '.join([*done, step] if step not in done else done)}).glb"


def made_mesh(job: Job, glb: bytes, key: str) -> dict[str, Any]:
    """The new asset's fields. Its id comes from the job's, so a redelivered job names the
    same asset and cannot record a second one."""
    return {
        "asset_id": str(uuid5(job.id, "mesh")),
        "blob_key": key,
        "sha256": hashlib.sha256(glb).hexdigest(),
        "media_type": GLB_MEDIA_TYPE,
        "size": len(glb),
        "filename": made_name(str(job.inputs.get("filename") or "mesh"), job.kind),
        "units": job.inputs.get("units", "mm"),
    }


class JobNotice:
    """After a job's result is committed, ping its watchers. A scene change committed with
    the result reaches the API nodes' rooms from the log itself: nothing to announce."""

    def __init__(self, progress: JobProgress) -> None:
        self._progress = progress

    async def __call__(self, job: Job, result: dict[str, Any]) -> None:
        await self._progress.announce(job.id)


async def run_mesh_worker(settings: Settings, stop: asyncio.Event) -> None:
    _, _, s3 = settings.require_services()
    assert settings.database_url is not None
    studio = Studio.connect(settings.database_url)
    geometry = GeometryPool(settings.mesh_job_budget_s)
    identity = WorkerIdentity(POOL, device="cpu")
    nc = await connect(settings.nats_url or "", f"orfeas-{POOL}-progress")
    try:
        notice = JobNotice(JobProgress(nc, settings.namespace))
        consumer = CommandConsumer(settings, identity, MESH_COMMANDS,
                                   MeshJobs(BlobStore(s3), geometry), studio,
                                   on_success=notice)
        await consumer.run(stop)
    finally:
        await nc.close()
        geometry.close()
        studio.close()
