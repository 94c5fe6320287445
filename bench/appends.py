"""Section 1: append throughput of the studio's service against the bare library and raw SQL.

Every figure runs its writers against a deadline in a fresh database and is the median of
``repeats`` runs. Peers are printed on the same row: the studio's single-event commands beside
the bare ``eventsourcing`` library doing load + save of one event (the same work shape), the
library beside one-row-per-commit ``INSERT`` (the floor any event store pays), and batched
scene appends beside one-update-per-call appends.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.harness import Table, Writer, fresh_database, median, run_writers
from bench.scene_edits import SceneEditor
from bench.sizes import Sizes
from core.errors import Conflict
from core.events.persistence import VersionClash, eventstore_env
from core.events.studio import Studio

Case = Callable[[str, int], AbstractContextManager[list[Writer]]]
"""(database URL, writers) → the writers, ready, and cleaned up on exit."""

GOAL_SINGLE_VS_BARE = 0.9
GOAL_BATCHED_8 = 5_000.0


class Tally(Aggregate):
    """The smallest aggregate the library allows: one command, one event."""

    @event("Created")
    def __init__(self) -> None:
        self.count = 0

    @event("Incremented")
    def increment(self) -> None:
        self.count += 1


class BareApplication(Application[UUID]):
    """The library's own application, on the same PostgreSQL, with no snapshots."""

    name = "Bare"


class CountingStudio(Studio):
    """The studio, counting the saves that lost an optimistic-concurrency race."""

    name = "Studio"  # the same tables as the real one

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env=env)
        self.clashes = 0
        self._clash_lock = threading.Lock()

    def _save(self, *aggregates):  # type: ignore[no-untyped-def]
        try:
            return super()._save(*aggregates)
        except VersionClash:
            with self._clash_lock:
                self.clashes += 1
            raise


# -- cases: each yields one writer per thread ---------------------------------------------


def studio_rename(shared: bool) -> Case:
    """``Studio.rename_project`` on a project of the writer's own (load + save of one event)."""

    @contextmanager
    def case(url: str, writers: int) -> Iterator[list[Writer]]:
        studios = [Studio.connect(url) for _ in range(1 if shared else writers)]
        try:
            projects = [(studios[0 if shared else i], studios[0 if shared else i]
                         .create_project(f"p{i}", "bench")) for i in range(writers)]
            yield [_renamer(studio, project) for studio, project in projects]
        finally:
            for studio in studios:
                studio.close()

    return case


def _renamer(studio: Studio, project: UUID) -> Writer:
    names = itertools.cycle(("alpha", "beta"))

    def write() -> int:
        studio.rename_project(project, next(names), "bench")
        return 1

    return write


def studio_scene(batch: int, one_project: bool = False,
                 counters: list[CountingStudio] | None = None) -> Case:
    """``Studio.append_scene_updates`` with ``batch`` updates per call, one shared Studio.

    Counted events are scene updates; the compaction events the service adds are not.
    Updates are made before the clock starts (a ring of distinct batches per writer), so the
    CRDT generator's cost stays out of the figure.
    """

    @contextmanager
    def case(url: str, writers: int) -> Iterator[list[Writer]]:
        studio = CountingStudio(env=eventstore_env(url))
        if counters is not None:
            counters.append(studio)
        try:
            shared_project = studio.create_project("shared", "bench")
            yield [_scene_writer(studio, shared_project if one_project
                                 else studio.create_project(f"p{i}", "bench"), batch, seed=i)
                   for i in range(writers)]
        finally:
            studio.close()

    return case


def _scene_writer(studio: Studio, project: UUID, batch: int, seed: int) -> Writer:
    editor = SceneEditor(seed)
    ring = [[(editor.next_update(), f"user-{seed}", "bench") for _ in range(batch)]
            for _ in range(max(1, 4000 // batch))]
    batches = itertools.cycle(ring)

    def write() -> int:
        try:
            studio.append_scene_updates(project, next(batches))
        except Conflict:
            return 0  # gave up after its retries: nothing was written
        return batch

    return write


def bare_library(load: bool) -> Case:
    """The library alone: ``Application.save`` of one event, with or without loading first."""

    @contextmanager
    def case(url: str, writers: int) -> Iterator[list[Writer]]:
        app = BareApplication(env=eventstore_env(url, IS_SNAPSHOTTING_ENABLED="n"))
        try:
            tallies = [Tally() for _ in range(writers)]
            app.save(*tallies)
            yield [_tally_writer(app, tally, load) for tally in tallies]
        finally:
            app.close()

    return case


def _tally_writer(app: BareApplication, tally: Tally, load: bool) -> Writer:
    def write() -> int:
        aggregate: Tally = app.repository.get(tally.id) if load else tally
        aggregate.increment()
        app.save(aggregate)
        return 1

    return write


@contextmanager
def raw_insert(url: str, writers: int) -> Iterator[list[Writer]]:
    """One ``INSERT`` and one commit per row, each writer on its own connection."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE raw_events (id bigserial PRIMARY KEY, originator_id uuid,"
                     " version int, topic text, state bytea)")
    connections = [psycopg.connect(url) for _ in range(writers)]
    try:
        yield [_inserter(conn) for conn in connections]
    finally:
        for conn in connections:
            conn.close()


def _inserter(conn: psycopg.Connection) -> Writer:
    originator = UUID(int=id(conn))
    versions = itertools.count(1)
    state = b'{"actor":"bench","name":"alpha"}'

    def write() -> int:
        with conn.transaction():
            conn.execute("INSERT INTO raw_events (originator_id, version, topic, state)"
                          " VALUES (%s, %s, %s, %s)", (originator, next(versions),
                                                      "bench:Renamed", state), prepare=True)
        return 1

    return write


# -- measuring and printing -----------------------------------------------------------------


def measure_once(server_url: str, case: Case, writers: int, sizes: Sizes) -> float:
    """Events/s of one run in its own fresh database."""
    with fresh_database(server_url) as url, case(url, writers) as ready:
        run = run_writers(ready, sizes.append_seconds)
    if run.errors:
        raise run.errors[0]
    return run.rate


def run_section(server_url: str, sizes: Sizes) -> Table:
    """Measure every case at 1 and 8 writers and print one table.

    The repeats go round the cases (case A, B, C, then A, B, C again) rather than case by case,
    so that a stretch of slow disk or a busy neighbour on a shared machine lands on every
    figure alike instead of on whichever few ran during it; each figure is then the median of
    its repeats.
    """
    one_project: list[CountingStudio] = []
    figures: list[tuple[str, int, Case]] = [
        (key, writers, case) for writers in (1, 8) for key, case in (
            ("raw", raw_insert),
            ("bare_load", bare_library(load=True)),
            ("bare_save", bare_library(load=False)),
            ("rename", studio_rename(shared=True)),
            ("scene1", studio_scene(1)),
            ("batched", studio_scene(sizes.batch)),
        )]
    figures += [("rename_own", 8, studio_rename(shared=False)),
                ("batched_one", 8, studio_scene(sizes.batch, one_project=True,
                                                counters=one_project))]
    runs: dict[tuple[str, int], list[float]] = {(key, w): [] for key, w, _ in figures}
    for _ in range(sizes.repeats):
        for key, writers, case in figures:
            runs[(key, writers)].append(measure_once(server_url, case, writers, sizes))
    clashes = median([s.clashes for s in one_project])
    return _table(runs, sizes, clashes)


def _table(runs: dict[tuple[str, int], list[float]], sizes: Sizes, clashes: float) -> Table:
    """Medians of the runs; "x peer" is the median of the ratios of runs made in the same
    round (one after the other), which a slow stretch of the machine changes least."""
    table = Table(
        f"1. Append throughput (events/s, median of {sizes.repeats} x {sizes.append_seconds:g} s,"
        " fresh database each, cases taking turns)",
        ["what", "writers", "events/s", "peer", "peer events/s", "x peer", "goal"])
    rows = [
        ("raw psycopg INSERT, 1 commit/row", "raw", None, ""),
        ("bare library: load + save 1 event", "bare_load", "raw", ""),
        ("bare library: save 1 event (no load)", "bare_save", "raw", ""),
        ("Studio.rename_project (shared Studio)", "rename", "bare_load", "≥ 0.90x peer"),
        ("Studio.rename_project (Studio per writer)", "rename_own", "bare_load", "≥ 0.90x peer"),
        ("Studio.append_scene_updates, 1/call", "scene1", "bare_load", "≥ 0.90x peer"),
        (f"Studio.append_scene_updates, {sizes.batch}/call", "batched", "scene1", "8w: ≥ 5,000/s"),
        (f"  same, {sizes.batch}/call, 8 writers ONE project", "batched_one", "batched", ""),
    ]
    for label, key, peer, goal in rows:
        for writers in (1, 8):
            if (key, writers) not in runs:
                continue
            values = runs[(key, writers)]
            peers = runs.get((peer, writers), []) if peer else []
            ratio = median([v / p for v, p in zip(values, peers, strict=True) if p > 0]
                           if peers else [])
            table.add(label, writers, median(values), peer or "", median(peers),
                      f"{ratio:.2f}x" if ratio == ratio else "",
                      _verdict(key, writers, median(values), ratio, goal))
    table.add(f"  version clashes retried (one project, median per run): {clashes:g}",
              "", "", "", "", "", "")
    return table


def _verdict(key: str, writers: int, value: float, ratio: float, goal: str) -> str:
    if goal.startswith("≥ 0.90"):
        met = ratio == ratio and ratio >= GOAL_SINGLE_VS_BARE
        return f"{goal}: {'met' if met else 'MISSED'}"
    if key == "batched" and writers == 8:
        return f"≥ 5,000/s: {'met' if value >= GOAL_BATCHED_8 else 'MISSED'}"
    return ""
