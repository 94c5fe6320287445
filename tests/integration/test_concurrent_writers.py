"""Many writers at once: every command is stored exactly once, and the projections see every
event exactly once — also when the projection runner is a process that gets SIGKILLed mid-way.

Issue 3: 8 writer threads x 1,000 commands, (a) all on one project (renames and real pycrdt
scene updates, so the writers race on the same two aggregates and go through the optimistic
retry), (b) each writer on its own project (they only race on the log's table lock).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from core.errors import Conflict
from core.events.project import Project
from core.events.scene import Scene
from core.events.studio import Studio
from core.projections.registry import READ_MODEL_NAMES
from core.projections.runner import ProjectionRunner
from core.scene import document
from core.settings import Settings

WRITERS = 8
COMMANDS_PER_WRITER = 1000
HOLD_AT = COMMANDS_PER_WRITER * 9 // 10
"""Where writers wait while the test kills the projection runner, so that the kills land
while writing is still going on however fast the writers are."""
TEST_RETRIES = 50  # a Conflict after the service's own retries: the caller retries, as the API does
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Command:
    """One successful command: what it wrote (``tag``) and the position it returned."""

    kind: str  # "rename" | "scene"
    project_id: UUID
    tag: str
    position: int


@dataclass
class WriteRun:
    commands: list[Command] = field(default_factory=list)
    conflicts: int = 0
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    seconds: float = 0.0


def _with_retry(call: Callable[[], int], run: WriteRun) -> int:
    for _ in range(TEST_RETRIES):
        try:
            return call()
        except Conflict:
            with run.lock:
                run.conflicts += 1
    raise AssertionError(f"command still conflicting after {TEST_RETRIES} tries")


def _writer(studio: Studio, writer: int, project_id: UUID, run: WriteRun,
            start: threading.Barrier, resume: threading.Event | None) -> None:
    mine: list[Command] = []
    try:
        start.wait(30)
        for i in range(COMMANDS_PER_WRITER):
            if resume is not None and i == HOLD_AT:
                assert resume.wait(600), "the test never let the writers finish"
            tag = f"w{writer}-{i}"
            if i % 2 == 0:
                position = _with_retry(
                    lambda tag=tag: studio.rename_project(project_id, tag, actor=f"u{writer}"),
                    run)
                mine.append(Command("rename", project_id, tag, position))
            else:
                update = document.edit(b"", {tag: {"name": tag, "visible": i % 4 == 1,
                                                   "blob": f"blobs/{tag}"}}, origin=tag)
                position = _with_retry(
                    lambda tag=tag, update=update: studio.append_scene_updates(
                        project_id, [(update, f"u{writer}", tag)]),
                    run)
                mine.append(Command("scene", project_id, tag, position))
    except BaseException as e:
        run.errors.append(e)
    finally:
        with run.lock:
            run.commands.extend(mine)


def _write_concurrently(studio: Studio, projects: list[UUID],
                        resume: threading.Event | None = None) -> WriteRun:
    """``WRITERS`` threads; writer ``w`` writes to ``projects[w % len(projects)]``. With
    ``resume``, each writer holds before its command ``HOLD_AT`` until it is set."""
    run = WriteRun()
    start = threading.Barrier(WRITERS)
    threads = [threading.Thread(target=_writer, name=f"writer-{w}", daemon=True,
                                args=(studio, w, projects[w % len(projects)], run, start,
                                      resume))
               for w in range(WRITERS)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    run.seconds = time.monotonic() - began
    assert not any(t.is_alive() for t in threads), "a writer thread did not finish"
    if run.errors:
        raise run.errors[0]
    print(f"\n{WRITERS}x{COMMANDS_PER_WRITER} commands on {len(projects)} project(s) in "
          f"{run.seconds:.1f}s; {run.conflicts} conflicts retried by the test")
    return run


# -- checks on the event store ------------------------------------------------------------


@dataclass
class Log:
    ids: list[int]
    final_names: dict[UUID, str]


def check_event_store(studio: Studio, url: str, run: WriteRun, projects: list[UUID]) -> Log:
    commands = run.commands
    assert len(commands) == WRITERS * COMMANDS_PER_WRITER, "a writer lost commands"

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT notification_id, originator_id, originator_version, topic"
            " FROM studio_events ORDER BY notification_id").fetchall()
    ids = [r[0] for r in rows]
    assert len(set(ids)) == len(ids), "duplicate notification ids"
    assert all(a < b for a, b in itertools.pairwise(ids)), \
        "notification ids are not strictly increasing"

    keys = Counter((r[1], r[2]) for r in rows)
    dupes = [k for k, n in keys.items() if n > 1]
    assert not dupes, f"(originator_id, originator_version) stored twice: {dupes[:5]}"
    by_aggregate: dict[UUID, list[tuple[int, int]]] = defaultdict(list)
    for nid, originator, version, _ in rows:
        by_aggregate[originator].append((version, nid))
    for originator, pairs in by_aggregate.items():
        versions = [v for v, _ in pairs]
        assert versions == list(range(1, len(versions) + 1)), \
            f"{originator}: versions are not gap-free 1..{len(versions)} in log order"

    # Decode every event: each command's own content is there exactly once.
    renamed: Counter[str] = Counter()
    updated: Counter[str] = Counter()
    event_at: dict[tuple[str, str], int] = {}
    last_rename: dict[UUID, tuple[int, str]] = {}
    compactions = 0
    for notification in studio.recorder.select_notifications(start=1, limit=len(ids) + 1):
        event = studio.mapper.to_domain_event(notification)
        if isinstance(event, Project.Renamed):
            renamed[event.name] += 1
            event_at["rename", event.name] = notification.id
            last_rename[event.originator_id] = max(
                last_rename.get(event.originator_id, (0, "")), (event.originator_version,
                                                                 event.name))
        elif isinstance(event, Scene.Updated):
            updated[event.origin] += 1
            event_at["scene", event.origin] = notification.id
        elif isinstance(event, Scene.Compacted):
            compactions += 1
    expected_renames = {c.tag for c in commands if c.kind == "rename"}
    expected_updates = {c.tag for c in commands if c.kind == "scene"}
    assert set(renamed) == expected_renames, (
        f"renames missing: {sorted(expected_renames - set(renamed))[:5]},"
        f" unexpected: {sorted(set(renamed) - expected_renames)[:5]}")
    assert set(updated) == expected_updates, (
        f"scene updates missing: {sorted(expected_updates - set(updated))[:5]},"
        f" unexpected: {sorted(set(updated) - expected_updates)[:5]}")
    twice = [t for t, n in (renamed + updated).items() if n > 1]
    assert not twice, f"commands stored more than once: {twice[:5]}"

    # Per originator: Created + one event per command (+ the scene's compactions).
    for pid in projects:
        scene_id = Scene.create_id(str(pid))
        n_renames = sum(1 for c in commands if c.kind == "rename" and c.project_id == pid)
        n_updates = sum(1 for c in commands if c.kind == "scene" and c.project_id == pid)
        assert len(by_aggregate[pid]) == 1 + n_renames, f"project {pid}: wrong event count"
        scene_compactions = len(by_aggregate[scene_id]) - 1 - n_updates
        assert scene_compactions >= 0, f"scene of {pid}: fewer events than commands"
    assert len(ids) == len(projects) * 2 + len(commands) + compactions, \
        "the log holds events that no command made"

    # Each command returned the position its event got (scene commands: or the compaction
    # saved in the same transaction right after it); no two commands share a position.
    returned = Counter(c.position for c in commands)
    assert not [p for p, n in returned.items() if n > 1], "two commands returned one position"
    for c in commands:
        at = event_at[c.kind, c.tag]
        assert c.position in (at, at + 1), f"{c}: returned {c.position}, stored at {at}"

    final_names = {}
    for pid in projects:
        name = studio.project(pid).name
        assert name == last_rename[pid][1], f"project {pid}: aggregate name is not the last rename"
        final_names[pid] = name
    return Log(ids, final_names)


# -- checks on the projections ------------------------------------------------------------


def tracking(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT name, position FROM rm_tracking").fetchall())


def head(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM studio_events")
        return int(row.fetchone()[0])  # type: ignore[index]


def check_projections(url: str, log: Log, run: WriteRun) -> None:
    assert tracking(url) == dict.fromkeys(READ_MODEL_NAMES, log.ids[-1]), \
        "a read model is not at the log's head"
    with psycopg.connect(url) as conn:
        count, total = conn.execute(
            "SELECT count(*), coalesce(sum(position), 0) FROM rm_timeline").fetchone()  # type: ignore[misc]
        assert count == len(log.ids), f"rm_timeline has {count} rows for {len(log.ids)} events"
        assert total == sum(log.ids), "rm_timeline's position checksum differs from the log's"
        positions = {r[0] for r in conn.execute("SELECT position FROM rm_timeline")}
        assert positions == set(log.ids), (
            f"timeline misses {sorted(set(log.ids) - positions)[:5]},"
            f" has extra {sorted(positions - set(log.ids))[:5]}")
        names = dict(conn.execute("SELECT id, name FROM rm_projects").fetchall())
        assert names == log.final_names, "rm_projects names differ from the aggregates'"
        objects: dict[UUID, set[str]] = defaultdict(set)
        for pid, oid in conn.execute("SELECT project_id, object_id FROM rm_scene_objects"):
            objects[pid].add(oid)
    for pid in log.final_names:
        expected = {c.tag for c in run.commands if c.kind == "scene" and c.project_id == pid}
        assert objects[pid] == expected, (
            f"project {pid}: scene objects missing {sorted(expected - objects[pid])[:5]},"
            f" extra {sorted(objects[pid] - expected)[:5]}")


# -- the tests ------------------------------------------------------------------------------


@pytest.fixture
def studio(prepared: Settings) -> Iterator[Studio]:
    assert prepared.database_url is not None
    app = Studio.connect(prepared.database_url)
    yield app
    app.close()


def _projects(studio: Studio, shared: bool) -> list[UUID]:
    count = 1 if shared else WRITERS
    return [studio.create_project(f"p{i}", actor="owner") for i in range(count)]


@pytest.mark.parametrize("shared", [True, False], ids=["one-project", "project-each"])
def test_concurrent_writers_exactly_once(prepared: Settings, studio: Studio, shared: bool):
    url = prepared.database_url
    assert url is not None
    projects = _projects(studio, shared)
    run = _write_concurrently(studio, projects)
    log = check_event_store(studio, url, run, projects)

    runner = ProjectionRunner(url)
    try:
        processed = runner.catch_up()
    finally:
        runner.close()
    assert processed == len(log.ids) * len(READ_MODEL_NAMES), \
        "catch_up did not process each event once per read model"
    check_projections(url, log, run)


def _start_runner(url: str, output: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORFEAS_")}
    env["ORFEAS_DATABASE_URL"] = url
    with output.open("ab") as sink:
        return subprocess.Popen([sys.executable, "-m", "infra.cli", "projections"], cwd=REPO_ROOT,
                                env=env, stdout=sink, stderr=subprocess.STDOUT)


def _poll(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str,
          alive: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if alive is not None and alive.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise AssertionError(f"runner exited ({alive.returncode}) while waiting for {what}:"
                                 f"\n{tail}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout}s; last value {value!r}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(30)


@pytest.mark.parametrize("shared", [True, False], ids=["one-project", "project-each"])
def test_runner_process_killed_mid_way_exactly_once(prepared: Settings, studio: Studio,
                                                    shared: bool, tmp_path: Path):
    url = prepared.database_url
    assert url is not None
    projects = _projects(studio, shared)
    output = tmp_path / "runner.log"
    runners = [_start_runner(url, output)]
    result: dict[str, Any] = {}

    resume = threading.Event()

    def write() -> None:
        try:
            result["run"] = _write_concurrently(studio, projects, resume)
        except BaseException as e:
            result["error"] = e

    writers = threading.Thread(target=write, name="writers", daemon=True)
    expected = WRITERS * COMMANDS_PER_WRITER
    try:
        writers.start()
        # Kill it twice, once a third and once two thirds of the way, while the writers write;
        # "part way" is read from rm_tracking, so the kill lands wherever the runner is.
        for fraction in (1 / 3, 2 / 3):
            running = runners[-1]
            part_way = _poll(lambda: tracking(url),
                             lambda t, f=fraction: min(t.values()) >= expected * f,
                             300, f"the runner {fraction:.0%} of the way", alive=running,
                             log=output)
            assert writers.is_alive(), f"writers finished before the runner was {part_way}"
            running.send_signal(signal.SIGKILL)
            assert running.wait(30) == -signal.SIGKILL
            print(f"killed the runner at {tracking(url)} (head {head(url)})")
            runners.append(_start_runner(url, output))
        resume.set()
        writers.join(600)
        assert not writers.is_alive(), "writers did not finish"
        if "error" in result:
            raise result["error"]
        run: WriteRun = result["run"]
        final = head(url)
        _poll(lambda: tracking(url), lambda t: min(t.values()) >= final, 300,
              "the restarted runner at the head", alive=runners[-1], log=output)
        runners[-1].send_signal(signal.SIGTERM)
        assert runners[-1].wait(30) == 0, output.read_text(errors="replace")[-3000:]
    finally:
        resume.set()
        for process in runners:
            _stop(process)
        writers.join(600)

    log = check_event_store(studio, url, run, projects)
    assert log.ids[-1] == final
    check_projections(url, log, run)
