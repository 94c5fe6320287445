"""What the assistant reads from the read models: one short query each, no geometry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from core.projections.analytics_queries import trends_async
from core.projections.queries import ReadModels

SIMILAR_CANDIDATES = 2000  # newest analysed meshes compared, so one answer's work is bounded
TREND_WEEKS = 4
CHANGES_SHOWN = 5
TIMELINE_LINES = 500  # counted since a version; the answer shows the last few
MESSAGE_COLUMNS = (
    "SELECT m.id, m.project_id, m.asset_id, m.position, m.asked_by,"
    " u.username AS asked_by_name, m.at, m.question, m.intent, m.answer, m.facts,"
    " m.similar_designs AS similar, m.phrased_by FROM rm_assistant_messages m"
    " LEFT JOIN accounts_users u ON u.id::text = m.asked_by"
)


class AssistantReads:
    def __init__(self, pool: AsyncConnectionPool, read_models: ReadModels) -> None:
        self._pool = pool
        self._read_models = read_models

    async def timeline_since(self, project_id: UUID, position: int) -> list[dict[str, Any]]:
        """The project's timeline after ``position`` in words (the history page's lines)."""
        return await self._read_models.timeline(project_id, position, TIMELINE_LINES)

    async def _all(self, query: str, *params: Any) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            return await cur.fetchall()

    async def _one(self, query: str, *params: Any) -> dict[str, Any] | None:
        rows = await self._all(query, *params)
        return rows[0] if rows else None

    async def latest_mesh(self, project_id: UUID) -> dict[str, Any] | None:
        """The project's newest mesh: what a question names no mesh is about."""
        return await self._one(
            "SELECT * FROM rm_assets WHERE project_id = %s AND kind = 'mesh'"
            " ORDER BY uploaded_at DESC, asset_id LIMIT 1", project_id)

    async def object_showing(self, project_id: UUID, asset_id: UUID) -> str | None:
        """The scene object that shows the mesh (the first by id where several do)."""
        row = await self._one(
            "SELECT object_id FROM rm_scene_objects WHERE project_id = %s AND asset = %s"
            " ORDER BY object_id LIMIT 1", project_id, str(asset_id))
        return str(row["object_id"]) if row else None

    async def analysis(self, asset_id: UUID) -> dict[str, Any] | None:
        return await self._one(
            "SELECT asset_id, job_id, stats, analysed_at FROM rm_mesh_analyses"
            " WHERE asset_id = %s", asset_id)

    async def version_named(self, project_id: UUID, subject: str | None
                            ) -> tuple[dict[str, Any] | None, list[str]]:
        """The version whose message is ``subject`` (exactly, else containing it; the
        newest such), or the newest version where no subject is given; with every
        version's message, oldest first."""
        versions = await self._all(
            "SELECT version_id, message, position, tagged_at_position FROM rm_versions"
            " WHERE project_id = %s ORDER BY tagged_at_position", project_id)
        if subject is None:
            return (versions[-1] if versions else None), [v["message"] for v in versions]
        wanted = subject.casefold()
        exact = [v for v in versions if v["message"].casefold() == wanted]
        near = [v for v in versions if wanted in v["message"].casefold()]
        found = (exact or near)[-1] if exact or near else None
        return found, [v["message"] for v in versions]

    async def object_changes(self, project_id: UUID, name: str) -> list[dict[str, Any]]:
        """The newest edits of scene objects named like ``name`` (their name then or now),
        with who made each, its time and its timeline line."""
        pattern = "%" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return await self._all(
            "SELECT coalesce(h.value::jsonb->>'name', o.name, h.key) AS name, h.key AS object_id,"
            " t.actor, u.username AS actor_name, t.at, t.summary, t.position"
            " FROM rm_scene_history h"
            " JOIN rm_timeline t ON t.position = h.from_position"
            " LEFT JOIN rm_scene_objects o ON o.project_id = h.project_id AND o.object_id = h.key"
            " LEFT JOIN accounts_users u ON u.id::text = t.actor"
            " WHERE h.project_id = %s AND h.root = 'objects' AND h.key IN ("
            "  SELECT DISTINCT key FROM rm_scene_history WHERE project_id = %s"
            "  AND root = 'objects' AND value::jsonb->>'name' ILIKE %s)"
            " ORDER BY t.position DESC LIMIT %s",
            project_id, project_id, pattern, CHANGES_SHOWN)

    async def visible_shapes(self, user: str, exclude: UUID) -> list[dict[str, Any]]:
        """Analysed meshes in the projects ``user`` is a member of (never anyone else's),
        with their shape descriptors, newest analyses first."""
        return await self._all(
            "SELECT a.asset_id, a.project_id, p.name AS project_name, a.filename,"
            " CASE WHEN ma.stats ? 'thumbnail' THEN '/api/v1/meshes/' || a.asset_id"
            " || '/thumbnail' END AS thumbnail_url, ma.stats->'shape' AS shape"
            " FROM rm_mesh_analyses ma JOIN rm_assets a ON a.asset_id = ma.asset_id"
            " JOIN rm_projects p ON p.id = a.project_id AND NOT p.deleted"
            " JOIN rm_members m ON m.project_id = a.project_id AND m.user_id = %s"
            " WHERE a.asset_id <> %s AND ma.stats ? 'shape'"
            " ORDER BY ma.analysed_at DESC LIMIT %s",
            user, exclude, SIMILAR_CANDIDATES)

    async def trends(self, weeks: int = TREND_WEEKS) -> list[dict[str, Any]]:
        """The styles, materials and generators used most over the last ``weeks`` weeks,
        from the platform analytics read model (names and counts only: no project is named),
        most used first within each category."""
        async with self._pool.connection() as conn:
            found = await trends_async(conn, weeks=weeks)
        return [{"category": category, "name": name, "uses": uses, "source": "analytics"}
                for category, key in (("style", "styles"), ("material", "materials"),
                                      ("generator", "generators"))
                for name, uses in found[key]]

    async def messages(self, project_id: UUID, after: int, limit: int) -> list[dict[str, Any]]:
        return await self._all(
            MESSAGE_COLUMNS + " WHERE m.project_id = %s AND m.position > %s"
            " AND m.intent IS NOT NULL ORDER BY m.position LIMIT %s",
            project_id, after, limit)

    async def message(self, message_id: UUID) -> dict[str, Any] | None:
        return await self._one(MESSAGE_COLUMNS + " WHERE m.id = %s", message_id)

    async def suggestions_of(self, message_ids: list[UUID]) -> list[dict[str, Any]]:
        return await self._all(
            "SELECT s.id, s.message_id, s.project_id, s.body, s.job_id, m.asset_id,"
            " j.state AS job_state, j.result AS job_result"
            " FROM rm_assistant_suggestions s JOIN rm_assistant_messages m ON m.id = s.message_id"
            " LEFT JOIN rm_jobs j ON j.id = s.job_id"
            " WHERE s.message_id = ANY(%s) ORDER BY s.message_id, s.ordinal", message_ids)

    async def suggestion(self, project_id: UUID, suggestion_id: str) -> dict[str, Any] | None:
        return await self._one(
            "SELECT s.id, s.message_id, s.project_id, s.body, s.job_id, m.asset_id,"
            " j.state AS job_state, j.result AS job_result"
            " FROM rm_assistant_suggestions s JOIN rm_assistant_messages m ON m.id = s.message_id"
            " LEFT JOIN rm_jobs j ON j.id = s.job_id"
            " WHERE s.id = %s AND s.project_id = %s", suggestion_id, project_id)

    async def made_analyses(self, rows: Sequence[Mapping[str, Any]]
                            ) -> dict[str, dict[str, Any]]:
        """The analyses of the meshes the suggestions' jobs made, by mesh id."""
        made = [str(m) for row in rows if (m := made_mesh(row)) is not None]
        if not made:
            return {}
        found = await self._all(
            "SELECT asset_id::text AS asset_id, stats FROM rm_mesh_analyses"
            " WHERE asset_id::text = ANY(%s)", made)
        return {row["asset_id"]: row["stats"] for row in found}


def made_mesh(row: Mapping[str, Any]) -> str | None:
    """The mesh a suggestion's job made, from the job's result."""
    result = row.get("job_result")
    mesh = result.get("mesh") if isinstance(result, Mapping) else None
    made = mesh.get("asset_id") if isinstance(mesh, Mapping) else None
    return str(made) if made else None
