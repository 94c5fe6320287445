"""Projects and their members."""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from api.auth import Access, Scope, current_user, guard
from api.jsonbody import Json, parse_body
from api.openapi import contract
from api.resources import resources
from api.schemas import ASSET_LIST, INVITED, PROJECT, PROJECT_LIST, Invitation, ProjectName
from core.events.roles import Role

# Lists wait this long at most for the read models to include the caller's latest writes.
LIST_FRESHNESS_S = 1.0


def _project_id(request: Request) -> UUID:
    project_id: UUID = request.state.project_id
    return project_id


@contract(body=ProjectName, status=201, response=PROJECT)
@guard(Access(Scope.USER))
async def create_project(request: Request) -> Response:
    name = (await parse_body(request, ProjectName)).name
    user = current_user(request)
    studio = resources(request).studio
    project_id = await asyncio.to_thread(studio.create_project, name, user.key)
    body = await _project_body(request, project_id)
    return Json(body, status_code=HTTPStatus.CREATED,
                headers={"Location": f"/api/v1/projects/{project_id}"})


@contract(response=PROJECT_LIST)
@guard(Access(Scope.USER))
async def list_projects(request: Request) -> Response:
    user = current_user(request)
    models = resources(request).read_models
    await models.caught_up(LIST_FRESHNESS_S)
    rows = await models.projects_of(user.key)
    return Json({"projects": [_summary(r) for r in rows]})


@contract(response=PROJECT)
@guard(Access(Scope.PROJECT, Role.VIEWER))
async def get_project(request: Request) -> Response:
    return Json(await _project_body(request, _project_id(request)))


@contract(body=ProjectName, response=PROJECT)
@guard(Access(Scope.PROJECT, Role.EDITOR))
async def rename_project(request: Request) -> Response:
    body = await parse_body(request, ProjectName)
    studio = resources(request).studio
    await asyncio.to_thread(
        studio.rename_project, _project_id(request), body.name,
        current_user(request).key,
    )
    return Json(await _project_body(request, _project_id(request)))


@contract(status=204)
@guard(Access(Scope.PROJECT, Role.OWNER))
async def delete_project(request: Request) -> Response:
    studio = resources(request).studio
    await asyncio.to_thread(studio.delete_project, _project_id(request), current_user(request).key)
    return Response(status_code=HTTPStatus.NO_CONTENT)


@contract(body=Invitation, status=201, response=INVITED)
@guard(Access(Scope.PROJECT, Role.OWNER))
async def invite(request: Request) -> Response:
    """Add a member (or change a member's role) by user name, email or id."""
    body = await parse_body(request, Invitation)
    res = resources(request)
    role = Role.parse(body.role)
    invitee = await res.accounts.find(body.who)
    await asyncio.to_thread(
        res.studio.invite, _project_id(request), invitee.key, role, current_user(request).key
    )
    await res.fanout.control(_project_id(request), {"user": invitee.key, "role": role.label})
    return Json({"user": invitee.public(), "role": role.label}, status_code=HTTPStatus.CREATED)


@contract(response=ASSET_LIST)
@guard(Access(Scope.PROJECT, Role.VIEWER))
async def list_assets(request: Request) -> Response:
    models = resources(request).read_models
    await models.caught_up(LIST_FRESHNESS_S)
    rows = await models.assets_of(_project_id(request))
    return Json({"assets": [asset_body(r) for r in rows]})


async def _project_body(request: Request, project_id: UUID) -> dict[str, Any]:
    """The project as the event store has it now (not the read model: no lag after a write)."""
    res = resources(request)
    project = await asyncio.to_thread(res.studio.project, project_id)
    names = await res.accounts.usernames(list(project.members))
    return {
        "id": str(project.id),
        "name": project.name,
        "version": project.version,
        "created_at": project.created_on,
        "updated_at": project.modified_on,
        "members": [
            {"user_id": uid, "username": names.get(uid), "role": role}
            for uid, role in sorted(project.members.items(), key=lambda m: -Role.parse(m[1]))
        ],
        "assets": len(project.assets),
    }


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "role": row["role"],
            "created_at": row["created_at"], "updated_at": row["updated_at"]}


def asset_body(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["asset_id"],
        "project_id": row["project_id"],
        "filename": row["filename"],
        "kind": row["kind"],
        "media_type": row["media_type"],
        "size": row["size"],
        "sha256": row["sha256"],
        "blob_key": row["blob_key"],
        "uploaded_by": row["uploaded_by"],
        "uploaded_at": row["uploaded_at"],
        "units": row.get("units", "mm"),
        "derived_from": None if not row.get("source_asset_id") else {
            "asset_id": row["source_asset_id"], "job_id": row["job_id"],
            "operation": row["operation"]},
    }
