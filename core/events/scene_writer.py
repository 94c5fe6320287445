"""A live room's scene appends, made on the API's event loop.

Rooms are the scene log's busiest writers, and every edit waits for its append before anyone
else sees it. Handed to a thread, each append cost two thread wake-ups and the library's
per-save bookkeeping: on a machine that idles between edits, about half a millisecond of the
3 ms from one screen to the next (``python -m bench.collab``). Here the ``Scene`` aggregate
still records the events (the same size limits and compaction rule), the Studio's mapper still
encodes them and the Studio's recorder's statement still writes them, in one transaction that
takes the table lock, so the rows are those :meth:`Studio.append_scene_batch` writes, but on
an asynchronous connection from the API's pool. The one difference: compaction is a
transaction of its own, made after the edit that filled the tail has been sent.

The writer keeps the scene as its last append left it and never reads it back first: a room is
usually its scene's only writer. Where another writer got there first (an undo, a command, a
room on another node) the insert clashes on the version, and the writer reloads what is
stored and records the batch again on top of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from copy import deepcopy
from typing import Any, cast
from uuid import UUID

from psycopg import errors
from psycopg_pool import AsyncConnectionPool
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from core.errors import Conflict
from core.events.scene import Scene
from core.events.store import StudioRecorder
from core.events.studio import SceneAppend, Studio

ATTEMPTS = 8  # as the Studio's own commands


class SceneWriter:
    def __init__(self, studio: Studio, pool: AsyncConnectionPool[Any], project_id: UUID,
                 scene: Scene) -> None:
        self._studio = studio
        self._recorder = cast(StudioRecorder, studio.recorder)
        self._pool = pool
        self._project_id = project_id
        self._scene = scene

    @property
    def needs_compaction(self) -> bool:
        return self._scene.needs_compaction

    async def append(self, updates: Sequence[tuple[bytes, str, str]]) -> SceneAppend:
        """Store ``(update, actor, origin)`` entries as consecutive ``Scene.Updated`` events
        in one transaction. It never compacts: a compaction merges the whole document, and
        the edit that happens to fill the tail should not wait for it (see :meth:`compact`)."""
        def record(scene: Scene) -> None:
            for update, actor, origin in updates:
                scene.record(update, actor, origin)

        return await self._write(record)

    async def compact(self) -> SceneAppend:
        """Store a ``Scene.Compacted`` snapshot of the document (once the tail needs one; the
        room asks after it has sent the edit that filled the tail)."""
        def compact(scene: Scene) -> None:
            if scene.needs_compaction:
                scene.compact(actor="server")

        return await self._write(compact)

    async def _write(self, change: Callable[[Scene], None]) -> SceneAppend:
        # The usual case, nobody else wrote: no retry machinery on the way to the socket.
        with contextlib.suppress(errors.UniqueViolation):
            return await self._write_once(change)
        return await self._write_reloaded(change)

    async def _write_reloaded(self, change: Callable[[Scene], None]) -> SceneAppend:
        """Another writer took the version first: record again on what is stored."""
        with contextlib.suppress(errors.UniqueViolation):  # still clashing every time
            async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(errors.UniqueViolation),
                    stop=stop_after_attempt(ATTEMPTS - 1),
                    wait=wait_random_exponential(multiplier=0.005, max=0.2), reraise=True):
                with attempt:
                    self._scene = await asyncio.to_thread(self._studio.scene, self._project_id)
                    return await self._write_once(change)
        raise Conflict("the project is changing too fast; retry")

    async def _write_once(self, change: Callable[[Scene], None]) -> SceneAppend:
        scene = deepcopy(self._scene)  # changed on a copy: a failed insert leaves no trace
        first = scene.version + 1
        change(scene)
        stored = [self._studio.mapper.to_stored_event(e) for e in scene.collect_events()]
        if not stored:
            return SceneAppend(0, first, scene.version)
        # getconn/putconn rather than the pool's context: that also enters the connection's
        # own context, whose commit on exit is one more step on every edit's way, and the
        # connection is in autocommit mode (the statement is its own transaction).
        conn = await self._pool.getconn()
        try:
            positions = await self._recorder.insert_events_on(conn, stored)
        finally:
            await self._pool.putconn(conn)
        self._scene = scene
        return SceneAppend(positions[-1], first, scene.version)
