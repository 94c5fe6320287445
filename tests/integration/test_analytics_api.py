"""A scripted day of use (sign-ins, a failed one, a project shared, generations that succeed
and fail, a style and a material, a download, a socket session) shows in the analytics
endpoints: a user's own figures, an admin's view of them, and the platform's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from core.events.job_kinds import GENERATE, MESH_MATERIAL, MESH_STYLE
from core.events.studio import Studio
from core.projections.runner import ProjectionRunner
from core.settings import Settings
from infra.admin import create_user
from tests.integration.conftest import BackgroundPart
from tests.integration.helpers import box_stl, poll

TODAY = datetime.now(UTC).date()  # for the refused periods, which stay refused on any day
# What the day's routes read (projects, members, assets), and the analytics.
MODELS = ("catalogue", "jobs", "user_tiers", "analytics_users", "analytics_platform")


@pytest.fixture
def projections(prepared: Settings) -> Iterator[Settings]:
    """The read models following the log; no dispatcher or worker: the test plays them."""
    assert prepared.database_url is not None
    runner = ProjectionRunner(prepared.database_url, names=MODELS)
    part = BackgroundPart("projections", runner.run)
    yield prepared
    part.stop()
    runner.close()


def _token(client: TestClient, username: str) -> dict[str, str]:
    answer = client.post("/api/v1/auth/tokens",
                         json={"username": username, "password": f"{username}-secret-pw"})
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def _day_of_use(settings: Settings, client: TestClient) -> dict[str, Any]:
    assert settings.database_url is not None
    ids = {name: str(create_user(settings, name, f"{name}-secret-pw", is_admin=name == "root",
                                 email=None).id) for name in ("root", "alice", "bob")}
    heads = {name: _token(client, name) for name in ids}
    assert client.post("/api/v1/auth/tokens", json={"username": "alice", "password": "nope"}
                       ).status_code == 401
    project = client.post("/api/v1/projects", json={"name": "Day"},
                          headers=heads["alice"]).json()["id"]
    assert client.post(f"/api/v1/projects/{project}/invite", json={"user": "bob",
                       "role": "editor"}, headers=heads["alice"]).status_code in (200, 201)
    mesh = client.post(f"/api/v1/projects/{project}/assets", params={"filename": "box.stl"},
                       content=box_stl(), headers=heads["alice"])
    assert mesh.status_code == 201, mesh.text
    exported = poll(lambda: client.get(f"/api/v1/meshes/{mesh.json()['id']}/export",
                                       params={"format": "obj"}, headers=heads["alice"]),
                    lambda r: r.status_code != 404)
    assert exported.status_code == 200, exported.text
    with client.websocket_connect(f"/ws/projects/{project}", headers=heads["bob"]) as ws:
        ws.receive_bytes()  # the server's sync step 1: bob is in the room
    studio = Studio.connect(settings.database_url)
    try:
        alice = ids["alice"]
        done = studio.request_job(UUID(project), GENERATE, {"asset_id": "img-1"},
                                  {"backend": "inflate", "face_budget": 5000}, alice)
        studio.start_job(done, "gpu-1", "cpu")
        studio.complete_stage(done, "final", None, {"seconds": 2.5, "device": "cpu"})
        studio.succeed_job(done, {})
        failed = studio.request_job(UUID(project), GENERATE, {"asset_id": "img-2"},
                                    {"backend": "inflate", "face_budget": 5000}, alice)
        studio.fail_job(failed, "out of memory", retryable=False, actor="gpu-1")
        same = {"backend": "inflate", "face_budget": 5000}
        studio.reuse_job(done, UUID(project), {"asset_id": "img-1"}, same, alice)  # a hit
        running = studio.request_job(UUID(project), GENERATE, {"asset_id": "img-3"}, same,
                                     alice)
        studio.start_job(running, "gpu-1", "cpu")
        studio.reuse_job(running, UUID(project), {"asset_id": "img-3"}, same, alice)  # joins
        studio.complete_stage(running, "final", None, {"seconds": 1.0, "device": "cpu"})
        studio.succeed_job(running, {})
        studio.request_job(UUID(project), MESH_STYLE, {"asset_id": "m"},
                           {"style": "low_poly"}, alice)
        studio.request_job(UUID(project), MESH_MATERIAL, {"asset_id": "m"},
                           {"material": "wood"}, ids["bob"])
    finally:
        studio.close()
    return {"ids": ids, "project": project}


def _today() -> date:
    return datetime.now(UTC).date()


def test_a_day_of_use_shows_in_the_analytics(projections: Settings) -> None:
    """The day is the UTC day the test runs on, or the two days either side of a midnight it
    runs across (CI once started a run on one day and reached this test on the next)."""
    app_settings = projections
    first = _today()
    with TestClient(create_app(app_settings)) as client:
        day = _day_of_use(app_settings, client)
    # The first process has stopped: it stored its last minute of request counts.
    with TestClient(create_app(app_settings)) as client:
        root, alice = _token(client, "root"), _token(client, "alice")
        mine = poll(lambda: client.get("/api/v1/me/analytics", headers=alice).json(),
                    lambda a: a.get("sign_ins") == 2)  # the second process's stored too
        assert mine["username"] == "alice"
        assert mine["projects_created"] == 1
        assert (mine["generations"], mine["generations_succeeded"]) == (5, 4)
        assert mine["success_rate"] == 0.8
        assert mine["average_generation_s"] is not None and mine["average_generation_s"] >= 0
        assert mine["favourite"] == {"generator": "inflate", "face_budget": 5000,
                                     "style": "low_poly"}
        assert mine["materials"] == []  # bob's
        assert mine["exports_by_format"] == [{"name": "obj", "uses": 1}]
        assert mine["shared_projects"] == 1
        assert mine["sign_ins"] == 2  # this process's and the first one's

        theirs = client.get("/api/v1/admin/analytics/users/alice", headers=root)
        assert theirs.status_code == 200, theirs.text
        assert theirs.json() == mine
        bob = client.get("/api/v1/admin/analytics/users/bob", headers=root).json()
        assert bob["sessions"] == 1 and bob["active_s"] >= 0
        assert bob["materials"] == [{"name": "wood", "uses": 1}]

        refused = client.get("/api/v1/admin/analytics/users/alice", headers=alice)
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert client.get("/api/v1/admin/analytics/users/nobody",
                          headers=root).status_code == 404

        platform = client.get("/api/v1/admin/analytics/platform", headers=root)
        assert platform.status_code == 200, platform.text
        figures = platform.json()
        last = _today()  # after every answer that ends today by default
        days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
        assert mine["to"] in days and mine["days"]
        assert {d["day"] for d in mine["days"]} <= set(days)
        totals = figures["totals"]
        assert (totals["generations"], totals["generations_succeeded"],
                totals["generations_failed"]) == (5, 4, 1)
        assert totals["mesh_jobs"] == 2 and totals["success_rate"] == 0.8
        assert totals["sign_ins"] == 5 and totals["failed_sign_ins"] == 1
        assert totals["projects_created"] == 1 and totals["exports"] == 1
        assert totals["gpu_s"] == 3.5  # the runs' reports; the reuses ran nothing
        assert figures["gpu"]["by_device"] == [{"device": "cpu", "seconds": 3.5, "reports": 2}]
        assert figures["dedup"] == {"requests": 5, "hits": 1, "joins": 1, "hit_rate": 0.4,
                                    "saved_gpu_s": 3.5}
        assert figures["active_users"]["period"] == 3
        if len(days) == 1:  # across a midnight, some were active only on the first day
            assert figures["active_users"]["daily"] == 3
        assert len(figures["series"]) == 30
        assert sum(p["generations"] for p in figures["series"][-len(days):]) == 5
        assert figures["top_generators"] == [{"name": "inflate", "uses": 5}]
        assert figures["trending_styles"][0] == {"name": "low_poly", "uses": 1, "previous": 0,
                                                 "change": 1}
        assert figures["top_materials"] == [{"name": "wood", "uses": 1}]
        tokens = next(r for r in figures["routes"] if r["route"] == "POST /api/v1/auth/tokens")
        # the first process's four, and the second's two once a minute has ended since them
        assert tokens["requests"] in (4, 6) and tokens["client_errors"] == 1, tokens
        # by day, the routes' errors (the dashboard's errors-by-route over time)
        errors = {e["start"]: (e["client_errors"], e["server_errors"])
                  for e in figures["route_errors"] if e["route"] == "POST /api/v1/auth/tokens"}
        assert set(errors) <= {f"{day}T00:00:00+00:00" for day in days}, errors
        assert [sum(n) for n in zip(*errors.values(), strict=True)] == [1, 0], errors
        assert any(g["group"] == "projects" and g["p95_ms"] is not None
                   for g in figures["response_times"])
        assert {t["tier"]: t["users"] for t in figures["tiers"]}["free"] == 3
        hourly = client.get("/api/v1/admin/analytics/platform", headers=root,
                            params={"bucket": "hour", "from": days[0], "to": days[-1]}).json()
        assert len(hourly["series"]) == 24 * len(days)
        assert "route_errors" not in hourly  # routes are counted by day
        assert sum(p["generations"] for p in hourly["series"]) == 5
        assert day["project"]


BAD_PERIODS: list[tuple[str, dict[str, Any]]] = [
    ("/api/v1/me/analytics", {"from": "2026-13-01"}),
    ("/api/v1/me/analytics", {"to": "yesterday"}),
    ("/api/v1/me/analytics", {"from": TODAY.isoformat(),
                              "to": (TODAY - timedelta(days=1)).isoformat()}),
    ("/api/v1/me/analytics", {"from": (TODAY - timedelta(days=400)).isoformat()}),
    ("/api/v1/admin/analytics/users/root", {"from": "20261201"}),
    ("/api/v1/me/analytics", {"to": "9999-12-31"}),  # the day after overflowed: a 500
    ("/api/v1/me/analytics", {"to": "0001-01-05"}),  # the default start underflowed
    ("/api/v1/me/analytics", {"from": "2026-W49-1"}),  # an ISO week date, no day
    ("/api/v1/me/analytics", {"from": "2026-335"}),  # an ordinal date
    ("/api/v1/me/analytics", {"to": "\uff12\uff10\uff12\uff16-12-01"}),  # fullwidth digits
    ("/api/v1/me/analytics", {"to": ["2026-12-07", "2026-12-06"]}),  # which one?
    ("/api/v1/admin/analytics/platform", {"bucket": "week"}),
    ("/api/v1/admin/analytics/platform", {"bucket": ""}),
    ("/api/v1/admin/analytics/platform", {"bucket": ["hour", "day"]}),
    ("/api/v1/admin/analytics/platform", {"bucket": "hour",
                                          "from": (TODAY - timedelta(days=40)).isoformat()}),
]


def test_bad_periods_are_refused(prepared: Settings) -> None:
    create_user(prepared, "root", "root-secret-pw", is_admin=True, email=None)
    with TestClient(create_app(prepared)) as client:
        root = _token(client, "root")
        for path, params in BAD_PERIODS:
            answer = client.get(path, params=params, headers=root)
            assert answer.status_code == 422, (path, params, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
