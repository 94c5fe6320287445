"""One step of the projection runner takes every model's batch in one transaction: a model
another session holds is left where it is while the others move on, a model without its
tracking row is said so, and a live runner follows a burst of edits to the head."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pycrdt import Doc, Map

from core.errors import NotFound
from core.events.studio import Studio
from core.projections.registry import READ_MODEL_NAMES
from core.projections.runner import ProjectionRunner
from core.scene import document
from core.settings import Settings
from tests.integration.conftest import BackgroundPart

LOCK_NAMESPACE = 0x0F_EA_5  # the runner's first advisory-lock key


@pytest.fixture
def url(prepared: Settings) -> str:
    assert prepared.database_url is not None
    return prepared.database_url


@pytest.fixture
def studio(url: str) -> Iterator[Studio]:
    app = Studio.connect(url)
    yield app
    app.close()


def _rows(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(query, params).fetchall()]


def _positions(url: str) -> dict[str, int]:
    return dict(_rows(url, "SELECT name, position FROM rm_tracking"))  # type: ignore[arg-type]


def _head(url: str) -> int:
    return int(_rows(url, "SELECT coalesce(max(notification_id), 0) FROM studio_events")[0][0])


def _meta_edits(count: int) -> list[bytes]:
    """A stock client's edits: each adds a key under ``meta``."""
    doc: Doc = Doc()
    meta = doc.get(document.META, type=Map)
    updates: list[bytes] = []
    for n in range(count):
        state = doc.get_state()
        meta[f"key-{n}"] = n
        updates.append(doc.get_update(state))
    return updates


def test_a_model_held_elsewhere_stays_put_while_the_others_move_on(
        url: str, studio: Studio) -> None:
    runner = ProjectionRunner(url)
    try:
        runner.catch_up()
        with psycopg.connect(url) as holder:  # a rebuild, or another runner, holds history
            holder.execute("SELECT pg_advisory_xact_lock(%s, hashtext('history'))",
                           (LOCK_NAMESPACE,))
            before = _positions(url)["history"]
            project = studio.create_project("P", actor="alice")
            assert runner.catch_up() > 0
            positions = _positions(url)
            assert positions["history"] == before
            assert {p for name, p in positions.items() if name != "history"} == {_head(url)}
            assert _rows(url, "SELECT name FROM rm_projects WHERE id = %s", project) == [("P",)]
        assert runner.catch_up() > 0  # released: history catches up
        assert set(_positions(url).values()) == {_head(url)}
        assert _rows(url, "SELECT summary FROM rm_timeline WHERE project_id = %s"
                          " ORDER BY position", project) == [("created the project “P”",),
                                                             ("created the scene",)]
    finally:
        runner.close()


def test_a_model_without_its_tracking_row_is_said_so(url: str, studio: Studio) -> None:
    runner = ProjectionRunner(url)
    try:
        with psycopg.connect(url) as conn:
            conn.execute("DELETE FROM rm_tracking WHERE name = 'jobs'")
        studio.create_project("P", actor="alice")
        with pytest.raises(NotFound, match="'jobs' has no tracking row"):
            runner.step()
        assert _rows(url, "SELECT count(*) FROM rm_projects") == [(0,)], \
            "the other models moved on in the step that failed"
    finally:
        runner.close()


def test_a_live_runner_follows_a_burst_of_edits_to_the_head(url: str, studio: Studio) -> None:
    runner = ProjectionRunner(url)
    part = BackgroundPart("projections", runner.run)
    try:
        project = studio.create_project("P", actor="alice")
        edits = _meta_edits(40)
        for update in edits:
            studio.append_scene_updates(project, [(update, "alice", "ws")])
        head = _head(url)
        reached = threading.Event()
        for _ in range(600):  # at most a minute; the runner's lag goal is a second
            if min(_positions(url).values()) >= head:
                reached.set()
                break
            reached.wait(0.1)
        assert reached.is_set(), f"not at the head {head}: {_positions(url)}"
    finally:
        part.stop()
        runner.close()
    keys = _rows(url, "SELECT key FROM rm_scene_history WHERE project_id = %s AND root = 'meta'",
                 project)
    assert sorted(k for (k,) in keys) == sorted(f"key-{n}" for n in range(40))
    lines = _rows(url, "SELECT count(*) FROM rm_timeline WHERE project_id = %s AND kind = %s",
                  project, "Scene.Updated")
    assert lines == [(40,)]
    assert set(_positions(url)) == set(READ_MODEL_NAMES)
