"""Real-time collaboration: the scene WebSocket, who is online, removing collaborators, and
per-user undo/redo of scene changes."""

from __future__ import annotations

import asyncio
import logging
import time
from http import HTTPStatus
from uuid import UUID

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from api.activity import record_usage
from api.auth import Access, Scope, authenticate, current_user, guard, project_role
from api.jsonbody import Json, parse_body
from api.openapi import contract
from api.resources import Resources, resources
from api.schemas import COLLABORATORS, MEMBER, ROOMS, SCENE_CHANGE, RoleChange
from api.ws_peer import WebSocketPeer
from core.collab.protocol import CloseCode
from core.errors import Forbidden, InvalidInput, NotFound, TooLarge, Unauthenticated
from core.events.activity import session_ended
from core.events.project import project_uuid
from core.events.roles import Role

log = logging.getLogger(__name__)

SUBPROTOCOL = "orfeas"


async def scene_socket(websocket: WebSocket) -> None:
    """``/ws/projects/{project_id}``: the y-websocket protocol v1 for the project's scene.

    The socket is accepted first so that a refusal can carry a close code and a reason
    (a refused handshake could only say "403").
    """
    offered = websocket.scope.get("subprotocols", [])
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    try:
        project_id = project_uuid(websocket.path_params["project_id"])
        user = await authenticate(websocket)
        role = Role.OWNER if user.is_admin else await project_role(websocket, project_id, user)
        if role is None:
            raise Forbidden(f"you are not a member of project {project_id}")
    except Unauthenticated as e:
        await websocket.close(CloseCode.UNAUTHENTICATED, _reason(e))
        return
    except Forbidden as e:
        await websocket.close(CloseCode.FORBIDDEN, _reason(e))
        return
    except NotFound as e:
        await websocket.close(CloseCode.NOT_FOUND, _reason(e))
        return
    await _serve(websocket, resources(websocket), project_id, user.key, role >= Role.EDITOR)


async def _serve(websocket: WebSocket, res: Resources, project_id: UUID, user_id: str,
                 can_edit: bool) -> None:
    room = await res.rooms.room(project_id)
    peer = WebSocketPeer(websocket, user_id, can_edit)
    max_frame = res.settings.ws_max_frame_bytes
    async with anyio.create_task_group() as tg:
        tg.start_soon(peer.write_forever)
        room.join(peer)
        joined = time.monotonic()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                frame = message.get("bytes")
                if frame is None:
                    await peer.close(CloseCode.BAD_MESSAGE, "send binary frames")
                    break
                if len(frame) > max_frame:
                    raise TooLarge(f"a frame of {len(frame)} bytes; the limit is {max_frame}")
                await room.receive(peer, frame)
        except TooLarge as e:
            await peer.close(CloseCode.TOO_LARGE, _reason(e))
        except InvalidInput as e:
            await peer.close(CloseCode.BAD_MESSAGE, _reason(e))
        except Exception:  # the server's fault, not the frame's: say so, not "bye"
            log.exception("scene socket of %s in project %s failed", user_id, project_id)
            await peer.close(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            record_usage(websocket.scope, session_ended(user_id, str(project_id),
                                                  round(time.monotonic() - joined, 3),
                                                  res.fanout.node))
            await room.leave(peer)
            await peer.close(1000, "bye")


def _reason(error: Exception) -> str:
    return str(error)[:120]  # close reasons are limited to 123 bytes


# -- HTTP -----------------------------------------------------------------------------------


def _project_id(request: Request) -> UUID:
    project_id: UUID = request.state.project_id
    return project_id


@contract(response=COLLABORATORS)
@guard(Access(Scope.PROJECT, Role.VIEWER))
async def collaborators(request: Request) -> Response:
    res = resources(request)
    project = await asyncio.to_thread(res.studio.project, _project_id(request))
    online = await res.fanout.online(_project_id(request))
    names = await res.accounts.usernames(list(project.members))
    return Json({"collaborators": [
        {"user_id": uid, "username": names.get(uid), "role": role, "online": uid in online}
        for uid, role in sorted(project.members.items(), key=lambda m: -Role.parse(m[1]))
    ]})


@contract(body=RoleChange, response=MEMBER, errors=(404, 409))
@guard(Access(Scope.PROJECT, Role.OWNER))
async def change_role(request: Request) -> Response:
    """A member's new role (by id, as the members list gives it); someone not a member is
    404 here, where ``POST .../invite`` would add them."""
    body = await parse_body(request, RoleChange)
    res = resources(request)
    user_id = request.path_params["user_id"]
    role = Role.parse(body.role)
    await asyncio.to_thread(res.studio.change_role, _project_id(request), user_id, role,
                            current_user(request).key)
    await res.fanout.control(_project_id(request), {"user": user_id, "role": role.label})
    names = await res.accounts.usernames([user_id])
    return Json({"user_id": user_id, "username": names.get(user_id), "role": role.label})


@contract(status=204)
@guard(Access(Scope.PROJECT, Role.OWNER))
async def remove_collaborator(request: Request) -> Response:
    res = resources(request)
    user_id = request.path_params["user_id"]
    await asyncio.to_thread(res.studio.remove_member, _project_id(request), user_id,
                            current_user(request).key)
    await res.fanout.control(_project_id(request), {"user": user_id, "role": None})
    return Response(status_code=HTTPStatus.NO_CONTENT)


@contract(response=SCENE_CHANGE)
@guard(Access(Scope.PROJECT, Role.EDITOR))
async def undo(request: Request) -> Response:
    return await _invert(request, redo=False)


@contract(response=SCENE_CHANGE)
@guard(Access(Scope.PROJECT, Role.EDITOR))
async def redo(request: Request) -> Response:
    return await _invert(request, redo=True)


async def _invert(request: Request, *, redo: bool) -> Response:
    res = resources(request)
    operation = res.studio.redo_user_change if redo else res.studio.undo_user_change
    stored = await asyncio.to_thread(operation, _project_id(request), current_user(request).key)
    return Json({"position": stored.position, "scene_version": stored.last_version})


@contract(response=ROOMS)
@guard(Access(Scope.ADMIN))
async def rooms(request: Request) -> Response:
    """The rooms loaded on this node, with their peers and document size."""
    return Json({"node": resources(request).fanout.node,
                 "rooms": [vars(s) for s in resources(request).rooms.stats()]})

