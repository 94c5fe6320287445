"""Signing in: API tokens for scripts, a session cookie for the browser."""

from __future__ import annotations

import asyncio
from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import Response

from api.activity import record_usage
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
from api.jsonbody import Json, parse_body
from api.openapi import contract
from api.resources import resources
from api.schemas import SIGNED_IN, TOKEN, USER, Credentials, NewUser, TokenRequest
from core.accounts import SESSION_TTL, User
from core.errors import Unauthenticated
from core.events.account import set_tier
from core.events.activity import sign_in_failed, signed_in


@contract(body=TokenRequest, status=201, errors=(401, 403), response=TOKEN)
@guard(Access(Scope.PUBLIC))
async def create_token(request: Request) -> Response:
    body = await parse_body(request, TokenRequest)
    user = await _sign_in(request, body.username, body.password, "token")
    name = body.name or "api token"
    token = await resources(request).accounts.issue_token(user, "api", name)
    return Json({"token": token, "user": user.public()}, status_code=HTTPStatus.CREATED)


@contract(body=Credentials, status=201, errors=(401, 403), response=SIGNED_IN)
@guard(Access(Scope.PUBLIC))
async def create_session(request: Request) -> Response:
    check_origin(request)  # another site may not sign a browser in (to its own account)
    body = await parse_body(request, Credentials)
    accounts = resources(request).accounts
    user = await _sign_in(request, body.username, body.password, "session")
    token = await accounts.issue_token(user, "session", "browser session", SESSION_TTL)
    response = Json({"user": user.public()}, status_code=HTTPStatus.CREATED)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=int(SESSION_TTL.total_seconds()), httponly=True,
        samesite="lax", secure=request.url.scheme == "https", path="/",
    )
    return response


async def _sign_in(request: Request, username: str, password: str, method: str) -> User:
    """Check the password, and note the sign-in or its failure for analytics (a failure
    names nobody: what was typed as the name may be a password)."""
    try:
        user = await resources(request).accounts.authenticate(username, password,
                                                              client_address(request))
    except Unauthenticated:
        record_usage(request.scope, sign_in_failed(method))
        raise
    record_usage(request.scope, signed_in(user.key, method))
    return user


@contract(status=204)
@guard(Access(Scope.USER))
async def delete_session(request: Request) -> Response:
    raw = credentials(request)
    if raw:
        await resources(request).accounts.revoke_token(raw)
    response = Response(status_code=HTTPStatus.NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@contract(response=USER)
@guard(Access(Scope.USER))
async def me(request: Request) -> Response:
    return Json(current_user(request).public())


@contract(body=NewUser, status=201, response=USER)
@guard(Access(Scope.ADMIN))
async def create_user(request: Request) -> Response:
    body = await parse_body(request, NewUser)
    res = resources(request)
    user = await res.accounts.create_user(
        body.username, body.password, is_admin=body.is_admin, email=body.email)
    if body.tier != "free":  # a user the log says nothing of is on the free tier
        await asyncio.to_thread(set_tier, res.studio, user.key, user.username, body.tier,
                                current_user(request).key)
        await res.read_models.caught_up(names=("user_tiers",))
    return Json(user.public() | {"tier": body.tier}, status_code=HTTPStatus.CREATED)
