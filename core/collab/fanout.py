"""Scene traffic between API nodes over core NATS: ``crdt.<project>`` (document changes),
``awareness.<project>`` (presence) and ``control.<project>`` (membership changes).

Document messages carry the scene versions they cover. A node that notices a gap (a lost
message, or another node's concurrent append) reads the missing versions from the event
store, so NATS being at-most-once never makes a room diverge from the log. They are a fast
path only: every committed scene version also reaches every node from the log itself
(:mod:`core.collab.scene_log`), so a lost message delays nothing for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import ConnectionClosedError
from nats.errors import TimeoutError as NatsTimeoutError

FROM_VERSION = "Orfeas-From-Version"
TO_VERSION = "Orfeas-To-Version"
NODE = "Orfeas-Node"
USER = "Orfeas-User"
WHO_WAIT_S = 0.15
BARRIER_TIMEOUT_S = 2.0
HEADERS_ROOM = 1024  # the headers travel within the server's max_payload too

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SceneChange:
    node: str
    first_version: int
    last_version: int
    update: bytes  # empty: read the versions from the event store


@dataclass(frozen=True)
class PresenceChange:
    node: str
    user: str
    update: bytes


class Fanout:
    def __init__(self, nc: NATS, namespace: str, node: str) -> None:
        self._nc = nc
        self._prefix = f"{namespace}." if namespace else ""
        self.node = node

    def _subject(self, kind: str, project_id: UUID) -> str:
        return f"{self._prefix}{kind}.{project_id}"

    def _fits(self, payload: bytes) -> bool:
        """Whether a message can carry the payload: the server refuses messages over its
        ``max_payload`` (1 MiB by default), and scene frames may be bigger."""
        return len(payload) <= self._nc.max_payload - HEADERS_ROOM

    async def scene_changed(self, project_id: UUID, first: int, last: int,
                            update: bytes = b"") -> None:
        """Tell the other nodes the scene reached ``last``. An update too big for one message
        goes without it: the versions alone make the others read it from the event store."""
        await self._nc.publish(
            self._subject("crdt", project_id), update if self._fits(update) else b"",
            headers={NODE: self.node, FROM_VERSION: str(first), TO_VERSION: str(last)})

    async def presence(self, project_id: UUID, user: str, update: bytes) -> None:
        """Presence is never stored, so one too big for a message reaches this node's peers
        only (a cursor and a name are a few hundred bytes; this is a client misbehaving)."""
        if not self._fits(update):
            log.warning("presence of %s in %s: %d bytes, too big to share with other nodes",
                        user, project_id, len(update))
            return
        await self._nc.publish(self._subject("awareness", project_id), update,
                               headers={NODE: self.node, USER: user})

    async def control(self, project_id: UUID, message: dict[str, Any]) -> None:
        await self._nc.publish(self._subject("control", project_id),
                               json.dumps(message).encode(), headers={NODE: self.node})

    async def online(self, project_id: UUID, wait_s: float = WHO_WAIT_S) -> set[str]:
        """The users connected to the project on any node (every node with the room loaded
        answers; the answers that arrive within ``wait_s`` count)."""
        inbox = self._nc.new_inbox()
        users: set[str] = set()

        async def collect(msg: Msg) -> None:
            # With no room loaded anywhere, the server answers "no responders": a status
            # message with an empty body, which names nobody.
            if msg.data:
                users.update(json.loads(msg.data))

        subscription = await self._nc.subscribe(inbox, cb=collect)
        try:
            await self._nc.publish(self._subject("who", project_id), b"", reply=inbox)
            await asyncio.sleep(wait_s)
        finally:
            await subscription.unsubscribe()
        return users

    async def subscribe(
        self,
        project_id: UUID,
        on_scene: Callable[[SceneChange], Awaitable[None]],
        on_presence: Callable[[PresenceChange], Awaitable[None]],
        on_control: Callable[[dict[str, Any]], Awaitable[None]],
        local_users: Callable[[], list[str]],
    ) -> list[Subscription]:
        """Follow the project's subjects. On return the server has the subscriptions: a
        change published from then on arrives (a room reads the log only after that)."""
        async def scene(msg: Msg) -> None:
            headers = msg.headers or {}
            await on_scene(SceneChange(headers.get(NODE, ""), int(headers[FROM_VERSION]),
                                       int(headers[TO_VERSION]), msg.data))

        async def presence(msg: Msg) -> None:
            headers = msg.headers or {}
            if headers.get(NODE) != self.node:  # our own peers have it already
                await on_presence(PresenceChange(headers.get(NODE, ""),
                                                 headers.get(USER, ""), msg.data))

        async def control(msg: Msg) -> None:
            await on_control(json.loads(msg.data))

        async def who(msg: Msg) -> None:
            await msg.respond(json.dumps(local_users()).encode())

        subscriptions = [
            await self._nc.subscribe(self._subject("crdt", project_id), cb=scene),
            await self._nc.subscribe(self._subject("awareness", project_id), cb=presence),
            await self._nc.subscribe(self._subject("control", project_id), cb=control),
            await self._nc.subscribe(self._subject("who", project_id), cb=who),
        ]
        await self._server_has_all_sent()
        return subscriptions

    async def _server_has_all_sent(self) -> None:
        """Return once the server has processed every command this client sent so far.

        That is what ``flush()`` promises, but nats-py 2.16 writes the flush's PING straight to
        the socket while earlier commands may still wait in its buffer for the flusher task,
        so the PONG can come back before the server saw them: here, every flush right after a
        subscribe overtook it, and a fifth of the messages published right after were lost.
        A message to our own inbox queues behind those commands instead.

        Without a connection (NATS restarting) there is nothing to wait for: the client sends
        the subscriptions again once it reconnects, and a change announced before then is a
        gap the next change shows.
        """
        if not self._nc.is_connected:
            return
        inbox = await self._nc.subscribe(self._nc.new_inbox(), max_msgs=1)
        try:
            await self._nc.publish(inbox.subject, b"")
            await inbox.next_msg(timeout=BARRIER_TIMEOUT_S)
        except NatsTimeoutError:
            log.warning("NATS did not echo a message within %.0f s; going on without knowing "
                        "that it has the subscriptions", BARRIER_TIMEOUT_S)
        finally:
            with contextlib.suppress(ConnectionClosedError):
                await inbox.unsubscribe()

    @staticmethod
    async def unsubscribe(subscriptions: list[Subscription]) -> None:
        """End a room's subscriptions; on a connection that is closed they ended with it."""
        for subscription in subscriptions:
            with contextlib.suppress(ConnectionClosedError):
                await subscription.unsubscribe()
