"""Rebuilding a read model from the log gives back exactly the tables that following the log
built — with the API, with the CLI, and while another runner is live and writers keep writing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql

from core.errors import NotFound
from core.events.account import set_tier
from core.events.assistant import Exchange
from core.events.job_kinds import GENERATE, MESH_ANALYSE, MESH_REPAIR
from core.events.project import Asset
from core.events.roles import Role
from core.events.scene import COMPACT_EVERY_UPDATES
from core.events.studio import Studio
from core.projections.registry import READ_MODEL_NAMES, TRACKING_TABLE, build_read_models
from core.projections.runner import ProjectionRunner
from core.settings import Settings
from tests.integration.conftest import BackgroundPart

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLES: dict[str, tuple[str, ...]] = {
    name: model.tables for name, model in build_read_models(lambda *_: ("", b"")).items()
}

ROUNDS = 5

Snapshot = dict[str, list[tuple[Any, ...]]]


def snapshot(url: str) -> Snapshot:
    """Every read-model table (and the positions), rows ordered by all their columns."""
    out: Snapshot = {}
    with psycopg.connect(url) as conn:
        for table in [t for tables in TABLES.values() for t in tables] + [TRACKING_TABLE]:
            columns = conn.execute(
                "SELECT count(*) FROM information_schema.columns WHERE table_name = %s",
                (table,)).fetchone()[0]  # type: ignore[index]
            assert columns, f"table {table} does not exist"
            order = sql.SQL(", ").join(sql.Literal(i) for i in range(1, columns + 1))
            query = sql.SQL("SELECT * FROM {} ORDER BY {}").format(sql.Identifier(table), order)
            out[table] = [tuple(r) for r in conn.execute(query).fetchall()]
    return out


def assert_same(actual: Snapshot, expected: Snapshot, when: str) -> None:
    for table in expected:
        a, e = actual[table], expected[table]
        if a != e:
            missing = [r for r in e if r not in a][:3]
            extra = [r for r in a if r not in e][:3]
            raise AssertionError(f"{when}: {table} differs ({len(a)} rows, expected {len(e)});"
                                 f" missing {missing}; unexpected {extra}")


def head(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM studio_events")
        return int(row.fetchone()[0])  # type: ignore[index]


def wait_caught_up(url: str, timeout: float = 120) -> None:
    target = head(url)
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(url) as conn:
            positions = dict(conn.execute("SELECT name, position FROM rm_tracking").fetchall())
        if positions and min(positions.values()) >= target:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"read models not at {target} after {timeout}s: {positions}")
        time.sleep(0.05)


def _asset(i: int, uploader: str) -> Asset:
    digest = f"{i:064x}"
    return Asset(asset_id=str(uuid.uuid4()), blob_key=f"blobs/sha256/{digest[:2]}/{digest[2:]}",
                 sha256=digest, media_type="model/stl", kind="mesh", size=1000 + i,
                 filename=f"part{i}.stl", uploaded_by=uploader)


def build_history(studio: Studio) -> dict[str, Any]:
    """Projects, renames, members, assets, scene edits across a compaction, versions, a revert,
    a deletion, and jobs in every end state."""
    a = studio.create_project("Alpha", actor="alice")
    b = studio.create_project("Beta", actor="bob")
    gone = studio.create_project("Gone", actor="alice")
    studio.rename_project(a, "Alpha 2", actor="alice")
    studio.invite(a, "bob", Role.EDITOR, actor="alice")
    studio.invite(a, "carol", Role.VIEWER, actor="alice")
    studio.invite(a, "carol", Role.EDITOR, actor="alice")  # role change
    studio.invite(b, "alice", Role.OWNER, actor="bob")
    studio.remove_member(a, "bob", actor="alice")
    assets = [_asset(i, "alice") for i in range(4)]
    for i, asset in enumerate(assets):
        studio.record_asset(a if i % 2 == 0 else b, asset, actor=asset.uploaded_by)

    version, _ = studio.tag_version(a, "empty scene", actor="alice")
    # Enough edits to compact the scene (and snapshot it), with overwrites and deletions.
    for i in range(COMPACT_EVERY_UPDATES + 25):
        oid = f"obj{i % 9}"
        if i % 7 == 6:
            studio.edit_scene(a, {oid: None}, actor="carol", origin="test")
        else:
            studio.edit_scene(a, {oid: {"name": f"n{i}", "asset": assets[i % 4].asset_id,
                                        "blob": assets[i % 4].blob_key, "visible": i % 3 > 0}},
                              actor="carol", origin="test")
    studio.edit_scene(b, {"cube": {"name": "cube", "blob": assets[1].blob_key}}, actor="bob",
                      origin="test")
    studio.tag_version(a, "busy scene", actor="alice")
    studio.rename_project(a, "Alpha 3", actor="carol")
    studio.revert(a, version, actor="alice")
    studio.edit_scene(a, {"after": {"name": "after revert"}}, actor="alice", origin="test")
    studio.edit_scene(gone, {"x": {"name": "x"}}, actor="alice", origin="test")
    studio.delete_project(gone, actor="alice")
    dora = str(uuid.uuid4())
    set_tier(studio, dora, "dora", "pro", actor="root")  # the account opens on a tier
    set_tier(studio, dora, "dora", "enterprise", actor="root")  # and moves

    analysed = studio.request_job(a, MESH_ANALYSE, {"asset_id": assets[0].asset_id}, {},
                                  actor="alice")
    studio.start_job(analysed, "mesh-1", "cpu")
    studio.succeed_job(analysed, {"watertight": True, "volume": 8.0})
    generated = studio.request_job(b, GENERATE, {"image": assets[1].asset_id},
                                   {"backend": "inflate"}, actor="bob")
    studio.start_job(generated, "gpu-1", "cuda:0")
    studio.fail_job(generated, "out of memory", retryable=True, actor="gpu-1")  # redelivered...
    retried = studio.request_job(b, GENERATE, {"image": assets[1].asset_id},
                                 {"backend": "inflate", "seed": 2}, actor="bob")
    studio.start_job(retried, "gpu-1", "cuda:0")
    studio.start_job(retried, "gpu-2", "cuda:1")  # redelivery after a crash: attempt 2
    for stage in ("preview", "medium", "final"):
        studio.complete_stage(retried, stage, f"blobs/{stage}",
                              {"faces": len(stage), "seconds": 0.25 * len(stage),
                               "peak_memory_bytes": 1000 * len(stage), "device": "cuda:1"})
    studio.succeed_job(retried, {"blob": "blobs/final"})
    # a hit from another project, and a join of a queued job
    assert studio.reuse_job(retried, a, {"image": assets[0].asset_id}, {"backend": "inflate"},
                            actor="alice") is not None
    joined = studio.request_job(b, GENERATE, {"image": assets[1].asset_id},
                                {"backend": "inflate", "seed": 3}, actor="bob")
    assert studio.reuse_job(joined, b, {"image": assets[1].asset_id}, {"backend": "inflate"},
                            actor="carol") is not None
    studio.request_job(a, MESH_ANALYSE, {"asset_id": assets[2].asset_id}, {}, actor="alice")
    cancelled = studio.request_job(a, MESH_ANALYSE, {"asset_id": assets[3].asset_id}, {},
                                   actor="alice")
    studio.cancel_job(cancelled, actor="alice")
    asked = Exchange(project_id=str(a), text="will it print?", asset_id=assets[0].asset_id,
                     actor="alice")
    suggestion = {"id": str(uuid.uuid5(asked.id, "s0")), "title": "Repair the mesh",
                  "operation": "repair", "params": {}, "reason": "it is open",
                  "expected": [{"name": "printability score", "unit": "points",
                                "before": 75.0, "after": 100.0}]}
    asked.answer("will_it_print", "With care.", [{"name": "watertight", "value": False,
                                                  "unit": None, "source": "analysis"}],
                 [suggestion], [], "rules")
    studio.record_exchange(asked)
    studio.request_suggested_job(asked.id, suggestion["id"], MESH_REPAIR,
                                 {"asset_id": assets[0].asset_id}, {}, actor="alice")
    return {"a": a, "b": b, "assets": assets}


@pytest.fixture
def studio(prepared: Settings) -> Iterator[Studio]:
    assert prepared.database_url is not None
    app = Studio.connect(prepared.database_url)
    yield app
    app.close()


def _cli_rebuild(url: str, name: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORFEAS_")}
    env["ORFEAS_DATABASE_URL"] = url
    done = subprocess.run([sys.executable, "-m", "infra.cli", "projections", "rebuild", name],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, f"rebuild {name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_rebuild_gives_back_the_same_tables(prepared: Settings, studio: Studio):
    url = prepared.database_url
    assert url is not None
    build_history(studio)
    events = head(url)

    runner = ProjectionRunner(url)
    try:
        assert runner.catch_up() == events * len(READ_MODEL_NAMES)
        followed = snapshot(url)
        assert all(followed[t] for tables in TABLES.values() for t in tables), \
            f"the history left a read-model table empty: {[t for t in followed if not followed[t]]}"
        for name in READ_MODEL_NAMES:
            assert runner.rebuild(name) == events, f"rebuild {name} did not replay the whole log"
            assert_same(snapshot(url), followed, f"after rebuild({name!r})")
        with pytest.raises(NotFound):
            runner.rebuild("no_such_model")
    finally:
        runner.close()

    # Small batches (and a cold process for the scene documents) give the same tables.
    small = ProjectionRunner(url, batch_size=7)
    try:
        for name in READ_MODEL_NAMES:
            assert small.rebuild(name) == events
        assert_same(snapshot(url), followed, "after rebuilds in batches of 7")
    finally:
        small.close()

    out = _cli_rebuild(url, "scene_objects")
    assert f"rebuilt scene_objects from {events} events" in out, out
    assert_same(snapshot(url), followed, "after `orfeas projections rebuild scene_objects`")
    out = _cli_rebuild(url, "history")
    assert f"rebuilt history from {events} events" in out, out
    assert_same(snapshot(url), followed, "after `orfeas projections rebuild history`")


def _keep_writing(studio: Studio, projects: list[UUID], stop: threading.Event,
                  written: list[int]) -> None:
    """Scene overwrites and deletions (CRDT updates that depend on earlier ones), renames and
    jobs, until ``stop``."""
    i = 0
    while not stop.is_set():
        pid = projects[i % len(projects)]
        oid = f"o{i % 5}"
        if i % 4 == 3:
            studio.edit_scene(pid, {oid: None}, actor="w", origin="w")
        else:
            studio.edit_scene(pid, {oid: {"name": f"n{i}", "visible": i % 2 == 0}}, actor="w",
                              origin="w")
        if i % 10 == 0:
            studio.rename_project(pid, f"name {i}", actor="w")
        if i % 25 == 0:
            job = studio.request_job(pid, GENERATE, {"i": i}, {}, actor="w")
            studio.start_job(job, "gpu", "cpu")
            studio.succeed_job(job, {"i": i})
            studio.reuse_job(job, pid, {"i": i}, {}, actor="w")
        i += 1
    written.append(i)


def test_rebuild_while_a_runner_is_live(prepared: Settings, studio: Studio):
    url = prepared.database_url
    assert url is not None
    state = build_history(studio)
    projects = [state["a"], state["b"]]

    live = ProjectionRunner(url)
    rebuilder = ProjectionRunner(url, batch_size=50)
    written: list[int] = []
    writer = BackgroundPart("writer", lambda stop: _keep_writing(studio, projects, stop,
                                                                 written))
    part = BackgroundPart("projections", live.run)
    try:
        wait_caught_up(url)
        # Rebuild every model, repeatedly, while the live runner follows the writes.
        for _ in range(ROUNDS):
            for name in READ_MODEL_NAMES:
                rebuilder.rebuild(name)
        writer.stop()
        assert written and written[0] > 0, "the writer wrote nothing"
        wait_caught_up(url)
    finally:
        try:
            writer.stop()
        finally:
            part.stop()
            live.close()
            rebuilder.close()
    concurrent = snapshot(url)

    reference = ProjectionRunner(url)
    try:
        for name in READ_MODEL_NAMES:
            reference.rebuild(name)
    finally:
        reference.close()
    assert_same(concurrent, snapshot(url),
                f"after {ROUNDS} rounds of rebuilds beside a live runner and"
                f" {written[0]} writes, compared with a quiet rebuild")
