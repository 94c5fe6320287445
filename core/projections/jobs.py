"""Jobs with their stages, and the latest analysis of each mesh asset."""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from psycopg.types.json import Jsonb

from core.events.job import Job, JobState
from core.events.job_kinds import MESH_ANALYSE
from core.projections.view import ReadModelView, Statement


class JobsView(ReadModelView):
    tables = ("rm_jobs", "rm_mesh_analyses")
    create_sql = (
        "CREATE TABLE IF NOT EXISTS rm_jobs ("
        " id uuid PRIMARY KEY, project_id uuid NOT NULL, kind text NOT NULL,"
        " state text NOT NULL, inputs jsonb NOT NULL, params jsonb NOT NULL,"
        " cache_key text NOT NULL, requested_by text NOT NULL,"
        " requested_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
        " worker text, device text, attempts int NOT NULL DEFAULT 0,"
        " stages jsonb NOT NULL DEFAULT '{}'::jsonb, result jsonb, error text)",
        "CREATE INDEX IF NOT EXISTS rm_jobs_project ON rm_jobs (project_id, requested_at)",
        "CREATE TABLE IF NOT EXISTS rm_mesh_analyses ("
        " asset_id uuid PRIMARY KEY, job_id uuid NOT NULL, stats jsonb NOT NULL,"
        " analysed_at timestamptz NOT NULL)",
    )


class JobsProjection(Projection[JobsView]):
    name = "jobs"
    # No topic filter: every event advances the tracking position, so "caught up" and "lag"
    # compare with the head of the whole log.

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.apply(tracking, [])

    @process_event.register
    def _(self, e: Job.Requested, tracking: Tracking) -> None:
        self.view.apply(
            tracking,
            [
                (
                    "INSERT INTO rm_jobs (id, project_id, kind, state, inputs, params, cache_key,"
                    " requested_by, requested_at, updated_at) VALUES (%(id)s, %(project)s,"
                    " %(kind)s, %(state)s, %(inputs)s, %(params)s, %(key)s, %(actor)s, %(at)s,"
                    " %(at)s)",
                    {
                        "id": e.originator_id,
                        "project": e.project_id,
                        "kind": e.kind,
                        "state": JobState.REQUESTED.value,
                        "inputs": Jsonb(e.inputs),
                        "params": Jsonb(e.params),
                        "key": e.cache_key,
                        "actor": e.actor,
                        "at": e.timestamp,
                    },
                )
            ],
        )

    @process_event.register
    def _(self, e: Job.Started, tracking: Tracking) -> None:
        self.view.apply(
            tracking,
            [
                _update(
                    e,
                    "state = %(state)s, worker = %(worker)s, device = %(device)s,"
                    " attempts = attempts + 1",
                    state=JobState.STARTED.value,
                    worker=e.worker,
                    device=e.device,
                )
            ],
        )

    @process_event.register
    def _(self, e: Job.StageCompleted, tracking: Tracking) -> None:
        stage = {"blob": e.blob, "stats": e.stats, "at": e.timestamp.isoformat()}
        self.view.apply(
            tracking,
            [_update(e, "stages = stages || %(stage)s", stage=Jsonb({e.stage: stage}))],
        )

    @process_event.register
    def _(self, e: Job.Succeeded, tracking: Tracking) -> None:
        statements = [
            _update(e, "state = %(state)s, result = %(result)s",
                    state=JobState.SUCCEEDED.value, result=Jsonb(e.result)),
            (
                # The analysis read model keys by asset; the job's kind and input say which.
                "INSERT INTO rm_mesh_analyses (asset_id, job_id, stats, analysed_at)"
                " SELECT (inputs->>'asset_id')::uuid, id, %(result)s, %(at)s FROM rm_jobs"
                " WHERE id = %(id)s AND kind = %(kind)s"
                " ON CONFLICT (asset_id) DO UPDATE SET job_id = EXCLUDED.job_id,"
                " stats = EXCLUDED.stats, analysed_at = EXCLUDED.analysed_at",
                {"id": e.originator_id, "result": Jsonb(e.result), "at": e.timestamp,
                 "kind": MESH_ANALYSE},
            ),
        ]
        self.view.apply(tracking, statements)

    @process_event.register
    def _(self, e: Job.Failed, tracking: Tracking) -> None:
        self.view.apply(
            tracking,
            [_update(e, "state = %(state)s, error = %(reason)s",
                     state=JobState.FAILED.value, reason=e.reason)],
        )

    @process_event.register
    def _(self, e: Job.Cancelled, tracking: Tracking) -> None:
        self.view.apply(
            tracking, [_update(e, "state = %(state)s", state=JobState.CANCELLED.value)]
        )


def _update(e: Any, assignments: str, **params: Any) -> Statement:
    return (
        f"UPDATE rm_jobs SET {assignments}, updated_at = %(at)s WHERE id = %(id)s",
        {"id": e.originator_id, "at": e.timestamp, **params},
    )
