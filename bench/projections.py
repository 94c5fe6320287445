"""Section 3: how fast the read models replay the log, and how far they trail a live writer.

Catch-up replays a log of mixed events (scene updates in batches, project renames, job
requests) from position zero with the runner as configured (``batch_size`` 1000, one
transaction per batch for every read model); its peer is the same runner with
``batch_size=1``, one transaction per event, run against a deadline on the same log. The
same replay without the analytics read models is printed beside it (what they cost); the
replay with every model runs once before it and once after, and both count. Lag is
sampled every 50 ms while one thread appends at a steady rate and another runs
``ProjectionRunner.run``.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import psycopg
from psycopg import sql

from bench.harness import Table, fresh_database, percentile
from bench.scene_edits import SceneEditor
from bench.sizes import Sizes
from core.events.job_kinds import MESH_ANALYSE
from core.events.studio import Studio
from core.projections.registry import EVENTS_TABLE, READ_MODEL_NAMES, TRACKING_TABLE
from core.projections.runner import ProjectionRunner

FILL_WRITERS = 4
PROJECTS_PER_WRITER = 4
SCENE_UPDATES_PER_ROUND = 10  # one batched call; then RENAMES and JOBS single-event calls
RENAMES_PER_ROUND = 3
JOBS_PER_ROUND = 2
SAMPLE_EVERY_S = 0.05
GOAL_CATCH_UP = 5_000.0
ANALYTICS = ("analytics_users", "analytics_platform")
WITHOUT_ANALYTICS = tuple(n for n in READ_MODEL_NAMES if n not in ANALYTICS)
GOAL_LAG_P99_MS = 1_000.0


class MixedWriter:
    """Appends rounds of scene updates, renames and job requests over a few projects."""

    def __init__(self, studio: Studio, seed: int, projects: int = PROJECTS_PER_WRITER) -> None:
        self._studio = studio
        self._editor = SceneEditor(seed)
        self._actor = f"user-{seed}"
        self._projects = itertools.cycle(
            [studio.create_project(f"p{seed}-{i}", self._actor) for i in range(projects)])
        self._names = itertools.cycle(("alpha", "beta", "gamma"))
        self._jobs = itertools.count()

    def round(self, updates: int = SCENE_UPDATES_PER_ROUND, renames: int = RENAMES_PER_ROUND,
              jobs: int = JOBS_PER_ROUND) -> int:
        """One round on the next project; returns the log position of its last event."""
        project = next(self._projects)
        position = self._studio.append_scene_updates(
            project, [(self._editor.next_update(), self._actor, "bench") for _ in range(updates)])
        for _ in range(renames):
            position = self._studio.rename_project(project, next(self._names), self._actor)
        for _ in range(jobs):
            self._request_job(project)
        return max(position, self._studio.max_position() if jobs else position)

    def _request_job(self, project: UUID) -> None:
        inputs = {"asset_id": f"asset-{next(self._jobs)}", "blob": "blobs/sha256/ab/cd"}
        self._studio.request_job(project, MESH_ANALYSE, inputs, {}, self._actor)


def fill_mixed(url: str, events: int) -> int:
    """Append about ``events`` mixed events from a few threads; returns the log head."""
    studio = Studio.connect(url)
    try:
        writers = [MixedWriter(studio, seed) for seed in range(FILL_WRITERS)]

        def loop(writer: MixedWriter) -> None:
            while writer.round() < events:
                continue  # each round appends; the condition does the work

        threads = [threading.Thread(target=loop, args=(w,)) for w in writers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return studio.max_position()
    finally:
        studio.close()


def replay_from_zero(url: str, batch_size: int, seconds: float | None,
                     names: Sequence[str] = READ_MODEL_NAMES) -> tuple[int, float]:
    """Events every named read model has processed from position 0, and the seconds."""
    runner = ProjectionRunner(url, batch_size=batch_size, names=names)
    try:
        _reset(url, runner)
        start = time.perf_counter()
        deadline = None if seconds is None else start + seconds
        while runner.step() > 0 and (deadline is None or time.perf_counter() < deadline):
            continue  # each step processes a batch; the condition does the work
        return _min_position(url, names), time.perf_counter() - start
    finally:
        runner.close()


def _reset(url: str, runner: ProjectionRunner) -> None:
    """Empty the runner's read models and move them back to 0 (``rebuild`` without its
    replay)."""
    tables = [t for model in runner.models.values() for t in model.tables]
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier,
                                                                             tables))))
        conn.execute(sql.SQL("UPDATE {} SET position = 0 WHERE name = ANY(%s)").format(
            sql.Identifier(TRACKING_TABLE)), (list(runner.models),))
    for model in runner.models.values():
        model.forget()


def _min_position(url: str, names: Sequence[str] = READ_MODEL_NAMES) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql.SQL("SELECT min(position) FROM {} WHERE name = ANY(%s)").format(
            sql.Identifier(TRACKING_TABLE)), (list(names),)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


# -- lag under load -------------------------------------------------------------------------


@dataclass
class LagRun:
    lag_events: list[int]
    lag_ms: list[float]
    achieved_rate: float


def paced_writer(studio: Studio, rate: int, stop: threading.Event,
                 commits: list[tuple[float, int]]) -> None:
    """Append rounds of 10 events on a fixed schedule; record (time, position) after each."""
    writer = MixedWriter(studio, seed=99)
    per_round = SCENE_UPDATES_PER_ROUND - 2 + 1 + 1  # 8 updates, 1 rename, 1 job
    interval = per_round / rate
    for tick in itertools.count():
        if stop.is_set():
            return
        pause = commits[0][0] + tick * interval - time.perf_counter() if commits else 0.0
        if pause > 0:
            time.sleep(pause)
        position = writer.round(updates=SCENE_UPDATES_PER_ROUND - 2, renames=1, jobs=1)
        commits.append((time.perf_counter(), position))


def sample_lag(url: str, seconds: float) -> list[tuple[float, int, int]]:
    """(time, log head, slowest read model's position) every 50 ms for ``seconds``."""
    query = sql.SQL("SELECT (SELECT coalesce(max(notification_id), 0) FROM {}),"
                    " (SELECT min(position) FROM {})").format(
        sql.Identifier(EVENTS_TABLE), sql.Identifier(TRACKING_TABLE))
    samples = []
    with psycopg.connect(url, autocommit=True) as conn:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            row = conn.execute(query).fetchone()
            assert row is not None
            samples.append((time.perf_counter(), int(row[0]), int(row[1])))
            time.sleep(SAMPLE_EVERY_S)
    return samples


def lag_ms(samples: list[tuple[float, int, int]], commits: list[tuple[float, int]]) -> list[float]:
    """How long the oldest event a read model has not processed had been committed, per sample.

    ``commits`` holds (time after the append returned, last position) in position order; the
    first commit past the model's position is when its oldest unprocessed event was written.
    """
    positions = [position for _, position in commits]
    waits = []
    for at, _, done in samples:
        index = bisect.bisect_right(positions, done)
        committed = commits[index][0] if index < len(commits) else at
        waits.append(max(0.0, at - committed) * 1e3)
    return waits


def lag_under_load(server_url: str, sizes: Sizes) -> LagRun:
    with fresh_database(server_url) as url:
        studio = Studio.connect(url)
        runner = ProjectionRunner(url)
        stop = threading.Event()
        commits: list[tuple[float, int]] = []
        threads = [threading.Thread(target=runner.run, args=(stop,)),
                   threading.Thread(target=paced_writer,
                                    args=(studio, sizes.lag_rate, stop, commits))]
        try:
            for thread in threads:
                thread.start()
            time.sleep(0.5)  # the writer's projects exist and the runner is listening
            samples = sample_lag(url, sizes.lag_seconds)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            runner.close()
            studio.close()
    window = [c for c in commits if samples[0][0] <= c[0] <= samples[-1][0]]
    achieved = (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0]) if len(
        window) > 1 else 0.0
    return LagRun([head - done for _, head, done in samples], lag_ms(samples, commits), achieved)


# -- the section ----------------------------------------------------------------------------


def run_section(server_url: str, sizes: Sizes) -> Table:
    with fresh_database(server_url) as url:
        start = time.perf_counter()
        head = fill_mixed(url, sizes.catchup_events)
        fill_s = time.perf_counter() - start
        ProjectionRunner(url).close()  # read-model tables exist before either replay
        # With the analytics models before and after the replay without them, so that
        # neither figure alone pays for a cold server (its caches, plans and table files).
        first_done, first_seconds = replay_from_zero(url, batch_size=1000, seconds=None)
        without = replay_from_zero(url, batch_size=1000, seconds=None, names=WITHOUT_ANALYTICS)
        done, seconds = replay_from_zero(url, batch_size=1000, seconds=None)
        done, seconds = done + first_done, seconds + first_seconds
        peer_done, peer_seconds = replay_from_zero(url, batch_size=1, seconds=sizes.peer_seconds)
    lag = lag_under_load(server_url, sizes)
    return _table(sizes, head, fill_s, (done, seconds), (peer_done, peer_seconds), lag,
                  without)


def _table(sizes: Sizes, head: int, fill_s: float, batched: tuple[int, float],
           single: tuple[int, float], lag: LagRun, without: tuple[int, float]) -> Table:
    table = Table(
        f"3. Projections ({len(READ_MODEL_NAMES)} read models). Log: {head:,} mixed events"
        f" (scene updates x10/call, renames, job requests; appended at {head / fill_s:,.0f}/s"
        f" by {FILL_WRITERS} threads)",
        ["measure", "value", "peer", "peer value", "x peer", "goal"])
    rate, peer_rate = batched[0] / batched[1], single[0] / single[1]
    table.add(f"catch-up from 0, batch_size=1000 (events/s; two replays, {batched[0]:,} in"
              f" {batched[1]:.1f} s)", rate,
              f"batch_size=1 ({single[0]:,} in {single[1]:.1f} s)", peer_rate,
              f"{rate / peer_rate:.1f}x" if peer_rate else "",
              f"≥ 5,000/s: {'met' if rate >= GOAL_CATCH_UP else 'MISSED'}")
    bare = without[0] / without[1]
    table.add(f"  the same without the {len(ANALYTICS)} analytics models (events/s;"
              f" {without[0]:,} in {without[1]:.1f} s)", bare, "with them", rate,
              f"{rate / bare:.2f}x" if bare else "", "")
    p99_ms = percentile(lag.lag_ms, 99)
    table.add(f"lag under {sizes.lag_rate}/s for {sizes.lag_seconds:g} s: p50 events",
              percentile(lag.lag_events, 50), "", "", "", "")
    table.add("  p99 events", percentile(lag.lag_events, 99), "", "", "", "")
    table.add("  p50 ms", percentile(lag.lag_ms, 50), "", "", "", "")
    table.add("  p99 ms", p99_ms, "", "", "",
              f"p99 < 1 s: {'met' if p99_ms < GOAL_LAG_P99_MS else 'MISSED'}")
    table.add(f"  writer achieved (events/s, target {sizes.lag_rate})", lag.achieved_rate,
              "", "", "", "")
    return table
