"""Reads of the read models for the API (async, one short query each).

Read models follow the log a few milliseconds behind the writer. A client that creates
something and at once asks for it must still find it, so lookups by id that miss wait, briefly
and only while the projections are behind, for them to catch up (read-your-writes).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.errors import UndefinedTable
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from core.projections.registry import EVENTS_TABLE, READ_MODEL_NAMES, TRACKING_TABLE

CATCH_UP_TIMEOUT_S = 3.0


class ReadModels:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def positions(self) -> dict[str, int]:
        """Each read model's position in the log, and the log's own head (``"log"``)."""
        query = sql.SQL(
            "SELECT 'log' AS name, coalesce(max(notification_id), 0) AS position FROM {}"
            " UNION ALL SELECT name, position FROM {}"
        ).format(sql.Identifier(EVENTS_TABLE), sql.Identifier(TRACKING_TABLE))
        try:
            rows = await self._fetchall(query)
        except UndefinedTable:  # nothing has run yet
            return {"log": 0} | {name: 0 for name in READ_MODEL_NAMES}
        found = {row["name"]: row["position"] for row in rows}
        return {"log": found["log"]} | {name: found.get(name, 0) for name in READ_MODEL_NAMES}

    async def lag(self) -> dict[str, int]:
        positions = await self.positions()
        head = positions.pop("log")
        return {name: head - pos for name, pos in positions.items()}

    async def caught_up(self, timeout: float = CATCH_UP_TIMEOUT_S) -> bool:
        """Wait until every read model has reached the log head as it is now."""
        deadline = time.monotonic() + timeout
        target = (await self.positions())["log"]
        while True:
            positions = await self.positions()
            positions.pop("log")
            if all(p >= target for p in positions.values()):
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)

    # -- lookups ----------------------------------------------------------------------------

    async def project(self, project_id: UUID) -> dict[str, Any] | None:
        return await self._fresh(
            "SELECT * FROM rm_projects WHERE id = %s AND NOT deleted", project_id
        )

    async def projects_of(
        self, user_id: str, *, all_projects: bool = False
    ) -> list[dict[str, Any]]:
        if all_projects:
            return await self._fetchall(
                "SELECT p.*, NULL AS role FROM rm_projects p WHERE NOT p.deleted"
                " ORDER BY p.updated_at DESC"
            )
        return await self._fetchall(
            "SELECT p.*, m.role FROM rm_projects p JOIN rm_members m ON m.project_id = p.id"
            " WHERE m.user_id = %s AND NOT p.deleted ORDER BY p.updated_at DESC",
            user_id,
        )

    async def members(self, project_id: UUID) -> list[dict[str, Any]]:
        return await self._fetchall(
            "SELECT user_id, role, since FROM rm_members WHERE project_id = %s ORDER BY since",
            project_id,
        )

    async def asset(self, asset_id: UUID) -> dict[str, Any] | None:
        return await self._fresh("SELECT * FROM rm_assets WHERE asset_id = %s", asset_id)

    async def assets_of(self, project_id: UUID) -> list[dict[str, Any]]:
        return await self._fetchall(
            "SELECT * FROM rm_assets WHERE project_id = %s ORDER BY uploaded_at", project_id
        )

    async def job(self, job_id: UUID) -> dict[str, Any] | None:
        return await self._fresh("SELECT * FROM rm_jobs WHERE id = %s", job_id)

    async def mesh_analysis(self, asset_id: UUID) -> dict[str, Any] | None:
        return await self._fetchone(
            "SELECT * FROM rm_mesh_analyses WHERE asset_id = %s", asset_id
        )

    async def latest_job(self, kind: str, asset_id: UUID) -> dict[str, Any] | None:
        return await self._fetchone(
            "SELECT * FROM rm_jobs WHERE kind = %s AND inputs->>'asset_id' = %s"
            " ORDER BY requested_at DESC LIMIT 1",
            kind, str(asset_id),
        )

    async def versions(self, project_id: UUID) -> list[dict[str, Any]]:
        return await self._fetchall(
            "SELECT * FROM rm_versions WHERE project_id = %s ORDER BY tagged_at_position",
            project_id,
        )

    async def timeline(self, project_id: UUID, after: int, limit: int) -> list[dict[str, Any]]:
        return await self._fetchall(
            "SELECT position, at, actor, kind, summary FROM rm_timeline"
            " WHERE project_id = %s AND position > %s ORDER BY position LIMIT %s",
            project_id, after, limit,
        )

    async def format_of_blob(self, blob_key: str) -> str | None:
        """The file format an uploaded blob was stored as (None for generated ones)."""
        row = await self._fetchone(
            "SELECT filename FROM rm_assets WHERE blob_key = %s LIMIT 1", blob_key)
        return None if row is None else str(row["filename"]).rsplit(".", 1)[-1].lower()

    async def job_by_cache_key(self, cache_key: str) -> dict[str, Any] | None:
        """The newest job with these exact inputs that succeeded, or is still running."""
        return await self._fetchone(
            "SELECT * FROM rm_jobs WHERE cache_key = %s AND state IN"
            " ('succeeded', 'requested', 'started') ORDER BY (state = 'succeeded') DESC,"
            " requested_at DESC LIMIT 1",
            cache_key,
        )

    async def queue_position(self, kind: str, requested_at: Any) -> int:
        row = await self._fetchone(
            "SELECT count(*) AS ahead FROM rm_jobs WHERE kind = %s AND state = 'requested'"
            " AND requested_at < %s", kind, requested_at)
        return int(row["ahead"]) if row else 0

    # -- plumbing ---------------------------------------------------------------------------

    async def _fresh(self, query: str, *params: Any) -> dict[str, Any] | None:
        row = await self._fetchone(query, *params)
        if row is None and await self.caught_up():
            row = await self._fetchone(query, *params)
        return row

    async def _fetchone(self, query: Any, *params: Any) -> dict[str, Any] | None:
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(query, params)
            return await cur.fetchone()

    async def _fetchall(self, query: Any, *params: Any) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(query, params)
            return await cur.fetchall()
