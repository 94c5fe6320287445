"""Issue 23: how fast the analytics answer over a big log, and how fast their models catch up.

A log of ``--events`` (1 million by default) usage events over ``--days`` days is written
straight through the event store's own append function in batches (the events as the studio
stores them: projects created, generations and mesh jobs with their stages and ends, reuses,
sign-ins and failures, downloads, socket sessions, one request summary per node and minute),
then the two analytics read models replay it from position 0 (catch-up, events/s, in
batches of 1,000; its peer is the same runner with ``batch_size=1``, one transaction per
event, on the first 5,000 events). Then each query the endpoints run is timed ``--runs``
times with random users and period ends, after a ``VACUUM ANALYZE`` (what autovacuum does for
a running server); the goal is p95 < 50 ms, printed beside the p50.

    .venv/bin/python -m bench.analytics [--events 1000000] [--days 60] [--runs 100]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from eventsourcing.utils import get_topic

from bench.harness import Table, fresh_database, percentile, postgres_server
from bench.projections import _min_position, _reset
from core.accounts import SCHEMA as ACCOUNTS_SCHEMA
from core.events.activity import LATENCY_BOUNDS_MS, Activity
from core.events.job import Job
from core.events.job_kinds import GENERATE, MESH_ANALYSE, MESH_MATERIAL, MESH_STYLE
from core.events.project import Project
from core.events.studio import Studio
from core.limits import USER_TIERS_SQL
from core.projections.analytics_queries import platform_analytics, trends_async, user_analytics
from core.projections.runner import ProjectionRunner

MODELS = ("analytics_users", "analytics_platform")
GOAL_P95_MS = 50.0
GOAL_CATCH_UP = 5_000.0
APPEND_BATCH = 5_000
ROUTES = ("GET /api/v1/projects", "POST /api/v1/projects", "GET /api/v1/projects/{project_id}",
          "GET /api/v1/meshes/{asset_id}", "GET /api/v1/meshes/{asset_id}/export",
          "POST /api/v1/projects/{project_id}/generate", "GET /api/v1/jobs/{job_id}",
          "POST /api/v1/auth/tokens", "GET /api/v1/me", "GET /api/v1/generators",
          "POST /api/v1/projects/{project_id}/assets", "unmatched")
STYLES = ("low_poly", "organic", "mechanical", "futuristic", "custom")
MATERIALS = ("metal", "plastic", "wood", "stone", "ceramic", "fabric")
BACKENDS = ("inflate", "inflate", "inflate", "shap-e", "hunyuan3d")


class UsageLog:
    """Events of ``users`` people over ``days`` days ending today, at random moments."""

    def __init__(self, users: int, days: int, seed: int = 23) -> None:
        self.random = random.Random(seed)
        self.users = [str(uuid.UUID(int=self.random.getrandbits(128), version=4))
                      for _ in range(users)]
        self.end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        self.start = self.end - timedelta(days=days)
        self.projects: list[tuple[str, str]] = []  # (project, owner)
        self.finished_jobs: list[str] = []

    def moment(self) -> datetime:
        span = (self.end - self.start).total_seconds()
        return self.start + timedelta(seconds=self.random.random() * span)

    def events(self, count: int) -> Iterator[Any]:
        summaries = self._summaries()
        made = 0
        while made < count:
            for event in self._action():
                yield event
                made += 1
            if self.random.random() < 0.09:
                summary = next(summaries, None)
                if summary is not None:
                    yield summary
                    made += 1

    def _action(self) -> list[Any]:
        r, user, at = self.random.random(), self.random.choice(self.users), self.moment()
        if r < 0.10:
            return [_created(Activity.SignedIn, at, user_id=user, method="session")]
        if r < 0.11:
            return [_created(Activity.SignInFailed, at, method="token")]
        if r < 0.19:
            return [_created(Activity.Exported, at, user_id=user, asset_id=str(uuid.uuid4()),
                             format=self.random.choice(("stl", "glb", "obj", "3mf")))]
        if r < 0.29:
            return [_created(Activity.SessionEnded, at, user_id=user,
                             project_id=str(uuid.uuid4()),
                             seconds=self.random.expovariate(1 / 600), node="node-1")]
        if r < 0.33 or not self.projects:
            project = _created(Project.Created, at, name="p", owner=user, actor=user)
            self.projects.append((str(project.originator_id), user))
            return [project]
        project, owner = self.random.choice(self.projects)
        if r < 0.73:
            return self._job(at, owner, project, GENERATE,
                             {"backend": self.random.choice(BACKENDS),
                              "face_budget": self.random.choice((5000, 20000, 50000))})
        if r < 0.76 and self.finished_jobs:
            return [_created(Job.ReuseRequested, at, project_id=project, kind=GENERATE,
                             inputs={}, params={"backend": "inflate"}, cache_key="k",
                             actor=owner, how=self.random.choice(("cache", "single_flight")),
                             reused_from=self.random.choice(self.finished_jobs))]
        if r < 0.86:
            return self._job(at, owner, project, MESH_STYLE,
                             {"style": self.random.choice(STYLES)})
        if r < 0.93:
            return self._job(at, owner, project, MESH_MATERIAL,
                             {"material": self.random.choice(MATERIALS)})
        return self._job(at, "server", project, MESH_ANALYSE, {})

    def _job(self, at: datetime, actor: str, project: str, kind: str,
             params: dict[str, Any]) -> list[Any]:
        requested = _created(Job.Requested, at, project_id=project, kind=kind, inputs={},
                             params=params, cache_key="k", actor=actor)
        job = requested.originator_id
        took = self.random.uniform(1, 60)
        device = "cuda:0" if kind == GENERATE else "cpu"
        end = at + timedelta(seconds=took)
        events = [requested,
                  _event(Job.Started, originator_id=job, originator_version=2, timestamp=at,
                         worker="w", device=device, actor="w"),
                  _event(Job.StageCompleted, originator_id=job, originator_version=3,
                         timestamp=end, stage="final", blob=None,
                         stats={"seconds": took, "device": device}, actor="w")]
        if self.random.random() < 0.9:
            events.append(_event(Job.Succeeded, originator_id=job, originator_version=4,
                                 timestamp=end, result={}, actor="w"))
            self.finished_jobs.append(str(job))
        else:
            events.append(_event(Job.Failed, originator_id=job, originator_version=4,
                                 timestamp=end, reason="broke", retryable=False, actor="w"))
        return events

    def _summaries(self) -> Iterator[Any]:
        """One summary per minute of the period, in order, with a few busy routes."""
        minute = self.start
        while minute < self.end:
            routes = []
            for route in self.random.sample(ROUTES, 6):
                histogram = [0] * (len(LATENCY_BOUNDS_MS) + 1)
                count = self.random.randint(1, 120)
                for _ in range(8):
                    histogram[min(int(self.random.expovariate(0.4)),
                                  len(histogram) - 1)] += count // 8 or 1
                routes.append({"route": route, "count": count,
                               "client_errors": self.random.randint(0, 3),
                               "server_errors": int(self.random.random() < 0.02),
                               "p50_ms": 5.0, "p95_ms": 50.0, "histogram": histogram})
            yield _created(Activity.RequestsSummarised, minute, node="node-1",
                           minute=minute.isoformat(), routes=routes)
            minute += timedelta(minutes=1)


def _event(event_class: Any, **fields: Any) -> Any:
    """An event of a job that exists, as the aggregate would have made it."""
    return event_class(**fields)


def _created(event_class: Any, at: datetime, **fields: Any) -> Any:
    owner = {Project.Created: Project, Job.Requested: Job, Job.ReuseRequested: Job}.get(
        event_class, Activity)
    return event_class(originator_id=uuid.uuid4(), originator_version=1, timestamp=at,
                       originator_topic=get_topic(owner), **fields)


def write_log(url: str, log: UsageLog, count: int) -> float:
    """Append ``count`` events through the store's batch append function; returns seconds."""
    studio = Studio.connect(url)
    started = time.perf_counter()
    try:
        recorder: Any = studio.recorder
        batch = []
        for event in log.events(count):
            batch.append(studio.mapper.to_stored_event(event))
            if len(batch) == APPEND_BATCH:
                recorder.insert_events(batch)
                batch = []
        if batch:
            recorder.insert_events(batch)
    finally:
        studio.close()
    return time.perf_counter() - started


def add_accounts(url: str, users: list[str]) -> None:
    """The users as accounts (the tier distribution counts accounts), a tenth on pro."""
    with psycopg.connect(url) as conn:
        for statement in (*ACCOUNTS_SCHEMA, *USER_TIERS_SQL):
            conn.execute(statement)  # type: ignore[arg-type]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO accounts_users (id, username, password_hash)"
                            " VALUES (%s, %s, 'x')", [(u, f"user{i}") for i, u in
                                                      enumerate(users)])
            cur.executemany("INSERT INTO rm_user_tiers (user_id, username, tier, changed_at,"
                            " changed_by) VALUES (%s, %s, 'pro', now(), 'bench')",
                            [(u, f"user{i}") for i, u in enumerate(users) if i % 10 == 0])


def catch_up(url: str, batch_size: int, limit: int | None = None) -> tuple[int, float]:
    """Replay the analytics models from position 0 (their tables emptied) in batches of
    ``batch_size`` until the head or ``limit`` events; the events done and the seconds."""
    runner = ProjectionRunner(url, batch_size=batch_size, names=MODELS)
    try:
        _reset(url, runner)
        started = time.perf_counter()
        while runner.step() > 0:
            if limit is not None and _min_position(url, MODELS) >= limit:
                break
        return _min_position(url, MODELS), time.perf_counter() - started
    finally:
        runner.close()


async def time_queries(url: str, log: UsageLog, runs: int) -> dict[str, list[float]]:
    """Milliseconds per call of each query the endpoints run, ``runs`` calls each."""
    today = log.end.date()
    rng = random.Random(7)

    def end() -> date:
        return today - timedelta(days=rng.randrange(0, 7))

    cases: dict[str, Callable[[Any], Awaitable[Any]]] = {
        "user, 30 days": lambda c: user_analytics(c, rng.choice(log.users),
                                                  (e := end()) - timedelta(days=29), e),
        "user, 366 days": lambda c: user_analytics(c, rng.choice(log.users),
                                                   today - timedelta(days=365), today),
        "platform by day, 30 days": lambda c: platform_analytics(
            c, (e := end()) - timedelta(days=29), e, "day"),
        "platform by day, 366 days": lambda c: platform_analytics(
            c, today - timedelta(days=365), today, "day"),
        "platform by hour, 7 days": lambda c: platform_analytics(
            c, (e := end()) - timedelta(days=6), e, "hour"),
        "platform by hour, 31 days": lambda c: platform_analytics(
            c, today - timedelta(days=30), today, "hour"),
        "trends, 4 weeks": lambda c: trends_async(c),
    }
    timings: dict[str, list[float]] = {name: [] for name in cases}
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for name, call in cases.items():
            await call(conn)  # warm: plans and pages, as a running server has them
            for _ in range(runs):
                started = time.perf_counter()
                await call(conn)
                timings[name].append((time.perf_counter() - started) * 1e3)
    return timings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.analytics", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--peer-events", type=int, default=5_000,
                        help="events the batch_size=1 peer replays")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    log = UsageLog(args.users, args.days)
    with postgres_server(durable=False) as server, fresh_database(server) as url:
        write_s = write_log(url, log, args.events)
        add_accounts(url, log.users)
        peer_done, peer_seconds = catch_up(url, 1, args.peer_events)
        done, seconds = catch_up(url, 1000)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        timings = asyncio.run(time_queries(url, log, args.runs))
    table = Table(
        f"Analytics over {done:,} usage events of {args.users} users over {args.days} days"
        f" (written at {args.events / write_s:,.0f}/s through the store's batch append)",
        ["measure", "value", "peer", "peer value", "goal"])
    rate = done / seconds
    table.add(f"catch-up of the 2 analytics models from 0 (events/s; {seconds:.1f} s)", rate,
              f"batch_size=1, first {peer_done:,} events", peer_done / peer_seconds,
              f"≥ {GOAL_CATCH_UP:,.0f}/s: {'met' if rate >= GOAL_CATCH_UP else 'MISSED'}")
    for name, values in timings.items():
        p95 = percentile(values, 95)
        table.add(f"{name}: p95 ms ({len(values)} calls)", p95, "p50 ms",
                  percentile(values, 50),
                  f"p95 < {GOAL_P95_MS:g} ms: {'met' if p95 < GOAL_P95_MS else 'MISSED'}")
    table.print()


if __name__ == "__main__":
    main()
