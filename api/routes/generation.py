"""Image-to-3D commands. The request is a ``Job.Requested`` event; a GPU worker produces the
stages, each recorded as ``Job.StageCompleted`` with its GLB blob (see ``GET /api/v1/jobs/{id}``).
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from api.auth import Access, Scope, current_user, guard
from api.jsonbody import Json, field, json_object
from api.resources import resources
from core.errors import InvalidInput, NotFound
from core.events.job_kinds import GENERATE
from core.events.roles import Role

MAX_FACE_BUDGET = 1_000_000


@guard(Access(Scope.PROJECT, Role.EDITOR))
async def request_generation(request: Request) -> Response:
    data = await json_object(request)
    project_id: UUID = request.state.project_id
    res = resources(request)
    project = await asyncio.to_thread(res.studio.project, project_id)
    asset = project.assets.get(field(data, "asset_id", str))
    if asset is None:
        raise NotFound(f"image {data['asset_id']} not found in project {project_id}")
    if asset.kind != "image":
        raise InvalidInput(f"asset {asset.asset_id} is a {asset.kind}, not an image")
    seed = field(data, "seed", int, required=False) or 0
    budget = field(data, "face_budget", int, required=False)
    if budget is not None and not 4 <= budget <= MAX_FACE_BUDGET:
        raise InvalidInput(f"face_budget must be between 4 and {MAX_FACE_BUDGET}")
    params = {"backend": field(data, "backend", str, required=False) or "inflate",
              "seed": seed, "face_budget": budget}
    job_id = await asyncio.to_thread(
        res.studio.request_job, project_id, GENERATE,
        {"asset_id": asset.asset_id, "blob_key": asset.blob_key}, params,
        current_user(request).key,
    )
    return Json({"job_id": job_id, "state": "requested", "job_url": f"/api/v1/jobs/{job_id}"},
                status_code=HTTPStatus.ACCEPTED, headers={"Location": f"/api/v1/jobs/{job_id}"})
