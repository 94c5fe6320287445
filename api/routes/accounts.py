"""Signing in: API tokens for scripts, a session cookie for the browser."""

from __future__ import annotations

from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import Response

from api.auth import (
    SESSION_COOKIE,
    Access,
    Scope,
    check_origin,
    client_address,
    credentials,
    current_user,
    guard,
)
from api.jsonbody import Json, field, json_object
from api.resources import resources
from core.accounts import SESSION_TTL


@guard(Access(Scope.PUBLIC))
async def create_token(request: Request) -> Response:
    data = await json_object(request)
    accounts = resources(request).accounts
    user = await accounts.authenticate(data.get("username"), data.get("password"),
                                      client_address(request))
    name = field(data, "name", str, required=False) or "api token"
    token = await accounts.issue_token(user, "api", name)
    return Json({"token": token, "user": user.public()}, status_code=HTTPStatus.CREATED)


@guard(Access(Scope.PUBLIC))
async def create_session(request: Request) -> Response:
    check_origin(request)  # another site may not sign a browser in (to its own account)
    data = await json_object(request)
    accounts = resources(request).accounts
    user = await accounts.authenticate(data.get("username"), data.get("password"),
                                      client_address(request))
    token = await accounts.issue_token(user, "session", "browser session", SESSION_TTL)
    response = Json({"user": user.public()}, status_code=HTTPStatus.CREATED)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=int(SESSION_TTL.total_seconds()), httponly=True,
        samesite="lax", secure=request.url.scheme == "https", path="/",
    )
    return response


@guard(Access(Scope.USER))
async def delete_session(request: Request) -> Response:
    raw = credentials(request)
    if raw:
        await resources(request).accounts.revoke_token(raw)
    response = Response(status_code=HTTPStatus.NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@guard(Access(Scope.USER))
async def me(request: Request) -> Response:
    return Json(current_user(request).public())


@guard(Access(Scope.ADMIN))
async def create_user(request: Request) -> Response:
    data = await json_object(request)
    user = await resources(request).accounts.create_user(
        field(data, "username", str),
        field(data, "password", str),
        is_admin=bool(field(data, "is_admin", bool, required=False)),
        email=field(data, "email", str, required=False),
    )
    return Json(user.public(), status_code=HTTPStatus.CREATED)
