"""The whole platform's use, per hour (series) and per day (breakdowns by key).

- ``rm_ap_hours``: one row per hour with every series counter (sign-ins, generations and mesh
  jobs with their ends, requests and errors, GPU milliseconds, cache hits, exports, active
  users, GPU time the dedup cache saved). One wide row per hour keeps a year's series a scan
  of 8,784 rows.
- ``rm_ap_keys``: per day, counters by key: requests and errors by route, latency histograms
  by route group, generators, styles, materials, download formats, GPU time by device.
- ``rm_ap_active_hours`` / ``rm_ap_active_days``: who was active when (distinct users over any
  period); a user's first event of an hour or day also adds one to that hour's or day's
  ``active_users`` in the same statement.
- ``rm_ap_jobs``: each job's hour, kind, whether it succeeded and the GPU milliseconds its
  workers reported (what a reuse of its results saved), and ``rm_ap_reuses``: each request
  answered by another job.

Users are active when they sign in, create a project, ask for a job, download a mesh or leave
a room; the studio's own actors (analyses it asks for, the cache) are no one.
"""

from __future__ import annotations

from datetime import datetime
from functools import singledispatchmethod
from typing import Any

from core.events.activity import LATENCY_BOUNDS_MS, Activity
from core.events.job import REUSE_ACTOR, Job
from core.events.job_kinds import GENERATE, MESH_MATERIAL, MESH_STYLE
from core.events.project import Project
from core.projections.analytics_facts import (
    JOB_COUNTS_FROM,
    Count,
    CounterModel,
    CounterTable,
    Fact,
    JobCount,
    JobUpdate,
    Row,
    RowTable,
    count,
    hour_of,
    is_user,
    key,
    mapping,
    milliseconds,
)
from core.projections.readmodel import Statement

HOURS = CounterTable(
    "rm_ap_hours", (("hour", "timestamptz"),),
    ("sign_ins", "failed_sign_ins", "projects_created", "generations",
     "generations_succeeded", "generations_failed", "mesh_jobs", "mesh_jobs_succeeded",
     "mesh_jobs_failed", "requests", "client_errors", "server_errors", "gpu_ms",
     "cache_hits", "single_flight_joins", "exports", "sessions", "active_ms"))
KEPT_APART = ("active_users", "saved_gpu_ms")  # rm_ap_hours' counters with statements of their own
KEYS = CounterTable(
    "rm_ap_keys", (("day", "date"), ("metric", "text"), ("key", "text")), ("n",))
KEY_METRICS = ("generator", "style", "material", "export_format", "gpu_ms_by_device",
               "gpu_reports_by_device", "route_requests", "route_client_errors",
               "route_server_errors", "latency")
MAX_ROUTES_PER_SUMMARY = 500  # a node's minute: more would be a broken report, not traffic

JOBS = RowTable("rm_ap_jobs", (("job_id", "uuid"), ("hour", "timestamptz"), ("kind", "text"),
                               ("requested_at", "timestamptz")))
REUSES = RowTable("rm_ap_reuses", (("position", "bigint"), ("hour", "timestamptz"),
                                   ("job_id", "uuid"), ("how", "text")))
_ACTIVE = (
    "WITH seen AS (SELECT DISTINCT * FROM unnest(%(hours)s::timestamptz[], %(users)b::text[])"
    " AS s(hour, user_id)),"
    " new_hours AS (INSERT INTO rm_ap_active_hours (hour, user_id) SELECT hour, user_id"
    " FROM seen ON CONFLICT DO NOTHING RETURNING hour),"
    " new_days AS (INSERT INTO rm_ap_active_days (day, user_id) SELECT DISTINCT"
    " (hour AT TIME ZONE 'UTC')::date, user_id FROM seen ON CONFLICT DO NOTHING RETURNING day),"
    " hours AS (INSERT INTO rm_ap_hours (hour, active_users) SELECT hour, count(*)"
    " FROM new_hours GROUP BY hour ON CONFLICT (hour) DO UPDATE SET active_users ="
    " rm_ap_hours.active_users + EXCLUDED.active_users)"
    " INSERT INTO rm_ap_days (day, active_users) SELECT day, count(*) FROM new_days"
    " GROUP BY day ON CONFLICT (day) DO UPDATE SET active_users = rm_ap_days.active_users"
    " + EXCLUDED.active_users")


# What the dedup cache saved: a cache hit, the GPU time of the job it reused (done already);
# a single-flight join, that of the job it joined, once that job has succeeded. Either counts
# on the hour of the reuse, when the batch that holds the later of the two facts is applied
# (after the batch's job rows and their changes), so each reuse is counted exactly once.
_SAVED_BY_HITS = (
    "INSERT INTO rm_ap_hours (hour, saved_gpu_ms) SELECT m.hour, sum(j.gpu_ms)"
    " FROM unnest(%(hours)s::timestamptz[], %(jobs)s::uuid[]) AS m(hour, job_id)"
    " JOIN rm_ap_jobs j USING (job_id) WHERE j.succeeded GROUP BY m.hour"
    " ON CONFLICT (hour) DO UPDATE SET saved_gpu_ms = rm_ap_hours.saved_gpu_ms"
    " + EXCLUDED.saved_gpu_ms")
_SAVED_BY_JOINS = (
    "INSERT INTO rm_ap_hours (hour, saved_gpu_ms) SELECT r.hour, sum(j.gpu_ms)"
    " FROM rm_ap_reuses r JOIN rm_ap_jobs j USING (job_id)"
    " WHERE r.job_id = ANY(%(jobs)s::uuid[]) AND r.how <> 'cache' AND j.succeeded"
    " GROUP BY r.hour ON CONFLICT (hour) DO UPDATE SET saved_gpu_ms ="
    " rm_ap_hours.saved_gpu_ms + EXCLUDED.saved_gpu_ms")


class Active:
    """A user active at a moment (collected per batch into one :data:`_ACTIVE`)."""

    __slots__ = ("hour", "user")

    def __init__(self, hour: datetime, user: str) -> None:
        self.hour = hour
        self.user = user


class PlatformAnalyticsReadModel(CounterModel):
    name = "analytics_platform"
    tables = ("rm_ap_hours", "rm_ap_keys", "rm_ap_active_hours", "rm_ap_active_days",
              "rm_ap_days", "rm_ap_jobs", "rm_ap_reuses")
    counters = (HOURS, KEYS)
    create_sql = (
        HOURS.create_sql(*KEPT_APART),
        KEYS.create_sql(),
        "CREATE TABLE IF NOT EXISTS rm_ap_active_hours (hour timestamptz NOT NULL,"
        " user_id text NOT NULL, PRIMARY KEY (hour, user_id))",
        "CREATE TABLE IF NOT EXISTS rm_ap_active_days (day date NOT NULL, user_id text NOT NULL,"
        " PRIMARY KEY (day, user_id))",
        "CREATE TABLE IF NOT EXISTS rm_ap_days (day date PRIMARY KEY,"
        " active_users bigint NOT NULL DEFAULT 0)",
        "CREATE TABLE IF NOT EXISTS rm_ap_jobs (job_id uuid PRIMARY KEY, hour timestamptz NOT"
        " NULL, kind text NOT NULL, requested_at timestamptz NOT NULL,"
        " gpu_ms bigint NOT NULL DEFAULT 0, succeeded boolean NOT NULL DEFAULT false)",
        "CREATE INDEX IF NOT EXISTS rm_ap_jobs_hour ON rm_ap_jobs (hour)",
        "CREATE TABLE IF NOT EXISTS rm_ap_reuses (position bigint PRIMARY KEY, hour timestamptz"
        " NOT NULL, job_id uuid NOT NULL, how text NOT NULL)",
        "CREATE INDEX IF NOT EXISTS rm_ap_reuses_job ON rm_ap_reuses (job_id)",
    )
    job_counts_sql = (
        "INSERT INTO rm_ap_hours (hour, generations_succeeded, generations_failed,"
        " mesh_jobs_succeeded, mesh_jobs_failed) SELECT j.hour,"
        " count(*) FILTER (WHERE m.col = 'succeeded' AND j.kind = 'generate'),"
        " count(*) FILTER (WHERE m.col = 'failed' AND j.kind = 'generate'),"
        " count(*) FILTER (WHERE m.col = 'succeeded' AND j.kind <> 'generate'),"
        " count(*) FILTER (WHERE m.col = 'failed' AND j.kind <> 'generate')"
        + JOB_COUNTS_FROM.format(jobs="rm_ap_jobs") +
        " GROUP BY j.hour ON CONFLICT (hour) DO UPDATE SET"
        " generations_succeeded = rm_ap_hours.generations_succeeded"
        " + EXCLUDED.generations_succeeded,"
        " generations_failed = rm_ap_hours.generations_failed + EXCLUDED.generations_failed,"
        " mesh_jobs_succeeded = rm_ap_hours.mesh_jobs_succeeded"
        " + EXCLUDED.mesh_jobs_succeeded,"
        " mesh_jobs_failed = rm_ap_hours.mesh_jobs_failed + EXCLUDED.mesh_jobs_failed")

    job_updates_sql = (
        "UPDATE rm_ap_jobs j SET gpu_ms = j.gpu_ms + m.gpu_ms, succeeded = j.succeeded"
        " OR m.succeeded FROM (SELECT job_id,"
        " coalesce(sum(n) FILTER (WHERE col = 'gpu_ms'), 0) AS gpu_ms,"
        " bool_or(col = 'succeeded') AS succeeded FROM unnest(%(ids)s::uuid[],"
        " %(columns)b::text[], %(ns)b::bigint[]) AS u(job_id, col, n) GROUP BY job_id) m"
        " WHERE j.job_id = m.job_id")

    def batch_statements(self, events: list[tuple[int, Any]]) -> list[Statement]:
        """The counters' statements, then who was active, in one statement."""
        statements = super().batch_statements(events)
        active = {(f.hour, f.user) for position, e in events for f in self.actives(e)}
        if active:
            pairs = sorted(active)
            statements.append((_ACTIVE, {"hours": [h for h, _ in pairs],
                                         "users": [u for _, u in pairs]}))
        hits = [(hour_of(e.timestamp), e.reused_from) for _, e in events
                if isinstance(e, Job.ReuseRequested) and e.kind == GENERATE and e.how == "cache"]
        if hits:
            statements.append((_SAVED_BY_HITS, {"hours": [h for h, _ in hits],
                                                "jobs": [j for _, j in hits]}))
        ended = [e.originator_id for _, e in events if isinstance(e, Job.Succeeded)]
        if ended:
            statements.append((_SAVED_BY_JOINS, {"jobs": ended}))
        return statements

    def actives(self, e: Any) -> list[Active]:
        user = _user_of(e)
        return [Active(hour_of(e.timestamp), user)] if user is not None else []

    @singledispatchmethod
    def facts(self, event: Any, position: int) -> list[Fact]:
        return []

    @facts.register
    def _(self, e: Project.Created, position: int) -> list[Fact]:
        return [_hour(e, "projects_created")]

    @facts.register
    def _(self, e: Job.Requested, position: int) -> list[Fact]:
        params = mapping(e.params)
        row: Fact = Row(JOBS, (e.originator_id, hour_of(e.timestamp),
                               e.kind if isinstance(e.kind, str) else "", e.timestamp))
        if e.kind == GENERATE:
            return [row, _hour(e, "generations"),
                    _key(e, "generator", key(params.get("backend")) or "inflate")]
        return [row, _hour(e, "mesh_jobs"), *_choices(e, params)]

    @facts.register
    def _(self, e: Job.ReuseRequested, position: int) -> list[Fact]:
        if e.kind != GENERATE:
            return [_hour(e, "mesh_jobs")]
        params = mapping(e.params)
        cached = e.how == "cache"
        return [
            Row(JOBS, (e.originator_id, hour_of(e.timestamp), GENERATE, e.timestamp)),
            Row(REUSES, (position, hour_of(e.timestamp), e.reused_from, e.how)),
            _hour(e, "generations"), _hour(e, "cache_hits" if cached else "single_flight_joins"),
            _key(e, "generator", key(params.get("backend")) or "inflate")]

    @facts.register
    def _(self, e: Job.StageCompleted, position: int) -> list[Fact]:
        if e.actor == REUSE_ACTOR:  # a reuse's stages are the reused job's: no device ran
            return []
        stats = mapping(e.stats)
        ms = milliseconds(stats.get("seconds"))
        if not ms:
            return []
        device = key(stats.get("device")) or "unknown"
        return [JobUpdate(e.originator_id, "gpu_ms", ms), _hour(e, "gpu_ms", ms),
                _key(e, "gpu_ms_by_device", device, ms), _key(e, "gpu_reports_by_device", device)]

    @facts.register
    def _(self, e: Job.Succeeded, position: int) -> list[Fact]:
        return [JobUpdate(e.originator_id, "succeeded"), JobCount(e.originator_id, "succeeded")]

    @facts.register
    def _(self, e: Job.Failed, position: int) -> list[Fact]:
        return [JobCount(e.originator_id, "failed")]

    @facts.register
    def _(self, e: Activity.SignedIn, position: int) -> list[Fact]:
        return [_hour(e, "sign_ins")]

    @facts.register
    def _(self, e: Activity.SignInFailed, position: int) -> list[Fact]:
        return [_hour(e, "failed_sign_ins")]

    @facts.register
    def _(self, e: Activity.Exported, position: int) -> list[Fact]:
        return [_hour(e, "exports"), _key(e, "export_format", key(e.format) or "unknown")]

    @facts.register
    def _(self, e: Activity.SessionEnded, position: int) -> list[Fact]:
        ms = milliseconds(e.seconds)
        return [] if ms is None else [_hour(e, "sessions"), _hour(e, "active_ms", ms)]

    @facts.register
    def _(self, e: Activity.RequestsSummarised, position: int) -> list[Fact]:
        """A node's minute of requests, counted on the minute's hour (the event's own time
        where the minute is unreadable)."""
        moment = _moment(e.minute) or e.timestamp
        hour, day = hour_of(moment), hour_of(moment).date()
        facts: list[Fact] = []
        routes = e.routes if isinstance(e.routes, list) else []
        for item in routes[:MAX_ROUTES_PER_SUMMARY]:
            entry = mapping(item)
            route = key(entry.get("route"))
            requests = count(entry.get("count"))
            if route is None or not requests:
                continue
            client = count(entry.get("client_errors")) or 0
            server = count(entry.get("server_errors")) or 0
            facts += [Count(HOURS.name, (hour,), "requests", requests),
                      Count(HOURS.name, (hour,), "client_errors", client),
                      Count(HOURS.name, (hour,), "server_errors", server),
                      Count(KEYS.name, (day, "route_requests", route), "n", requests)]
            if client:
                facts.append(Count(KEYS.name, (day, "route_client_errors", route), "n", client))
            if server:
                facts.append(Count(KEYS.name, (day, "route_server_errors", route), "n", server))
            histogram = entry.get("histogram")
            if isinstance(histogram, list):
                group = route_group(route)
                for index, n in enumerate(histogram[:len(LATENCY_BOUNDS_MS) + 1]):
                    taken = count(n)
                    if taken:
                        facts.append(Count(KEYS.name, (day, "latency", f"{group}|{index}"),
                                           "n", taken))
        return facts


def route_group(route: str) -> str:
    """``"GET /api/v1/projects/{project_id}/assets"`` → ``"projects"``; ``"GET /healthz"``
    → ``"healthz"``; a request no route took → ``"unmatched"``."""
    path = route.split(" ", 1)[-1]
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        parts = parts[2:]
    return parts[0][:40] if parts else "unmatched"


def _user_of(e: Any) -> str | None:
    if isinstance(e, (Activity.SignedIn, Activity.Exported, Activity.SessionEnded)):
        user = e.user_id
    elif isinstance(e, (Project.Created, Job.Requested, Job.ReuseRequested)):
        user = e.actor
    else:
        return None
    return user if is_user(user) else None


def _choices(e: Job.Requested, params: Any) -> list[Fact]:
    if e.kind == MESH_STYLE:
        value = key(params.get("style"))
        return [] if value is None else [_key(e, "style", value)]
    if e.kind == MESH_MATERIAL:
        value = key(params.get("material"))
        return [] if value is None else [_key(e, "material", value)]
    return []


def _hour(e: Any, column: str, n: int = 1) -> Count:
    return Count(HOURS.name, (hour_of(e.timestamp),), column, n)


def _key(e: Any, metric: str, value: str, n: int = 1) -> Count:
    return Count(KEYS.name, (hour_of(e.timestamp).date(), metric, value), "n", n)


def _moment(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
