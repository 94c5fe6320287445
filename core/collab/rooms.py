"""The rooms loaded on this node: created on first join, unloaded when idle, and told of every
version the log announces for their scenes (from the moment they start loading)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

from anyio.abc import TaskGroup
from psycopg_pool import AsyncConnectionPool

from core.collab.fanout import Fanout
from core.collab.room import RoomStats, SceneRoom
from core.events.scene import Scene
from core.events.studio import Studio

log = logging.getLogger(__name__)

IDLE_UNLOAD_S = 30.0


class SceneRooms:
    def __init__(self, studio: Studio, pool: AsyncConnectionPool[Any], fanout: Fanout,
                 task_group: TaskGroup, idle_unload_s: float = IDLE_UNLOAD_S) -> None:
        self._studio = studio
        self._pool = pool
        self._fanout = fanout
        self._tg = task_group
        self._idle_unload_s = idle_unload_s
        self._rooms: dict[UUID, SceneRoom] = {}
        self._loading: dict[UUID, asyncio.Lock] = {}
        self._unloads: dict[UUID, asyncio.TimerHandle] = {}
        self._by_scene: dict[UUID, SceneRoom] = {}  # loaded or loading, by scene id

    async def room(self, project_id: UUID) -> SceneRoom:
        """The project's room, loading it (once, however many join at the same time)."""
        self._cancel_unload(project_id)
        room = self._rooms.get(project_id)
        if room is not None:
            return room
        lock = self._loading.setdefault(project_id, asyncio.Lock())
        async with lock:
            room = self._rooms.get(project_id)
            if room is None:
                room = SceneRoom(project_id, self._studio, self._pool, self._fanout,
                                 on_empty=self._schedule_unload)
                scene_id = Scene.create_id(str(project_id))
                # Known to the log follower before the load reads the log: what is committed
                # meanwhile is either in what the load reads or announced to the room after.
                self._by_scene[scene_id] = room
                try:
                    await self._tg.start(room.run)
                except BaseException:
                    self._by_scene.pop(scene_id, None)
                    raise
                self._rooms[project_id] = room
                log.info("loaded room %s at scene version %d", project_id, room.version)
        return room

    def loaded(self, project_id: UUID) -> SceneRoom | None:
        return self._rooms.get(project_id)

    def log_moved(self, scene_id: UUID, version: int) -> None:
        """The log holds scene ``scene_id`` up to ``version``; its room here, if any, follows."""
        room = self._by_scene.get(scene_id)
        if room is not None:
            room.log_moved(version)

    def scene_ids(self) -> list[UUID]:
        """The scenes whose rooms are loaded or loading on this node."""
        return list(self._by_scene)

    def stats(self) -> list[RoomStats]:
        return [room.stats() for room in self._rooms.values()]

    def stop_all(self) -> None:
        for project_id in list(self._rooms):
            self._unload(project_id)

    def _schedule_unload(self, room: SceneRoom) -> None:
        self._cancel_unload(room.project_id)
        loop = asyncio.get_running_loop()
        self._unloads[room.project_id] = loop.call_later(
            self._idle_unload_s, self._unload_if_idle, room.project_id)

    def _cancel_unload(self, project_id: UUID) -> None:
        handle = self._unloads.pop(project_id, None)
        if handle is not None:
            handle.cancel()

    def _unload_if_idle(self, project_id: UUID) -> None:
        self._unloads.pop(project_id, None)
        room = self._rooms.get(project_id)
        if room is not None and not room.peers:
            self._unload(project_id)

    def _unload(self, project_id: UUID) -> None:
        room = self._rooms.pop(project_id, None)
        if room is not None:
            self._by_scene.pop(Scene.create_id(str(project_id)), None)
            room.stop()
            log.info("unloaded idle room %s", project_id)
