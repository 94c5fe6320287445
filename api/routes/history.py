"""Version control over HTTP: versions, time travel, revert, diff and the timeline."""

from __future__ import annotations

import asyncio
import tempfile
from http import HTTPStatus
from pathlib import Path
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from api.auth import Access, Scope, current_user, guard
from api.jsonbody import Json, parse_body
from api.openapi import Query, contract
from api.resources import Resources, resources
from api.schemas import STATE, TIMELINE, VERSION, VERSION_LIST, VersionTag
from core.errors import InvalidInput
from core.events.roles import Role
from core.events.studio import ProjectState
from core.geometry_tasks import blobs_to_compare, fetch_blobs, scene_geometry_diff
from core.scene import document

TIMELINE_PAGE = 100
TIMELINE_MAX_PAGE = 1000
LIST_FRESHNESS_S = 1.0


def _project_id(request: Request) -> UUID:
    project_id: UUID = request.state.project_id
    return project_id


@contract(body=VersionTag, status=201, response=VERSION)
@guard(Access(Scope.PROJECT, Role.EDITOR))
async def tag_version(request: Request) -> Response:
    message = (await parse_body(request, VersionTag)).message
    res = resources(request)
    version_id, position = await asyncio.to_thread(
        res.studio.tag_version, _project_id(request), message, current_user(request).key)
    return Json({"version_id": version_id, "position": position, "message": message.strip(),
                 "author": current_user(request).key}, status_code=HTTPStatus.CREATED)


@contract(response=VERSION_LIST)
@guard(Access(Scope.PROJECT, Role.VIEWER))
async def list_versions(request: Request) -> Response:
    models = resources(request).read_models
    await models.caught_up(LIST_FRESHNESS_S)
    rows = await models.versions(_project_id(request))
    return Json({"versions": [
        {"version_id": r["version_id"], "position": r["position"], "message": r["message"],
         "author": r["author"], "created_at": r["created_at"]} for r in rows]})


@contract(query=(
    Query("at", {"type": "integer", "minimum": 1}, "A log position: the state then."),
    Query("version", {"type": "string"}, "A tagged version: the state it tagged."),
), response=STATE)
@guard(Access(Scope.PROJECT, Role.VIEWER))
async def get_state(request: Request) -> Response:
    res = resources(request)
    position = await _position(request, res, request.query_params, "at", "version")
    project_id = _project_id(request)
    if position is None:  # now: the log's head, which project_at resolves
        project = await asyncio.to_thread(res.studio.project_at, project_id, None)
        scene = await res.read_models.scene_at(project_id, project.position)
    else:
        project, scene = await asyncio.gather(
            asyncio.to_thread(res.studio.project_at, project_id, position),
            res.read_models.scene_at(project_id, position))
    if scene is None:  # the scene history is behind: replay the scene from the log
        state = await asyncio.to_thread(res.studio.state_at, project_id, project.position)
        return Json(_state_body(state))
    return Json(_project_body(project) | {"scene": scene})


@contract(response=STATE)
@guard(Access(Scope.PROJECT, Role.EDITOR))
async def revert(request: Request) -> Response:
    res = resources(request)
    version_id = request.path_params["version_id"]
    position = await asyncio.to_thread(
        res.studio.revert, _project_id(request), version_id, current_user(request).key)
    state = await asyncio.to_thread(res.studio.state_at, _project_id(request), position)
    return Json({"reverted_to": version_id, "position": position} | _state_body(state))


@contract(query=(
    Query("from", {"type": "string"}, "A version id or a log position.", required=True),
    Query("to", {"type": "string"}, "A version id or a log position.", required=True),
))
@guard(Access(Scope.PROJECT, Role.VIEWER))
async def diff(request: Request) -> Response:
    res = resources(request)
    params = request.query_params
    start = await _point(request, res, params.get("from"), "from")
    end = await _point(request, res, params.get("to"), "to")
    if start > end:
        raise InvalidInput(f"'from' (position {start}) is after 'to' (position {end})")
    project_id = _project_id(request)
    old, new = await asyncio.gather(
        asyncio.to_thread(res.studio.state_at, project_id, start),
        asyncio.to_thread(res.studio.state_at, project_id, end))
    changes = await _geometry_diff(request, res, old.scene, new.scene)
    project = {}
    if old.name != new.name:
        project["name"] = {"from": old.name, "to": new.name}
    return Json({"from": start, "to": end, "project": project} | changes)


async def _geometry_diff(request: Request, res: Resources, old: bytes,
                         new: bytes) -> dict[str, Any]:
    """The scenes' diff with the distances between changed meshes, measured in a bounded
    child (:mod:`core.geometry_tasks`) from the blobs downloaded to files."""
    blobs = await asyncio.to_thread(blobs_to_compare, old, new)
    if not blobs:
        return await asyncio.to_thread(scene_geometry_diff, old, new, {})
    formats = {blob: await res.read_models.format_of_blob(blob) or "glb" for blob in blobs}
    with tempfile.TemporaryDirectory(prefix="orfeas-diff-") as folder:
        files = await asyncio.to_thread(fetch_blobs, res.blobs, blobs, Path(folder))
        meshes = {blob: (files[blob], formats[blob]) for blob in blobs}
        return await res.upload_checker.run(scene_geometry_diff, (old, new, meshes),
                                            "the meshes compared",
                                            user=current_user(request).key)


@contract(query=(
    Query("after", {"type": "integer", "minimum": 0, "default": 0},
          "Events after this log position (the previous page's `next`)."),
    Query("limit", {"type": "integer", "minimum": 1, "maximum": TIMELINE_MAX_PAGE,
                    "default": TIMELINE_PAGE}, "Events per page."),
), response=TIMELINE)
@guard(Access(Scope.PROJECT, Role.VIEWER))
async def timeline(request: Request) -> Response:
    params = request.query_params
    after = _int(params.get("after", "0"), "after", minimum=0)
    limit = _int(params.get("limit", str(TIMELINE_PAGE)), "limit", minimum=1)
    if limit > TIMELINE_MAX_PAGE:
        raise InvalidInput(f"limit is at most {TIMELINE_MAX_PAGE}")
    models = resources(request).read_models
    await models.caught_up(LIST_FRESHNESS_S)
    rows = await models.timeline(_project_id(request), after, limit)
    cursor = rows[-1]["position"] if len(rows) == limit else None
    return Json({"events": rows, "next": cursor})


# -- parameters ---------------------------------------------------------------------------


async def _position(request: Request, res: Resources, params: Any, at: str,
                    version: str) -> int | None:
    if at in params and version in params:
        raise InvalidInput(f"give either '{at}' or '{version}', not both")
    if at in params:
        return _int(params[at], at, minimum=1)
    if version in params:
        return await _version_position(request, res, params[version])
    return None


async def _point(request: Request, res: Resources, raw: str | None, name: str) -> int:
    """A version id or a log position."""
    if raw is None:
        raise InvalidInput(f"'{name}' is required: a version id or a log position")
    if raw.isdigit():
        return _int(raw, name, minimum=1)
    return await _version_position(request, res, raw)


async def _version_position(request: Request, res: Resources, version_id: str) -> int:
    project = await asyncio.to_thread(res.studio.project, _project_id(request))
    return project.tagged_version(version_id).position


def _int(raw: str, name: str, *, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"'{name}' must be an integer, got {raw!r}") from None
    if value < minimum:
        raise InvalidInput(f"'{name}' must be at least {minimum}")
    return value


def _state_body(state: ProjectState) -> dict[str, Any]:
    return _project_body(state) | {"scene": document.snapshot(state.scene)}


def _project_body(state: ProjectState) -> dict[str, Any]:
    return {
        "position": state.position,
        "project": {"id": state.project_id, "name": state.name,
                    "members": [{"user_id": u, "role": r} for u, r in state.members.items()]},
    }


