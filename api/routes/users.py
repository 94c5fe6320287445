"""Site administrators' hold on accounts: disabling one (its sign-ins refused, its tokens
dead, its open scene sockets closed) and enabling it again. Accounts are plain tables, not
the event log (``core.accounts``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.auth import Access, Scope, current_user, guard
from api.jsonbody import Json, parse_body
from api.openapi import contract
from api.resources import resources
from api.schemas import USER_ACCESS, AccountAccess
from core.errors import Conflict


@contract(body=AccountAccess, response=USER_ACCESS, errors=(404, 409))
@guard(Access(Scope.ADMIN))
async def set_disabled(request: Request) -> Response:
    """Disable an account or enable it again; an administrator cannot disable their own (the
    last one would lock everyone out)."""
    body = await parse_body(request, AccountAccess)
    accounts = resources(request).accounts
    user = await accounts.find(request.path_params["username"])
    if body.disabled and user.id == current_user(request).id:
        raise Conflict("you cannot disable your own account")
    await accounts.set_disabled(user, body.disabled)
    if body.disabled:
        await _close_sockets(request, user.key, user.is_admin)
    return Json(user.public() | {"disabled": body.disabled})


async def _close_sockets(request: Request, user_key: str, is_admin: bool) -> None:
    """Close the user's open scene sockets, on every node, with 4403 and the reason: their
    token stops working at once, but a socket checked it only when it opened. The rooms of
    the projects they may open (any, for an administrator) hear it on their control subject,
    as when a member is removed."""
    res = resources(request)
    projects = await res.read_models.projects_of(user_key, all_projects=is_admin)
    for project in projects:
        await res.fanout.control(project["id"], {"user": user_key, "role": None,
                                                 "reason": "your account was disabled"})
