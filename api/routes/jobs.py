"""Job status."""

from __future__ import annotations

import asyncio
import contextlib
from http import HTTPStatus
from typing import Any
from uuid import UUID

from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api.auth import Access, Scope, current_user, guard
from api.conditional import blob_headers, not_modified
from api.jsonbody import Json
from api.openapi import Query, contract
from api.resources import Resources, resources
from api.schemas import JOB_ROW, JOB_UNDONE
from core.errors import NotFound
from core.events.roles import Role
from core.meshopt_glb import compress_glb, encoding_wanted


@contract(response=JOB_ROW)
@guard(Access(Scope.JOB, Role.VIEWER))
async def get_job(request: Request) -> Response:
    job = await resources(request).read_models.job(UUID(request.path_params["job_id"]))
    if job is None:
        raise NotFound(f"job {request.path_params['job_id']} not found")
    return Json(job_body(job))


@contract(response=JOB_UNDONE)
@guard(Access(Scope.JOB, Role.EDITOR))
async def undo_job(request: Request) -> Response:
    """Undo what a finished job did to the scene, by appending the inverse change."""
    res = resources(request)
    job_id = UUID(request.path_params["job_id"])
    position = await asyncio.to_thread(res.studio.undo_job, job_id, current_user(request).key)
    return Json({"job_id": job_id, "undone": True, "position": position})


@contract(status=204)
@guard(Access(Scope.JOB, Role.EDITOR))
async def cancel_job(request: Request) -> Response:
    """Cancel a queued or running job; a worker stops at its next stage."""
    res = resources(request)
    job_id = UUID(request.path_params["job_id"])
    await asyncio.to_thread(res.studio.cancel_job, job_id, current_user(request).key)
    await res.progress.announce(job_id)
    return Response(status_code=HTTPStatus.NO_CONTENT)


@contract(media_types=("model/gltf-binary",), query=(
    Query("encoding", {"type": "string", "enum": ["meshopt"]},
          "meshopt: the GLB's geometry packed (EXT_meshopt_compression)."),))
@guard(Access(Scope.JOB, Role.VIEWER))
async def stage_mesh(request: Request) -> Response:
    """One stage's mesh as GLB, streamed from the blob store."""
    res = resources(request)
    job = await asyncio.to_thread(res.studio.job, UUID(request.path_params["job_id"]))
    stage = job.stages.get(request.path_params["stage"])
    if stage is None or not stage.get("blob"):
        raise NotFound(f"job {job.id} has no {request.path_params['stage']!r} stage")
    headers = {"Cache-Control": "private, max-age=31536000, immutable"}
    if encoding_wanted(request.query_params.get("encoding")):
        packed = await asyncio.to_thread(lambda: compress_glb(res.blobs.get_bytes(stage["blob"])))
        return Response(packed, media_type="model/gltf-binary", headers=headers)
    headers = blob_headers(stage["blob"], headers["Cache-Control"])
    unchanged = not_modified(request, headers)
    if unchanged is not None:
        return unchanged
    chunks = await asyncio.to_thread(lambda: iter(res.blobs.iter_chunks(stage["blob"])))
    return StreamingResponse(iterate_in_threadpool(chunks), media_type="model/gltf-binary",
                             headers=headers)


async def wait_for_job(res: Resources, job_id: UUID, timeout: float) -> dict[str, Any]:
    """The job's read-model row once the job has ended (or as it is after ``timeout``).

    The event store says when the job ends (woken by the worker's progress pings, rechecked
    every second in case a ping is lost); the row is then read once the read models have
    caught up with that end, so the answer is the one ``GET /jobs/{id}`` gives.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    async with res.progress.watch(job_id) as pinged:
        while True:
            pinged.clear()
            job = await asyncio.to_thread(res.studio.job, job_id)
            left = deadline - asyncio.get_running_loop().time()
            if job.state.finished or left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pinged.wait(), min(1.0, left))
    await res.read_models.caught_up()
    row = await res.read_models.job(job_id)
    if row is None:
        raise NotFound(f"job {job_id} not found")
    return row


def job_body(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "project_id", "kind", "state", "inputs", "params", "requested_by",
            "requested_at", "updated_at", "worker", "device", "attempts", "stages", "result",
            "error", "scene_objects", "undone")
    return {k: row[k] for k in keys}
