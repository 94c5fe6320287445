"""Reads of the read models for the API (async, one short query each).

Read models follow the log a few milliseconds behind the writer. A client that creates
something and at once asks for it must still find it, so lookups by id that miss wait, briefly
and only while the projections are behind, for them to catch up (read-your-writes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import date
from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.errors import UndefinedTable
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from core.events.job_kinds import MESH_MATERIAL
from core.projections import timeline_lines
from core.projections.registry import EVENTS_TABLE, READ_MODEL_NAMES, TRACKING_TABLE
from core.projections.scene_objects import SCENE_AT, scene_from_rows

CATCH_UP_TIMEOUT_S = 3.0
MAX_LINEAGE = 64  # meshes made from meshes followed up to a material


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

    async def caught_up(self, timeout: float = CATCH_UP_TIMEOUT_S,
                        names: Iterable[str] | None = None) -> bool:
        """Wait until every read model (or the ``names``d ones) has reached the log head as
        it is now."""
        deadline = time.monotonic() + timeout
        target = (await self.positions())["log"]
        wanted = set(READ_MODEL_NAMES if names is None else names)
        while True:
            positions = await self.positions()
            if all(p >= target for name, p in positions.items() if name in wanted):
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)

    async def quarantined_counts(self) -> dict[str, int]:
        """How many events each read model has quarantined (models with none left out)."""
        try:
            rows = await self._fetchall(
                "SELECT model, count(*) AS events FROM rm_quarantine GROUP BY model")
        except UndefinedTable:  # the runner has not created it yet
            return {}
        return {row["model"]: int(row["events"]) for row in rows}

    async def quarantined(self, limit: int, model: str | None = None) -> list[dict[str, Any]]:
        """The newest quarantined events (of one model, or of all), newest first."""
        try:
            return await self._fetchall(
                "SELECT model, position, originator_id, originator_version, topic, error,"
                " quarantined_at, attempts, last_tried_at FROM rm_quarantine"
                " WHERE %(model)s::text IS NULL OR model = %(model)s"
                " ORDER BY quarantined_at DESC, position DESC LIMIT %(limit)s",
                {"model": model, "limit": limit})
        except UndefinedTable:
            return []

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
        return await self._fresh(
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
        """A page of the timeline in words: who by name (joined here, so a renamed account
        reads as it is named now) and what each scene edit changed
        (:mod:`core.projections.timeline_lines`)."""
        rows = await self._fetchall(
            "SELECT t.position, t.at, t.actor, u.username AS actor_name, t.kind, t.summary"
            " FROM rm_timeline t LEFT JOIN accounts_users u ON u.id::text = t.actor"
            " WHERE t.project_id = %s AND t.position > %s ORDER BY t.position LIMIT %s",
            project_id, after, limit,
        )
        edits = [row["position"] for row in rows if row["kind"] == timeline_lines.SCENE_EDIT]
        changes = await self._fetchall(timeline_lines.SCENE_CHANGES, project_id, edits) \
            if edits else []
        members = timeline_lines.member_ids(rows)
        usernames = {row["id"]: row["username"] for row in await self._fetchall(
            "SELECT id::text AS id, username FROM accounts_users WHERE id::text = ANY(%s)",
            members)} if members else {}
        versions = timeline_lines.reverted_versions(rows)
        messages = {row["id"]: row["message"] for row in await self._fetchall(
            "SELECT version_id::text AS id, message FROM rm_versions"
            " WHERE version_id::text = ANY(%s)", versions)} if versions else {}
        return timeline_lines.named_versions(timeline_lines.named_members(
            timeline_lines.readable(rows, changes), usernames), messages)

    async def worn_material(self, asset_id: UUID) -> dict[str, Any] | None:
        """The parameters of the material job nearest up a mesh's lineage (the mesh itself, or
        the mesh it was made from, and so on): what a later repair, style or optimise makes
        again on its result, so that chained operations keep the look. None if none."""
        row = await self._fetchone(
            "WITH RECURSIVE lineage AS ("
            " SELECT source_asset_id, job_id, operation, 0 AS depth FROM rm_assets"
            " WHERE asset_id = %(asset)s"
            " UNION ALL SELECT a.source_asset_id, a.job_id, a.operation, l.depth + 1"
            " FROM rm_assets a JOIN lineage l ON a.asset_id = l.source_asset_id"
            " WHERE l.depth < %(deepest)s)"
            " SELECT j.params FROM lineage l JOIN rm_jobs j ON j.id = l.job_id"
            " WHERE l.operation = %(material)s AND j.state = 'succeeded'"
            " ORDER BY l.depth LIMIT 1",
            {"asset": asset_id, "deepest": MAX_LINEAGE, "material": MESH_MATERIAL})
        return None if row is None else dict(row["params"])

    async def format_of_blob(self, blob_key: str) -> str | None:
        """The file format an uploaded blob was stored as (None for generated ones)."""
        row = await self._fetchone(
            "SELECT filename FROM rm_assets WHERE blob_key = %s LIMIT 1", blob_key)
        return None if row is None else str(row["filename"]).rsplit(".", 1)[-1].lower()

    async def job_by_cache_key(self, cache_key: str, *, max_age_s: float | None = None,
                               version: str | None = None) -> dict[str, Any] | None:
        """The newest job with these exact inputs that is still queued or running, or that
        succeeded; a finished one only if requested less than ``max_age_s`` seconds ago and,
        when ``version`` is given, made by that version of its generator (its result says
        which), so that cached results expire with time and with a new generator release.
        """
        return await self._fetchone(
            "SELECT * FROM rm_jobs WHERE cache_key = %(key)s AND (state IN"
            " ('requested', 'started') OR (state = 'succeeded'"
            " AND (%(age)s::float8 IS NULL OR requested_at > now() - make_interval("
            "secs => %(age)s::float8))"
            " AND (%(version)s::text IS NULL OR result->>'backend_version' = %(version)s)))"
            " ORDER BY (state = 'succeeded') DESC, requested_at DESC LIMIT 1",
            {"key": cache_key, "age": max_age_s, "version": version},
        )

    async def generation_stats(self, first_day: date, last_day: date) -> list[dict[str, Any]]:
        """Per day and backend: requests, the jobs they ran, cache hits and single-flight
        joins, GPU seconds used and saved, and the largest peak memory of a job.

        A reuse saved the GPU seconds of the job it reused, once that job succeeded (a
        joined job that failed saved nothing); it counts on the day of the reuse.
        """
        return await self._fetchall(
            "WITH ran AS ("
            "  SELECT day, backend, count(*) AS jobs, sum(gpu_seconds) AS gpu_seconds,"
            "   count(*) FILTER (WHERE state = 'succeeded') AS succeeded,"
            "   count(*) FILTER (WHERE state = 'failed') AS failed,"
            "   max(peak_memory_bytes) AS max_peak_memory_bytes"
            "  FROM rm_generation_jobs WHERE day BETWEEN %(first)s AND %(last)s"
            "  GROUP BY day, backend),"
            " reused AS ("
            "  SELECT r.day, j.backend,"
            "   count(*) FILTER (WHERE r.how = 'cache') AS cache_hits,"
            "   count(*) FILTER (WHERE r.how = 'single_flight') AS single_flight_joins,"
            "   coalesce(sum(j.gpu_seconds) FILTER (WHERE j.state = 'succeeded'), 0)"
            "    AS saved_gpu_seconds"
            "  FROM rm_generation_reuses r JOIN rm_generation_jobs j USING (job_id)"
            "  WHERE r.day BETWEEN %(first)s AND %(last)s GROUP BY r.day, j.backend)"
            " SELECT coalesce(ran.day, reused.day) AS day,"
            "  coalesce(ran.backend, reused.backend) AS backend,"
            "  coalesce(ran.jobs, 0) AS jobs, coalesce(ran.succeeded, 0) AS succeeded,"
            "  coalesce(ran.failed, 0) AS failed,"
            "  coalesce(reused.cache_hits, 0) AS cache_hits,"
            "  coalesce(reused.single_flight_joins, 0) AS single_flight_joins,"
            "  coalesce(ran.gpu_seconds, 0) AS gpu_seconds,"
            "  coalesce(reused.saved_gpu_seconds, 0) AS saved_gpu_seconds,"
            "  ran.max_peak_memory_bytes"
            " FROM ran FULL OUTER JOIN reused"
            "  ON ran.day = reused.day AND ran.backend = reused.backend"
            " ORDER BY 1, 2",
            {"first": first_day, "last": last_day},
        )

    async def queue_position(self, kind: str, requested_at: Any) -> int:
        row = await self._fetchone(
            "SELECT count(*) AS ahead FROM rm_jobs WHERE kind = %s AND state = 'requested'"
            " AND requested_at < %s", kind, requested_at)
        return int(row["ahead"]) if row else 0

    async def scene_at(self, project_id: UUID, position: int) -> dict[str, Any] | None:
        """A project's scene as it was at ``position`` (``document.snapshot``'s shape), from
        the scene history; None while that read model has not reached the position."""
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(SCENE_AT, {"project": project_id, "at": position},
                                         prepare=True)
                return scene_from_rows(await cur.fetchall(), position)
        except UndefinedTable:  # the runner has not created it yet
            return None

    # -- plumbing ---------------------------------------------------------------------------

    async def _fresh(self, query: str, *params: Any) -> dict[str, Any] | None:
        row = await self._fetchone(query, *params)
        if row is None and await self.caught_up():
            row = await self._fetchone(query, *params)
        return row

    async def _fetchone(self, query: Any, *params: Any) -> dict[str, Any] | None:
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(query, _bound(params))
            return await cur.fetchone()

    async def _fetchall(self, query: Any, *params: Any) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(query, _bound(params))
            return await cur.fetchall()


def _bound(params: tuple[Any, ...]) -> tuple[Any, ...] | dict[str, Any]:
    """Positional parameters as given, or one dict of named ones (``%(name)s``)."""
    if len(params) == 1 and isinstance(params[0], dict):
        named: dict[str, Any] = params[0]
        return named
    return params
