"""The log as the one channel for scene changes: each API node follows every committed scene
event and tells its rooms.

The event store announces each commit that touches a scene on :data:`SCENE_CHANNEL` (a trigger
sends ``pg_notify`` inside the committing transaction, so PostgreSQL delivers it only once it is
committed, and a writer has no second step that a crash could skip). One connection per node
listens; a room that learns of a version it lacks reads it from the log. A notification sent
while the connection was down is lost with it, so after every (re)connection, once the LISTEN
is in place, every room on the node reads the log up to its scene's latest version: whatever
was committed meanwhile is in that read, and whatever comes later is announced.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import anyio
import psycopg
from anyio.abc import TaskStatus
from psycopg import sql

from core.collab.rooms import SceneRooms
from core.database import CONNECT_TIMEOUT_S
from core.events.store import SCENE_CHANNEL, SCENE_HEADS, parse_scene_notice

log = logging.getLogger(__name__)

APPLICATION_NAME = "orfeas-scene-log"  # how the listening connection shows in pg_stat_activity
RETRY_FIRST_S = 0.5
RETRY_MOST_S = 5.0
# A LISTEN connection only reads, so a server that vanished without closing it (a host gone, a
# network cut) would leave it waiting for ever: TCP keepalives notice within about 11 s.
KEEPALIVES: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
                              "keepalives_count": 3}


class SceneLogFollower:
    def __init__(self, database_url: str, rooms: SceneRooms) -> None:
        self._database_url = database_url
        self._rooms = rooms

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled, reconnecting with back-off. Started once the first LISTEN
        is in place (or its first attempt failed: the node serves meanwhile, and the rooms
        catch up once a connection is back)."""
        started = False
        wait = RETRY_FIRST_S
        while True:
            try:
                async with await self._connect() as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(SCENE_CHANNEL)))
                    await self._catch_up(conn)
                    if not started:
                        task_status.started()
                        started = True
                    wait = RETRY_FIRST_S
                    log.info("following the scene log (%s)", SCENE_CHANNEL)
                    async for notice in conn.notifies():
                        self._deliver(notice.payload)
            except psycopg.Error as e:
                log.warning("lost the scene log (%s); listening again in %.1f s", e, wait)
            if not started:
                task_status.started()
                started = True
            await asyncio.sleep(wait)
            wait = min(2 * wait, RETRY_MOST_S)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self._database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
            application_name=APPLICATION_NAME, **KEEPALIVES)

    async def _catch_up(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Every room here to its scene's latest version, as if the log had just said so."""
        scene_ids = self._rooms.scene_ids()
        if not scene_ids:
            return
        cursor = await conn.execute(SCENE_HEADS, (scene_ids,))
        for scene_id, version in await cursor.fetchall():
            self._rooms.log_moved(scene_id, version)

    def _deliver(self, payload: str) -> None:
        notice = parse_scene_notice(payload)
        if notice is None:
            log.warning("not a scene notice on %s: %r", SCENE_CHANNEL, payload[:100])
            return
        self._rooms.log_moved(*notice)
