"""Mesh commands and their results. Each command is a ``Job.Requested`` event; the outbox
dispatcher, not this route, hands it to NATS."""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from api.auth import Access, Scope, current_user, guard
from api.jsonbody import Json, json_object
from api.resources import resources
from core.errors import InvalidInput, NotFound
from core.events.job_kinds import MESH_ANALYSE
from core.events.roles import Role

UNITS = ("mm", "cm", "m", "in")


async def _mesh(request: Request) -> dict[str, Any]:
    asset = await resources(request).read_models.asset(UUID(request.path_params["asset_id"]))
    if asset is None:
        raise NotFound(f"mesh {request.path_params['asset_id']} not found")
    if asset["kind"] != "mesh":
        raise InvalidInput(f"asset {asset['asset_id']} is an {asset['kind']}, not a mesh")
    return asset


@guard(Access(Scope.ASSET, Role.EDITOR))
async def request_analysis(request: Request) -> Response:
    asset = await _mesh(request)
    data = await json_object(request) if await request.body() else {}
    units = data.get("units", "mm")
    if units not in UNITS:
        raise InvalidInput(f"units must be one of {', '.join(UNITS)}")
    inputs = {
        "asset_id": str(asset["asset_id"]),
        "blob_key": asset["blob_key"],
        "format": asset["filename"].rsplit(".", 1)[-1].lower(),
    }
    job_id = await asyncio.to_thread(
        resources(request).studio.request_job, asset["project_id"], MESH_ANALYSE, inputs,
        {"units": units}, current_user(request).key,
    )
    return Json({"job_id": job_id, "state": "requested", "job_url": f"/api/v1/jobs/{job_id}"},
                status_code=HTTPStatus.ACCEPTED, headers={"Location": f"/api/v1/jobs/{job_id}"})


@guard(Access(Scope.ASSET, Role.VIEWER))
async def get_analysis(request: Request) -> Response:
    asset = await _mesh(request)
    models = resources(request).read_models
    analysis = await models.mesh_analysis(asset["asset_id"])
    if analysis is not None:
        return Json({"asset_id": asset["asset_id"], "job_id": analysis["job_id"],
                     "analysed_at": analysis["analysed_at"], "stats": analysis["stats"]})
    job = await models.latest_job(MESH_ANALYSE, asset["asset_id"])
    if job is None:
        raise NotFound(f"mesh {asset['asset_id']} has not been analysed; POST to request it")
    if job["state"] == "failed":
        raise InvalidInput(f"the analysis failed: {job['error']}")
    return Json({"asset_id": asset["asset_id"], "job_id": job["id"], "state": job["state"]},
                status_code=HTTPStatus.ACCEPTED)
