"""Who is calling, and may they do this?

Every endpoint is wrapped by :func:`guard` with an :class:`Access` that states what it needs;
the wrapper authenticates (Bearer token, session cookie, or ``?token=`` on WebSockets) and
checks the caller's role in the project the path names before the endpoint runs. The access
rule is kept on the endpoint so that tests can enumerate the route table and prove that every
route refuses anonymous and under-privileged callers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import wraps
from typing import Any
from uuid import UUID

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from api.resources import resources
from core.accounts import User
from core.errors import Forbidden, NotFound, Unauthenticated
from core.events.project import project_uuid
from core.events.roles import Role

SESSION_COOKIE = "orfeas_session"

Endpoint = Callable[[Request], Awaitable[Response]]


class Scope(StrEnum):
    PUBLIC = "public"  # no credentials needed
    USER = "user"  # any signed-in user
    ADMIN = "admin"  # site administrators only
    PROJECT = "project"  # a role in the project named by {project_id}
    ASSET = "asset"  # a role in the project that owns {asset_id}
    JOB = "job"  # a role in the project of {job_id}


@dataclass(frozen=True)
class Access:
    scope: Scope
    role: Role | None = None


ACCESS_ATTRIBUTE = "__orfeas_access__"


def access_of(endpoint: Any) -> Access | None:
    found: Access | None = getattr(endpoint, ACCESS_ATTRIBUTE, None)
    return found


def guard(access: Access) -> Callable[[Endpoint], Endpoint]:
    def decorate(endpoint: Endpoint) -> Endpoint:
        @wraps(endpoint)
        async def guarded(request: Request) -> Response:
            if access.scope is not Scope.PUBLIC:
                user = await authenticate(request)
                request.state.user = user
                request.state.project_id = await authorise(request, user, access)
            return await endpoint(request)

        setattr(guarded, ACCESS_ATTRIBUTE, access)
        return guarded

    return decorate


def credentials(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    if conn.scope["type"] == "websocket":
        token = conn.query_params.get("token") or _subprotocol_token(conn)
        if token:
            return token
    return conn.cookies.get(SESSION_COOKIE)


TOKEN_SUBPROTOCOL = "orfeas-token."  # noqa: S105 (a prefix, not a secret)


def _subprotocol_token(conn: HTTPConnection) -> str | None:
    """Browsers cannot set headers on a WebSocket; a subprotocol ``orfeas-token.<token>``
    (offered beside ``orfeas``) carries the token instead of the URL."""
    for offered in conn.scope.get("subprotocols", []):
        if offered.startswith(TOKEN_SUBPROTOCOL):
            return str(offered[len(TOKEN_SUBPROTOCOL):])
    return None


async def authenticate(conn: HTTPConnection) -> User:
    raw = credentials(conn)
    if not raw:
        raise Unauthenticated("sign in: send 'Authorization: Bearer <token>' or a session cookie")
    user = await resources(conn).accounts.user_for_token(raw)
    if user is None:
        raise Unauthenticated("the token or session is invalid or has expired")
    return user


def current_user(request: Request) -> User:
    user: User = request.state.user
    return user


async def authorise(conn: HTTPConnection, user: User, access: Access) -> UUID | None:
    """Check the role; return the project the request concerns (None for site-wide routes)."""
    if access.scope is Scope.ADMIN and not user.is_admin:
        raise Forbidden("site administrators only")
    if access.scope in (Scope.USER, Scope.ADMIN, Scope.PUBLIC):
        return None
    project_id = await _project_of(conn, access.scope)
    required = access.role or Role.VIEWER
    if user.is_admin:
        return project_id
    role = await project_role(conn, project_id, user)
    if role is None and access.scope is Scope.JOB and required == Role.VIEWER:
        # A generation answered from another project's job (a cache hit or a shared run)
        # shows that job's meshes in the caller's scene: members of the projects that
        # reused it may read it, not change it.
        job = await asyncio.to_thread(resources(conn).studio.job,
                                      _uuid(conn.path_params["job_id"], "job"))
        for reuser in job.reused_by:
            if await project_role(conn, UUID(reuser), user) is not None:
                return UUID(reuser)
    if role is None:
        raise Forbidden(f"you are not a member of project {project_id}")
    if role < required:
        raise Forbidden(f"this needs the {required.label} role; you are {role.label}")
    return project_id


async def project_role(conn: HTTPConnection, project_id: UUID, user: User) -> Role | None:
    """The caller's role, read from the aggregate itself: a revoked role stops at once."""
    project = await asyncio.to_thread(resources(conn).studio.project, project_id)
    return project.role_of(user.key)


async def _project_of(conn: HTTPConnection, scope: Scope) -> UUID:
    params = conn.path_params
    models = resources(conn).read_models
    if scope is Scope.PROJECT:
        return project_uuid(params["project_id"])
    if scope is Scope.ASSET:
        asset = await models.asset(_uuid(params["asset_id"], "mesh"))
        if asset is None:
            raise NotFound(f"mesh {params['asset_id']} not found")
        project_id: UUID = asset["project_id"]
        return project_id
    job = await models.job(_uuid(params["job_id"], "job"))
    if job is None:
        raise NotFound(f"job {params['job_id']} not found")
    job_project: UUID = job["project_id"]
    return job_project


def _uuid(raw: str, what: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise NotFound(f"{what} {raw!r} not found") from None
