"""The mesh worker: runs mesh commands (``cmd.mesh.>``) pulled from JetStream.

Geometry runs in a thread so that the consumer's in-progress acks keep flowing while a large
mesh is analysed. This module imports no torch (DESIGN: the mesh worker stays light).
"""

from __future__ import annotations

import asyncio
from typing import Any

from core.errors import InvalidInput
from core.events.blobs import BlobStore
from core.events.job import Job
from core.events.job_kinds import MESH_ANALYSE, MESH_COMMANDS
from core.events.studio import Studio
from core.meshio import load_mesh
from core.settings import Settings
from workers.consumer import CommandConsumer, WorkerIdentity
from workers.mesh.analysis import basic_stats

POOL = "mesh"


class MeshJobs:
    """The handlers of the mesh pool, keyed by job kind."""

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs

    async def __call__(self, job: Job) -> dict[str, Any]:
        if job.kind == MESH_ANALYSE:
            return await self.analyse(job)
        raise InvalidInput(f"the mesh worker does not run {job.kind!r} jobs")

    async def analyse(self, job: Job) -> dict[str, Any]:
        blob_key = job.inputs["blob_key"]
        file_type = job.inputs["format"]
        data = await asyncio.to_thread(self._blobs.get_bytes, blob_key)
        return await asyncio.to_thread(_analyse_bytes, data, file_type, job.params)


def _analyse_bytes(data: bytes, file_type: str, params: dict[str, Any]) -> dict[str, Any]:
    mesh = load_mesh(data, file_type=file_type)
    return dict(basic_stats(mesh, units=params.get("units", "mm")))


async def run_mesh_worker(settings: Settings, stop: asyncio.Event) -> None:
    _, _, s3 = settings.require_services()
    assert settings.database_url is not None
    studio = Studio.connect(settings.database_url)
    try:
        consumer = CommandConsumer(
            settings,
            WorkerIdentity(POOL, device="cpu"),
            MESH_COMMANDS,
            MeshJobs(BlobStore(s3)),
            studio,
        )
        await consumer.run(stop)
    finally:
        studio.close()
