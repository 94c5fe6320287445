"""Who is calling, and may they do this?

Every endpoint is wrapped by :func:`guard` with an :class:`Access` that states what it needs;
the wrapper authenticates (Bearer token, session cookie, or ``?token=`` on WebSockets) and
checks the caller's role in the project the path names before the endpoint runs. The access
rule is kept on the endpoint so that tests can enumerate the route table and prove that every
route refuses anonymous and under-privileged callers.

A browser sends the session cookie with requests that other sites' pages make, so a request
authenticated by the cookie must come from one of the studio's own pages when it can change
something: a scene socket or an unsafe method needs an ``Origin`` that is the studio's own or
listed in ``ORFEAS_ALLOWED_ORIGINS`` (:func:`check_origin`). Bearer and ``?token=`` clients
are not affected: another site's page cannot make a browser send those.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import wraps
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from api.ratelimit import take
from api.resources import resources
from core.accounts import User
from core.errors import Forbidden, NotFound, Unauthenticated
from core.events.project import project_uuid
from core.events.roles import Role
from core.limits import Limits, Policy

SESSION_COOKIE = "orfeas_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")

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
                if not user.is_admin:  # who sets the limits is not held by them
                    await take(request, Limits(resources(request).pool), user.key,
                               Policy.REQUESTS, "requests")  # every signed-in route spends one
                request.state.project_id = await authorise(request, user, access)
            return await endpoint(request)

        setattr(guarded, ACCESS_ATTRIBUTE, access)
        return guarded

    return decorate


def credentials(conn: HTTPConnection) -> str | None:
    return _bearer(conn) or conn.cookies.get(SESSION_COOKIE)


def _bearer(conn: HTTPConnection) -> str | None:
    """A token the client sent on purpose (never one a browser attaches by itself)."""
    header = conn.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    if conn.scope["type"] == "websocket":
        return conn.query_params.get("token") or _subprotocol_token(conn)
    return None


def client_address(conn: HTTPConnection) -> str:
    """The peer's address (uvicorn puts a trusted proxy's X-Forwarded-For here)."""
    return conn.client.host if conn.client else "unknown"


def check_origin(conn: HTTPConnection) -> None:
    """Refuse a cookie-authenticated scene socket or change that another site's page made.

    Browsers always send ``Origin`` on a WebSocket handshake and on unsafe fetches and form
    posts; a request without one is from a non-browser client (curl, a script, a test client),
    which has no victim's cookie to abuse, so it passes.
    """
    if conn.scope["type"] == "http" and conn.scope["method"] in SAFE_METHODS:
        return
    origin = conn.headers.get("origin")
    if origin is None or _is_allowed(conn, origin.strip().lower().rstrip("/")):
        return
    shown = origin[:48].encode("ascii", "replace").decode()  # a close reason is 123 bytes
    raise Forbidden(f"origin {shown!r} may not use the session cookie (list it in "
                    "ORFEAS_ALLOWED_ORIGINS, or send a bearer token)")


def _is_allowed(conn: HTTPConnection, origin: str) -> bool:
    settings = resources(conn).settings
    if origin in settings.allowed_origins:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or parts.path or not parts.netloc:
        return False  # "null" (a sandboxed frame or a file), or not an origin at all
    host = conn.headers.get("host", "").lower()
    if parts.netloc == host:
        return True  # the page was served by this studio (or a proxy in front of it)
    configured = {f"{settings.host}:{settings.port}"}
    if settings.host in (*LOOPBACK, "0.0.0.0", "::"):  # noqa: S104 (compared, not bound)
        configured |= {f"{name}:{settings.port}" for name in LOOPBACK}
    return parts.netloc in configured


TOKEN_SUBPROTOCOL = "orfeas-token."  # noqa: S105 (a prefix, not a secret)


def _subprotocol_token(conn: HTTPConnection) -> str | None:
    """Browsers cannot set headers on a WebSocket; a subprotocol ``orfeas-token.<token>``
    (offered beside ``orfeas``) carries the token instead of the URL."""
    for offered in conn.scope.get("subprotocols", []):
        if offered.startswith(TOKEN_SUBPROTOCOL):
            return str(offered[len(TOKEN_SUBPROTOCOL):])
    return None


async def authenticate(conn: HTTPConnection) -> User:
    raw = _bearer(conn)
    if not raw:
        raw = conn.cookies.get(SESSION_COOKIE)
        if raw:
            check_origin(conn)
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
    if role is None:  # the project of a job or asset is named only to its members
        where = f"project {project_id}" if access.scope is Scope.PROJECT else "its project"
        raise Forbidden(f"you are not a member of {where}")
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
