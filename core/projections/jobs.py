"""Jobs with their stages, and the latest analysis of each mesh asset."""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any

from psycopg.types.json import Jsonb

from core.events.job import Job, JobState
from core.events.job_kinds import MESH_ANALYSE
from core.projections.readmodel import ReadModel, Statement, object_ids


class JobsReadModel(ReadModel):
    name = "jobs"
    tables = ("rm_jobs", "rm_mesh_analyses")
    create_sql = (
        "CREATE TABLE IF NOT EXISTS rm_jobs ("
        " id uuid PRIMARY KEY, project_id uuid NOT NULL, kind text NOT NULL,"
        " state text NOT NULL, inputs jsonb NOT NULL, params jsonb NOT NULL,"
        " cache_key text NOT NULL, requested_by text NOT NULL,"
        " requested_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
        " worker text, device text, attempts int NOT NULL DEFAULT 0,"
        " stages jsonb NOT NULL DEFAULT '{}'::jsonb, result jsonb, error text,"
        " scene_objects text[] NOT NULL DEFAULT '{}', undone boolean NOT NULL DEFAULT false)",
        "CREATE INDEX IF NOT EXISTS rm_jobs_project ON rm_jobs (project_id, requested_at)",
        "CREATE TABLE IF NOT EXISTS rm_mesh_analyses ("
        " asset_id uuid PRIMARY KEY, job_id uuid NOT NULL, stats jsonb NOT NULL,"
        " analysed_at timestamptz NOT NULL)",
    )

    @singledispatchmethod
    def statements(self, event: Any, position: int) -> list[Statement]:
        return []

    @statements.register
    def _(self, e: Job.Requested, position: int) -> list[Statement]:
        return [_requested(e, e.cache_key)]

    @statements.register
    def _(self, e: Job.ReuseRequested, position: int) -> list[Statement]:
        # No cache key: a reuse job holds none of the cache's entries (its results are
        # another job's), so the cache never answers with it and no TTL restarts with it.
        return [_requested(e, "")]

    @statements.register
    def _(self, e: Job.Started, position: int) -> list[Statement]:
        return [_update(e, "state = %(state)s, worker = %(worker)s, device = %(device)s,"
                           " attempts = attempts + 1",
                        state=JobState.STARTED.value, worker=e.worker, device=e.device)]

    @statements.register
    def _(self, e: Job.StageCompleted, position: int) -> list[Statement]:
        stage = {"blob": e.blob, "stats": e.stats, "at": e.timestamp.isoformat()}
        return [_update(e, "stages = stages || %(stage)s", stage=Jsonb({e.stage: stage}))]

    @statements.register
    def _(self, e: Job.Succeeded, position: int) -> list[Statement]:
        return [
            _update(e, "state = %(state)s, result = %(result)s",
                    state=JobState.SUCCEEDED.value, result=Jsonb(e.result)),
            (
                # The analysis read model keys by asset; the job's kind and input say which
                # (an input that is no asset id, stored before the edge checked it, has none).
                "INSERT INTO rm_mesh_analyses (asset_id, job_id, stats, analysed_at)"
                " SELECT (inputs->>'asset_id')::uuid, id, %(result)s, %(at)s FROM rm_jobs"
                " WHERE id = %(id)s AND kind = %(kind)s AND inputs->>'asset_id' ~*"
                " '^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$'"
                " ON CONFLICT (asset_id) DO UPDATE SET job_id = EXCLUDED.job_id,"
                " stats = EXCLUDED.stats, analysed_at = EXCLUDED.analysed_at",
                {"id": e.originator_id, "result": Jsonb(e.result), "at": e.timestamp,
                 "kind": MESH_ANALYSE},
            ),
        ]

    @statements.register
    def _(self, e: Job.Failed, position: int) -> list[Statement]:
        return [_update(e, "state = %(state)s, error = %(reason)s",
                        state=JobState.FAILED.value, reason=e.reason)]

    @statements.register
    def _(self, e: Job.Cancelled, position: int) -> list[Statement]:
        return [_update(e, "state = %(state)s", state=JobState.CANCELLED.value)]

    @statements.register
    def _(self, e: Job.SceneChanged, position: int) -> list[Statement]:
        return [_update(e, "scene_objects = ARRAY(SELECT DISTINCT unnest(scene_objects"
                           " || %(objects)s::text[]) ORDER BY 1)", objects=object_ids(e.after))]

    @statements.register
    def _(self, e: Job.Undone, position: int) -> list[Statement]:
        return [_update(e, "undone = true")]


def _update(e: Any, assignments: str, **params: Any) -> Statement:
    return (
        f"UPDATE rm_jobs SET {assignments}, updated_at = %(at)s WHERE id = %(id)s",
        {"id": e.originator_id, "at": e.timestamp, **params},
    )


def _requested(e: Job.Requested | Job.ReuseRequested, cache_key: str) -> Statement:
    """A job's row as it is asked for: the same for a run and for a reuse of one's results."""
    return (
        "INSERT INTO rm_jobs (id, project_id, kind, state, inputs, params, cache_key,"
        " requested_by, requested_at, updated_at) VALUES (%(id)s, %(project)s, %(kind)s,"
        " %(state)s, %(inputs)s, %(params)s, %(key)s, %(actor)s, %(at)s, %(at)s)",
        {
            "id": e.originator_id, "project": e.project_id, "kind": e.kind,
            "state": JobState.REQUESTED.value, "inputs": Jsonb(e.inputs),
            "params": Jsonb(e.params), "key": cache_key, "actor": e.actor,
            "at": e.timestamp,
        },
    )
