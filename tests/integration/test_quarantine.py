"""Read models that never stop: one bad stored event is applied safely or quarantined for the
model that fails on it, and every other event, and every other model, carries on.

Issue 19, reproduction 1: a job whose parameters held ``Infinity`` (stored before the edge
checked bodies) made PostgreSQL refuse the jobs model's insert; the runner failed, restarted
and failed again forever, and every read model stopped.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import jsonschema_rs  # schemathesis's validator
import psycopg
import pytest
from eventsourcing.utils import get_topic
from pycrdt import Doc, Map
from starlette.testclient import TestClient

from api.routes.admin import QUARANTINE
from core.events.job_kinds import MESH_REPAIR
from core.events.project import Project
from core.events.roles import Role
from core.events.studio import Studio
from core.projections import catalogue
from core.projections.registry import READ_MODEL_NAMES
from core.projections.runner import ProjectionRunner
from core.settings import Settings
from tests.integration.conftest import Account, BackgroundPart

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def studio(prepared: Settings) -> Iterator[Studio]:
    assert prepared.database_url is not None
    app = Studio.connect(prepared.database_url)
    yield app
    app.close()


def _url(settings: Settings) -> str:
    assert settings.database_url is not None
    return settings.database_url


def _rows(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(query, params).fetchall()]


def _head(url: str) -> int:
    return int(_rows(url, "SELECT coalesce(max(notification_id), 0) FROM studio_events")[0][0])


def _positions(url: str) -> dict[str, int]:
    return dict(_rows(url, "SELECT name, position FROM rm_tracking"))  # type: ignore[arg-type]


def _quarantine(url: str) -> list[tuple[Any, ...]]:
    return _rows(url, "SELECT model, position, topic, error FROM rm_quarantine"
                      " ORDER BY model, position")


def test_a_job_with_infinite_params_is_stored_with_null_and_nothing_stops(
        prepared: Settings, studio: Studio) -> None:
    url = _url(prepared)
    project = studio.create_project("P", actor="alice")
    before = studio.request_job(project, MESH_REPAIR, {"asset_id": str(uuid.uuid4())},
                                {"merge_tolerance": 0.001}, actor="alice")
    # As old stored data would be: straight through the application service, no API check.
    bad = studio.request_job(project, MESH_REPAIR, {"asset_id": str(uuid.uuid4())},
                             {"merge_tolerance": math.inf, "weights": [1.0, -math.inf,
                                                                       math.nan]},
                             actor="mallory")
    after = studio.request_job(project, MESH_REPAIR, {"asset_id": str(uuid.uuid4())},
                               {"merge_tolerance": 0.002}, actor="alice")
    later = studio.create_project("Later", actor="bob")

    runner = ProjectionRunner(url)
    try:
        runner.catch_up()
    finally:
        runner.close()

    params = dict(_rows(url, "SELECT id, params FROM rm_jobs"))
    assert params == {before: {"merge_tolerance": 0.001},
                      bad: {"merge_tolerance": None, "weights": [1.0, None, None]},
                      after: {"merge_tolerance": 0.002}}
    assert _quarantine(url) == []
    assert set(_positions(url).values()) == {_head(url)}, "a read model stopped"
    assert {r[0] for r in _rows(url, "SELECT id FROM rm_projects")} == {project, later}
    assert len(_rows(url, "SELECT 1 FROM rm_timeline WHERE kind = 'Job.Requested'")) == 3


def _members(url: str, project: UUID) -> set[str]:
    return {r[0] for r in _rows(url, "SELECT user_id FROM rm_members WHERE project_id = %s",
                                project)}


def _refusing_mallory(original: Any) -> Any:
    """The catalogue as it would be with a bug: its code raises on one member's event."""
    def member(project_id: Any, user: str, role: str, at: Any) -> Any:
        if user == "mallory":
            raise ValueError("this model cannot take mallory")
        return original(project_id, user, role, at)
    return member


def _cli_retry(url: str, *names: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORFEAS_")}
    env["ORFEAS_DATABASE_URL"] = url
    return subprocess.run([sys.executable, "-m", "infra.cli", "projections", "retry", *names],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def test_an_event_a_model_raises_on_is_quarantined_reported_and_retried_after_a_fix(
        prepared: Settings, studio: Studio, client: TestClient,
        make_account: Callable[..., Account], monkeypatch: pytest.MonkeyPatch) -> None:
    url = _url(prepared)
    project = studio.create_project("P", actor="alice")
    studio.invite(project, "bob", Role.EDITOR, actor="alice")
    bad = studio.invite(project, "mallory", Role.VIEWER, actor="alice")
    studio.invite(project, "carol", Role.VIEWER, actor="alice")  # same batch, after it
    other = studio.create_project("Other", actor="dave")

    monkeypatch.setattr(catalogue, "_member", _refusing_mallory(catalogue._member))
    runner = ProjectionRunner(url)
    try:
        runner.catch_up()
    finally:
        runner.close()

    # Only the catalogue skipped it; its good events of the same batch are in.
    topic = get_topic(Project.MemberInvited)
    assert _quarantine(url) == [
        ("catalogue", bad, topic, "ValueError: this model cannot take mallory")]
    assert _members(url, project) == {"alice", "bob", "carol"}
    assert _members(url, other) == {"dave"}
    assert set(_positions(url).values()) == {_head(url)}
    assert _rows(url, "SELECT summary FROM rm_timeline WHERE position = %s", bad) == [
        ("added member mallory as viewer",)]
    assert _rows(url, "SELECT originator_id FROM rm_quarantine") == [(project,)]

    # Readiness says degraded (and still serves: 200), naming the event but not its error.
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "degraded", body
    check = body["checks"]["projections"]
    assert check["quarantined"] == {"catalogue": 1}
    assert [(e["model"], e["position"], e["topic"]) for e in check["newest_quarantined"]] == [
        ("catalogue", bad, topic)]
    assert "mallory" not in ready.text

    # Admins list it with its error; anyone else gets a 403 problem.
    admin = make_account("root", admin=True)
    listed = client.get("/api/v1/admin/quarantine", headers=admin.headers)
    assert listed.status_code == 200, listed.text
    answer = listed.json()
    jsonschema_rs.validate(QUARANTINE, answer)  # what the OpenAPI document promises
    assert answer["total"] == 1 and answer["by_model"] == {"catalogue": 1}
    [event] = answer["events"]
    assert (event["model"], event["position"], event["topic"], event["originator_id"],
            event["attempts"]) == ("catalogue", bad, topic, str(project), 1)
    assert event["error"] == "ValueError: this model cannot take mallory"
    assert client.get("/api/v1/admin/quarantine?model=jobs",
                      headers=admin.headers).json()["events"] == []
    unknown = client.get("/api/v1/admin/quarantine?model=nope", headers=admin.headers)
    assert unknown.status_code == 422
    assert unknown.headers["content-type"].startswith("application/problem+json")
    user = make_account("eve")
    refused = client.get("/api/v1/admin/quarantine", headers=user.headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")

    # Still broken: a retry keeps it, with the error of this attempt.
    runner = ProjectionRunner(url, names=["catalogue"])
    try:
        [outcome] = runner.retry("catalogue")
    finally:
        runner.close()
    assert (outcome.position, outcome.error) == (bad, "ValueError: this model cannot take mallory")
    assert _rows(url, "SELECT attempts FROM rm_quarantine") == [(2,)]

    # The fix is deployed (the CLI runs the code as it is): retry applies and releases it.
    monkeypatch.undo()
    done = _cli_retry(url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"catalogue @ {bad}: applied; 1 later events of its record" in done.stdout, done.stdout
    assert "rebuild catalogue" in done.stdout
    assert "retried 1 quarantined events: 1 applied, 0 still quarantined" in done.stdout
    assert _quarantine(url) == []
    assert _members(url, project) == {"alice", "bob", "carol", "mallory"}
    healthy = client.get("/readyz").json()
    assert healthy["status"] == "ready", healthy
    assert healthy["checks"]["projections"]["quarantined"] == {}


def test_an_undecodable_event_is_quarantined_by_the_models_of_its_class_only(
        prepared: Settings, studio: Studio) -> None:
    url = _url(prepared)
    project = studio.create_project("P", actor="alice")
    with psycopg.connect(url) as conn:  # a stored record whose state is no longer readable
        conn.execute("INSERT INTO studio_events (originator_id, originator_version, topic,"
                     " state) VALUES (%s, 2, %s, %s)",
                     (uuid.uuid4(), get_topic(Project.Renamed), b"\xff not json"))
        conn.execute("INSERT INTO studio_events (originator_id, originator_version, topic,"
                     " state) VALUES (%s, 1, 'gone.module:Vanished', %s)",
                     (uuid.uuid4(), b"{}"))
    studio.rename_project(project, "Renamed", actor="alice")

    runner = ProjectionRunner(url)
    try:
        runner.catch_up()
    finally:
        runner.close()

    quarantined = _quarantine(url)
    renamed = {m for m, _, t, _ in quarantined if t == get_topic(Project.Renamed)}
    vanished = {m for m, _, t, _ in quarantined if t == "gone.module:Vanished"}
    assert renamed == {"catalogue", "history"}, quarantined  # the models that take renames
    assert vanished == set(READ_MODEL_NAMES), quarantined  # no model can tell: all keep it
    assert all("cannot" in e.lower() or "error" in e.lower() for *_, e in quarantined)
    assert _rows(url, "SELECT name FROM rm_projects") == [("Renamed",)]
    assert set(_positions(url).values()) == {_head(url)}


def _wait_until_caught_up(url: str, part: BackgroundPart, timeout: float = 60) -> None:
    """Until every read model reached the log head; fails at once if the runner died."""
    target = _head(url)
    deadline = time.monotonic() + timeout
    while min(_positions(url).values()) < target:
        if part.error is not None:
            raise AssertionError(f"the runner stopped: {part.error!r}") from part.error
        if time.monotonic() > deadline:
            raise AssertionError(f"read models not at {target}: {_positions(url)}")
        time.sleep(0.05)


def test_the_live_runner_carries_on_after_a_bad_event(prepared: Settings, studio: Studio) -> None:
    url = _url(prepared)
    runner = ProjectionRunner(url)
    part = BackgroundPart("projections", runner.run)
    try:
        project = studio.create_project("P", actor="alice")
        _wait_until_caught_up(url, part)
        bad = studio.request_job(project, MESH_REPAIR, {"asset_id": str(uuid.uuid4())},
                                 {"merge_tolerance": math.inf}, actor="mallory")
        with psycopg.connect(url) as conn:  # and one that no model can read
            conn.execute("INSERT INTO studio_events (originator_id, originator_version,"
                         " topic, state) VALUES (%s, 1, %s, %s)",
                         (uuid.uuid4(), get_topic(Project.Created), b"\x00"))
        good = studio.request_job(project, MESH_REPAIR, {"asset_id": str(uuid.uuid4())},
                                  {"merge_tolerance": 0.5}, actor="alice")
        second = studio.create_project("Second", actor="bob")
        _wait_until_caught_up(url, part)
    finally:
        part.stop()  # re-raises what ended the runner, if anything did
        runner.close()
    assert {r[0] for r in _rows(url, "SELECT id FROM rm_jobs")} == {bad, good}
    assert {r[0] for r in _rows(url, "SELECT id FROM rm_projects")} == {project, second}
    # the models that read a project's creation: the undecodable one is theirs to skip
    assert {m for m, *_ in _quarantine(url)} == {"catalogue", "history", "analytics_users",
                                                "analytics_platform"}


def test_a_damaged_schema_quarantines_nothing(prepared: Settings, studio: Studio) -> None:
    """A table dropped by hand fails every event alike: that is the database's fault, not an
    event's, so the runner stops as for an outage instead of skipping the whole log."""
    url = _url(prepared)
    runner = ProjectionRunner(url)
    try:
        with psycopg.connect(url) as conn:
            conn.execute("DROP TABLE rm_members")
        studio.create_project("P", actor="alice")
        with pytest.raises(psycopg.errors.UndefinedTable):
            runner.catch_up()
    finally:
        runner.close()
    assert _quarantine(url) == []
    assert _positions(url)["catalogue"] == 0


def test_readiness_is_degraded_while_a_model_lags_past_the_threshold(
        prepared: Settings, studio: Studio, client: TestClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from api.routes import health

    url = _url(prepared)
    monkeypatch.setattr(health, "LAG_DEGRADED_EVENTS", 3)
    project = studio.create_project("P", actor="alice")
    for i in range(3):
        studio.rename_project(project, f"P{i}", actor="alice")
    head = _head(url)
    assert head > 3
    behind = client.get("/readyz")  # no runner: every model is the whole log behind
    assert behind.status_code == 200, behind.text
    body = behind.json()
    assert body["status"] == "degraded", body
    check = body["checks"]["projections"]
    assert check["lag"] == {name: head for name in READ_MODEL_NAMES}
    assert check["lag_threshold"] == 3

    runner = ProjectionRunner(url)
    try:
        runner.catch_up()
    finally:
        runner.close()
    caught_up = client.get("/readyz").json()
    assert caught_up["status"] == "ready", caught_up
    assert set(caught_up["checks"]["projections"]["lag"].values()) == {0}


def test_a_stored_scene_edit_with_a_non_map_object_stops_no_read_model(
        prepared: Settings, studio: Studio) -> None:
    """Issue 19, reproduction 2 as old stored data: ``objects.set('evil', Uint8Array)`` made
    the scene model crash-loop. Now it is applied without the object, or quarantined."""
    url = _url(prepared)
    project = studio.create_project("P", actor="alice")
    studio.edit_scene(project, {"chair": {"name": "chair"}}, actor="alice", origin="test")
    doc: Doc[Any] = Doc()
    doc.apply_update(studio.scene(project).state)
    before = doc.get_state()
    objects = doc.get("objects", type=Map)
    objects["evil"] = b"\x01\x02\x03"  # a stock Yjs client's Uint8Array, stored as it came
    objects["number"] = 3.5
    bad = studio.append_scene_updates(project, [(doc.get_update(before), "mallory", "test")])
    studio.edit_scene(project, {"table": {"name": "table"}}, actor="alice", origin="test")
    other = studio.create_project("Other", actor="bob")

    runner = ProjectionRunner(url)
    try:
        runner.catch_up()
    finally:
        runner.close()

    assert set(_positions(url).values()) == {_head(url)}
    assert {r[0] for r in _rows(url, "SELECT object_id FROM rm_scene_objects")} == {
        "chair", "table"}
    assert {(m, p) for m, p, *_ in _quarantine(url)} <= {("scene_objects", bad)}
    assert {r[0] for r in _rows(url, "SELECT id FROM rm_projects")} == {project, other}
    assert _rows(url, "SELECT actor FROM rm_timeline WHERE position = %s", bad) == [
        ("mallory",)]


def test_text_with_nul_from_old_events_is_stored_with_a_replacement_character(
        prepared: Settings, studio: Studio) -> None:
    """PostgreSQL text and jsonb cannot hold U+0000, which a stored event may."""
    url = _url(prepared)
    project = studio.create_project("P", actor="alice")
    job = studio.request_job(project, MESH_REPAIR, {"asset_id": str(uuid.uuid4())},
                             {"note\x00": "a\x00b"}, actor="mal\x00lory")

    runner = ProjectionRunner(url)
    try:
        runner.catch_up()
    finally:
        runner.close()

    assert _quarantine(url) == []
    assert _rows(url, "SELECT params, requested_by FROM rm_jobs WHERE id = %s", job) == [
        ({"note\ufffd": "a\ufffdb"}, "mal\ufffdlory")]
    assert _rows(url, "SELECT actor FROM rm_timeline WHERE kind = 'Job.Requested'") == [
        ("mal\ufffdlory",)]


def test_a_rebuild_quarantines_again_what_still_fails_and_releases_the_rest(
        prepared: Settings, studio: Studio, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _url(prepared)
    project = studio.create_project("P", actor="alice")
    bad = studio.invite(project, "mallory", Role.VIEWER, actor="alice")
    monkeypatch.setattr(catalogue, "_member", _refusing_mallory(catalogue._member))
    runner = ProjectionRunner(url, batch_size=2)
    try:
        runner.catch_up()
        assert [(m, p) for m, p, *_ in _quarantine(url)] == [("catalogue", bad)]
        runner.rebuild("catalogue")  # still broken: the same event, quarantined once
        assert _rows(url, "SELECT model, position, attempts FROM rm_quarantine") == [
            ("catalogue", bad, 1)]
        monkeypatch.undo()
        runner.rebuild("catalogue")
    finally:
        runner.close()
    assert _quarantine(url) == []
    assert _members(url, project) == {"alice", "mallory"}
