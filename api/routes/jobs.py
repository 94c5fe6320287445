"""Job status."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from api.auth import Access, Scope, current_user, guard
from api.jsonbody import Json
from api.resources import resources
from api.routes.collab import announce_scene_change
from core.errors import NotFound
from core.events.roles import Role


@guard(Access(Scope.JOB, Role.VIEWER))
async def get_job(request: Request) -> Response:
    job = await resources(request).read_models.job(UUID(request.path_params["job_id"]))
    if job is None:
        raise NotFound(f"job {request.path_params['job_id']} not found")
    return Json(job_body(job))


@guard(Access(Scope.JOB, Role.EDITOR))
async def undo_job(request: Request) -> Response:
    """Undo what a finished job did to the scene, by appending the inverse change."""
    res = resources(request)
    job_id = UUID(request.path_params["job_id"])
    position = await asyncio.to_thread(res.studio.undo_job, job_id, current_user(request).key)
    await announce_scene_change(res, request.state.project_id)
    return Json({"job_id": job_id, "undone": True, "position": position})


def job_body(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "project_id", "kind", "state", "inputs", "params", "requested_by",
            "requested_at", "updated_at", "worker", "device", "attempts", "stages", "result",
            "error", "scene_objects", "undone")
    return {k: row[k] for k in keys}
