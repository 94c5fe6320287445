"""What generation costs and what the dedup cache saves, per backend and day.

Two tables, both fed only by ``Job`` events, so the figures can be dropped and rebuilt from the
log like any read model:

- ``rm_generation_jobs``: one row per ``generate`` job that ran or was asked to run, with the
  device seconds and peak memory its workers reported in the stage events;
- ``rm_generation_reuses``: one row per request answered by an existing job's results
  (``Job.ReuseRequested``, or ``Job.Reused`` as stored before): a cache hit on a finished job
  or a single-flight join of a running one. Its ``job_id`` is the reused job's.

Saved GPU seconds are worked out when read (a reuse saved what its job cost), not when the
reuse is recorded: a request that joins a running job saves a cost nobody knows yet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import singledispatchmethod
from numbers import Real
from typing import Any

from core.events.job import Job, JobState
from core.events.job_kinds import GENERATE
from core.projections.readmodel import ReadModel, Statement


class GenerationStatsReadModel(ReadModel):
    name = "generation_stats"
    tables = ("rm_generation_jobs", "rm_generation_reuses")
    create_sql = (
        "CREATE TABLE IF NOT EXISTS rm_generation_jobs ("
        " job_id uuid PRIMARY KEY, project_id uuid NOT NULL, backend text NOT NULL,"
        " day date NOT NULL, requested_at timestamptz NOT NULL, state text NOT NULL,"
        " stages int NOT NULL DEFAULT 0, gpu_seconds double precision NOT NULL DEFAULT 0,"
        " peak_memory_bytes bigint, device text)",
        "CREATE INDEX IF NOT EXISTS rm_generation_jobs_day ON rm_generation_jobs (day)",
        "CREATE TABLE IF NOT EXISTS rm_generation_reuses ("
        " position bigint PRIMARY KEY, job_id uuid NOT NULL, project_id uuid NOT NULL,"
        " how text NOT NULL, actor text NOT NULL, day date NOT NULL,"
        " at timestamptz NOT NULL)",
        "CREATE INDEX IF NOT EXISTS rm_generation_reuses_day ON rm_generation_reuses (day)",
    )

    @singledispatchmethod
    def statements(self, event: Any, position: int) -> list[Statement]:
        return []

    @statements.register
    def _(self, e: Job.Requested, position: int) -> list[Statement]:
        if e.kind != GENERATE:
            return []
        return [(
            "INSERT INTO rm_generation_jobs (job_id, project_id, backend, day, requested_at,"
            " state) VALUES (%(id)s, %(project)s, %(backend)s, %(day)s, %(at)s, %(state)s)",
            {"id": e.originator_id, "project": e.project_id,
             "backend": str(_mapping(e.params).get("backend") or "inflate"),
             "day": e.timestamp.date(), "at": e.timestamp, "state": JobState.REQUESTED.value},
        )]

    @statements.register
    def _(self, e: Job.StageCompleted, position: int) -> list[Statement]:
        # Jobs of other kinds have no row here, so the update leaves them out by itself.
        stats = _mapping(e.stats)
        peak = _number(stats.get("peak_memory_bytes"))
        device = stats.get("device")
        return [(
            "UPDATE rm_generation_jobs SET stages = stages + 1,"
            " gpu_seconds = gpu_seconds + %(seconds)s,"
            " peak_memory_bytes = GREATEST(peak_memory_bytes, %(peak)s),"
            " device = coalesce(%(device)s, device) WHERE job_id = %(id)s",
            {"id": e.originator_id, "seconds": _number(stats.get("seconds")) or 0.0,
             "peak": None if peak is None or not 0 <= peak < 2**63 else int(peak),
             "device": device if isinstance(device, str) else None},
        )]

    @statements.register
    def _(self, e: Job.Started, position: int) -> list[Statement]:
        return [_state(e, JobState.STARTED)]

    @statements.register
    def _(self, e: Job.Succeeded, position: int) -> list[Statement]:
        return [_state(e, JobState.SUCCEEDED)]

    @statements.register
    def _(self, e: Job.Failed, position: int) -> list[Statement]:
        return [_state(e, JobState.FAILED)]

    @statements.register
    def _(self, e: Job.Cancelled, position: int) -> list[Statement]:
        return [_state(e, JobState.CANCELLED)]

    @statements.register
    def _(self, e: Job.ReuseRequested, position: int) -> list[Statement]:
        """A request answered by another job's results: a hit or join on that job (the
        cost it saved is that job's), counted for the requesting project."""
        if e.kind != GENERATE:
            return []
        return [(
            "INSERT INTO rm_generation_reuses (position, job_id, project_id, how, actor, day,"
            " at) VALUES (%(position)s, %(id)s, %(project)s, %(how)s, %(actor)s, %(day)s,"
            " %(at)s)",
            {"position": position, "id": e.reused_from, "project": e.project_id,
             "how": e.how, "actor": e.actor, "day": e.timestamp.date(), "at": e.timestamp},
        )]

    @statements.register
    def _(self, e: Job.Reused, position: int) -> list[Statement]:
        """The same, as stored before reuses made jobs of their own (on the reused job)."""
        return [(
            "INSERT INTO rm_generation_reuses (position, job_id, project_id, how, actor, day,"
            " at) VALUES (%(position)s, %(id)s, %(project)s, %(how)s, %(actor)s, %(day)s,"
            " %(at)s)",
            {"position": position, "id": e.originator_id, "project": e.project_id,
             "how": e.how, "actor": e.actor, "day": e.timestamp.date(), "at": e.timestamp},
        )]


def _state(e: Any, state: JobState) -> Statement:
    return ("UPDATE rm_generation_jobs SET state = %(state)s WHERE job_id = %(id)s",
            {"id": e.originator_id, "state": state.value})


def _number(value: object) -> float | None:
    """A stats figure as a float; None for anything else, infinities and NaN included
    (stats are the workers' free-form report, and an odd value must not stop the projection
    nor turn a sum into infinity)."""
    if isinstance(value, Real) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an int beyond a float's range
            return None
        return number if math.isfinite(number) else None
    return None


def _mapping(value: object) -> Mapping[str, Any]:
    """A free-form dict of an event as stored; an empty one where it holds something else."""
    return value if isinstance(value, Mapping) else {}
