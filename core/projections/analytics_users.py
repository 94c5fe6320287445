"""Each user's use of the studio, per day: a period's figures are sums over its days.

Three tables: ``rm_au_counts`` (a user's counters of a day: what they made, asked for and
downloaded, and the time they spent in rooms), ``rm_au_choices`` (how often they chose each
generator, face budget, style, material and download format) and ``rm_au_shares`` (the
projects they invited someone to, per day, counted distinct over a period). ``rm_au_jobs``
remembers each generation's requester and request time, so that its end, which names only the
job, counts for them on the day they asked, with its duration.
"""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any

from core.events.activity import Activity
from core.events.job import Job
from core.events.job_kinds import GENERATE, MESH_MATERIAL, MESH_STYLE
from core.events.project import Project
from core.projections.analytics_facts import (
    ELAPSED_MS,
    JOB_COUNTS_FROM,
    Count,
    CounterModel,
    CounterTable,
    Fact,
    JobCount,
    Row,
    RowTable,
    day_of,
    is_user,
    key,
    mapping,
    milliseconds,
)

COUNTS = CounterTable(
    "rm_au_counts", (("user_id", "text"), ("day", "date")),
    ("projects_created", "generations", "generations_succeeded", "generations_failed",
     "generation_ms", "exports", "active_ms", "sessions", "sign_ins"))
CHOICES = CounterTable(
    "rm_au_choices", (("user_id", "text"), ("day", "date"), ("kind", "text"),
                      ("value", "text")), ("uses",))
CHOICE_KINDS = ("generator", "face_budget", "style", "material", "export_format")

JOBS = RowTable("rm_au_jobs", (("job_id", "uuid"), ("user_id", "text"), ("day", "date"),
                               ("requested_at", "timestamptz")))
SHARES = RowTable("rm_au_shares", (("user_id", "text"), ("project_id", "uuid"),
                                   ("day", "date")))


class UserAnalyticsReadModel(CounterModel):
    name = "analytics_users"
    tables = ("rm_au_counts", "rm_au_choices", "rm_au_shares", "rm_au_jobs")
    counters = (COUNTS, CHOICES)
    create_sql = (
        COUNTS.create_sql(),
        CHOICES.create_sql(),
        "CREATE TABLE IF NOT EXISTS rm_au_shares (user_id text NOT NULL, project_id uuid NOT"
        " NULL, day date NOT NULL, PRIMARY KEY (user_id, day, project_id))",
        "CREATE TABLE IF NOT EXISTS rm_au_jobs (job_id uuid PRIMARY KEY, user_id text NOT"
        " NULL, day date NOT NULL, requested_at timestamptz NOT NULL)",
    )
    job_counts_sql = (
        "INSERT INTO rm_au_counts (user_id, day, generations_succeeded, generations_failed,"
        " generation_ms) SELECT j.user_id, j.day,"
        " coalesce(sum(m.n) FILTER (WHERE m.col = 'generations_succeeded'), 0),"
        " coalesce(sum(m.n) FILTER (WHERE m.col = 'generations_failed'), 0),"
        f" coalesce(sum({ELAPSED_MS}) FILTER (WHERE m.col = 'generation_ms'), 0)"
        + JOB_COUNTS_FROM.format(jobs="rm_au_jobs") +
        " GROUP BY j.user_id, j.day ON CONFLICT (user_id, day) DO UPDATE SET"
        " generations_succeeded = rm_au_counts.generations_succeeded"
        " + EXCLUDED.generations_succeeded,"
        " generations_failed = rm_au_counts.generations_failed + EXCLUDED.generations_failed,"
        " generation_ms = rm_au_counts.generation_ms + EXCLUDED.generation_ms")

    @singledispatchmethod
    def facts(self, event: Any, position: int) -> list[Fact]:
        return []

    @facts.register
    def _(self, e: Project.Created, position: int) -> list[Fact]:
        return _count(e.actor, e, "projects_created")

    @facts.register
    def _(self, e: Project.MemberInvited, position: int) -> list[Fact]:
        if not is_user(e.actor):
            return []
        return [Row(SHARES, (e.actor, e.originator_id, day_of(e.timestamp)))]

    @facts.register
    def _(self, e: Job.Requested, position: int) -> list[Fact]:
        return self._requested(e)

    @facts.register
    def _(self, e: Job.ReuseRequested, position: int) -> list[Fact]:
        return self._requested(e)

    def _requested(self, e: Job.Requested | Job.ReuseRequested) -> list[Fact]:
        if not is_user(e.actor):
            return []
        params = mapping(e.params)
        if e.kind == GENERATE:
            day = day_of(e.timestamp)
            return [Row(JOBS, (e.originator_id, e.actor, day, e.timestamp)),
                    *_count(e.actor, e, "generations"),
                    *_choice(e.actor, e, "generator", key(params.get("backend")) or "inflate"),
                    *_choice(e.actor, e, "face_budget", key(params.get("face_budget")))]
        if e.kind == MESH_STYLE:
            return _choice(e.actor, e, "style", key(params.get("style")))
        if e.kind == MESH_MATERIAL:
            return _choice(e.actor, e, "material", key(params.get("material")))
        return []

    @facts.register
    def _(self, e: Job.Succeeded, position: int) -> list[Fact]:
        return [JobCount(e.originator_id, "generations_succeeded"),
                JobCount(e.originator_id, "generation_ms", at=e.timestamp)]

    @facts.register
    def _(self, e: Job.Failed, position: int) -> list[Fact]:
        return [JobCount(e.originator_id, "generations_failed")]

    @facts.register
    def _(self, e: Activity.SignedIn, position: int) -> list[Fact]:
        return _count(e.user_id, e, "sign_ins")

    @facts.register
    def _(self, e: Activity.Exported, position: int) -> list[Fact]:
        return [*_count(e.user_id, e, "exports"),
                *_choice(e.user_id, e, "export_format", key(e.format))]

    @facts.register
    def _(self, e: Activity.SessionEnded, position: int) -> list[Fact]:
        ms = milliseconds(e.seconds)
        if ms is None:
            return []
        return [*_count(e.user_id, e, "sessions"), *_count(e.user_id, e, "active_ms", ms)]


def _count(user: object, e: Any, column: str, n: int = 1) -> list[Fact]:
    if not is_user(user):
        return []
    return [Count(COUNTS.name, (user, day_of(e.timestamp)), column, n)]


def _choice(user: object, e: Any, kind: str, value: str | None) -> list[Fact]:
    if value is None or not is_user(user):
        return []
    return [Count(CHOICES.name, (user, day_of(e.timestamp), kind, value), "uses", 1)]
