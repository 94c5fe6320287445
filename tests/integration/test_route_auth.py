"""Every route in the app's table refuses anonymous and under-privileged callers.

The routes are enumerated from the application itself, so a route added later is covered
without touching this file; a route without a declared access rule fails the first test.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from api.app import routes
from api.auth import Access, Scope, access_of
from core.events.roles import Role
from core.settings import Settings
from tests.integration.helpers import box_stl, event_topics, poll

PARAM = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    access: Access

    def url(self, ids: dict[str, str]) -> str:
        return PARAM.sub(lambda m: ids[m.group(1)], self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def endpoints() -> Iterator[Endpoint]:
    for route in routes():
        if isinstance(route, WebSocketRoute):
            continue  # authenticated in the endpoint; see test_every_socket_refuses_anonymous
        assert isinstance(route, Route)
        access = access_of(route.endpoint)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            assert access is not None, f"{method} {route.path} declares no access rule"
            yield Endpoint(method, route.path, access)


ALL = list(endpoints())
GUARDED = [e for e in ALL if e.access.scope is not Scope.PUBLIC]


def test_every_route_declares_its_access():
    assert len(ALL) >= 15
    public = {str(e) for e in ALL if e.access.scope is Scope.PUBLIC}
    assert public == {"GET /healthz", "GET /readyz", "POST /api/v1/auth/tokens",
                      "POST /api/v1/auth/session", "GET /api/v1/openapi.json",
                      "GET /api/v1/docs"}


@pytest.fixture
def world(client: TestClient, pipeline: Settings, make_account) -> dict[str, object]:
    """An owner's project with a mesh and a job, plus a viewer, an editor and an outsider."""
    owner, viewer, editor, outsider = (make_account(n) for n in
                                       ("owner", "viewer", "editor", "outsider"))
    project = client.post("/api/v1/projects", json={"name": "W"}, headers=owner.headers).json()
    for who, role in ((viewer, "viewer"), (editor, "editor")):
        r = client.post(f"/api/v1/projects/{project['id']}/invite",
                        json={"user": who.username, "role": role}, headers=owner.headers)
        assert r.status_code == 201, r.text
    asset = client.post(f"/api/v1/projects/{project['id']}/assets?filename=m.stl",
                        content=box_stl(), headers=owner.headers).json()
    job = client.post(f"/api/v1/meshes/{asset['id']}/analysis", headers=owner.headers)
    assert job.status_code == 202, job.text
    job = job.json()
    ids = {"project_id": project["id"], "asset_id": asset["id"], "job_id": job["job_id"],
           "user_id": viewer.user_id, "version_id": str(uuid.uuid4()),
           "stage": "final", "operation": "repair", "username": viewer.username,
           "tier": "pro", "suggestion_id": str(uuid.uuid4())}
    poll(lambda: client.get(f"/api/v1/jobs/{job['job_id']}", headers=owner.headers).json(),
         lambda j: j["state"] == "succeeded")  # quiet from here on: no event arrives late
    return {"ids": ids, "viewer": viewer, "editor": editor, "outsider": outsider,
            "owner": owner}


def _call(client: TestClient, endpoint: Endpoint, ids: dict[str, str],
          headers: dict[str, str] | None = None):
    return client.request(endpoint.method, endpoint.url(ids), headers=headers or {},
                          json={} if endpoint.method in ("POST", "PATCH") else None)


def _is_problem(response, status: int) -> bool:
    return (response.status_code == status
            and response.headers["content-type"].startswith("application/problem+json")
            and response.json()["status"] == status)


def test_anonymous_and_forged_credentials_get_401(client: TestClient, world, pipeline):
    before = event_topics(pipeline)
    for endpoint in GUARDED:
        for headers in (None, {"Authorization": "Bearer orf_forged"},
                        {"Cookie": "orfeas_session=orf_forged"}):
            response = _call(client, endpoint, world["ids"], headers)
            assert _is_problem(response, 401), (str(endpoint), headers, response.text)
    assert event_topics(pipeline) == before


def _required(endpoint: Endpoint) -> Role | None:
    if endpoint.access.scope in (Scope.PROJECT, Scope.ASSET, Scope.JOB):
        return endpoint.access.role or Role.VIEWER
    return None


def test_members_below_the_required_role_get_403(client: TestClient, world, pipeline):
    before = event_topics(pipeline)
    checked = 0
    callers = [("outsider", None), ("viewer", Role.VIEWER), ("editor", Role.EDITOR)]
    for endpoint in GUARDED:
        required = _required(endpoint)
        for name, role in callers:
            allowed = (endpoint.access.scope is Scope.USER
                       or (required is not None and role is not None and role >= required))
            if allowed:
                continue
            response = _call(client, endpoint, world["ids"], world[name].headers)
            assert _is_problem(response, 403), (str(endpoint), name, response.text)
            checked += 1
    assert checked >= 12
    assert event_topics(pipeline) == before


def test_admin_routes_refuse_non_admins_and_admins_pass(client: TestClient, world,
                                                        make_account):
    admin = make_account("root", admin=True)
    body = {"username": "carol", "password": "carol-password"}
    refused = client.post("/api/v1/admin/users", json=body, headers=world["owner"].headers)
    assert _is_problem(refused, 403)
    created = client.post("/api/v1/admin/users", json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    # site administrators may read any project
    project = client.get(f"/api/v1/projects/{world['ids']['project_id']}", headers=admin.headers)
    assert project.status_code == 200


def test_session_cookie_signs_the_browser_in_and_out(client: TestClient, make_account):
    dora = make_account("dora")
    login = client.post("/api/v1/auth/session",
                        json={"username": "dora", "password": dora.password})
    assert login.status_code == 201
    assert "httponly" in login.headers["set-cookie"].lower()
    assert client.get("/api/v1/me").json()["username"] == "dora"
    assert client.delete("/api/v1/auth/session").status_code == 204
    client.cookies.clear()
    assert _is_problem(client.get("/api/v1/me"), 401)


def test_wrong_password_is_refused_the_same_way_as_an_unknown_user(client, make_account):
    make_account("erin")
    wrong = client.post("/api/v1/auth/tokens", json={"username": "erin", "password": "nope-nope"})
    unknown = client.post("/api/v1/auth/tokens", json={"username": "zed", "password": "nope-nope"})
    assert _is_problem(wrong, 401) and _is_problem(unknown, 401)
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_every_socket_refuses_anonymous_and_outsiders(client: TestClient, world):
    sockets = [r for r in routes() if isinstance(r, WebSocketRoute)]
    assert sockets
    for route in sockets:
        url = PARAM.sub(lambda m: world["ids"][m.group(1)], route.path)
        for query, code in (("", 4401), (f"?token={world['outsider'].token}", 4403)):
            with client.websocket_connect(url + query) as ws, \
                    pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_bytes()
            assert closed.value.code == code, (route.path, query)
