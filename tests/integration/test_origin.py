"""Another site's page may not use a signed-in browser's session cookie to change anything
(reproduction 4 of issue 19): not on the scene socket, not with an unsafe HTTP method."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pycrdt import Doc, Map
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from api.app import create_app
from core.collab import protocol
from core.events.studio import Studio
from core.scene import document
from core.settings import Settings
from tests.integration.helpers import event_topics

EVIL = "http://evil.example"
OWN = "http://testserver"  # the TestClient's Host


@pytest.fixture
def signed_in(client: TestClient, make_account) -> tuple[str, dict[str, str]]:
    """A project of Olga's, and the client holding her browser session cookie."""
    olga = make_account("olga")
    project_id = client.post("/api/v1/projects", json={"name": "Atelier"},
                             headers=olga.headers).json()["id"]
    login = client.post("/api/v1/auth/session",
                        json={"username": "olga", "password": olga.password})
    assert login.status_code == 201, login.text
    return project_id, olga.headers


def _scene_objects(settings: Settings, project_id: str) -> dict[str, object]:
    assert settings.database_url is not None
    studio = Studio.connect(settings.database_url)
    try:
        objects: dict[str, object] = document.snapshot(
            studio.scene(uuid.UUID(project_id)).state)["objects"]
        return objects
    finally:
        studio.close()


def _edit_frame(object_id: str) -> bytes:
    doc = Doc()
    objects = doc.get("objects", type=Map)
    objects[object_id] = Map({"name": object_id})
    return protocol.update(doc.get_update())


def _sync(ws) -> None:  # type: ignore[no-untyped-def]
    """Answer the server's sync step 1 and wait for its step 2: the socket is in the room."""
    first = protocol.parse(ws.receive_bytes())
    assert isinstance(first, protocol.SyncStep1)
    ws.send_bytes(protocol.sync_step2(Doc().get_update(first.state_vector)))
    ws.send_bytes(protocol.sync_step1(Doc().get_state()))
    while not isinstance(protocol.parse(ws.receive_bytes()), protocol.SyncStep2):
        pass


def test_a_foreign_page_cannot_open_the_scene_socket_with_the_cookie(
        client: TestClient, prepared: Settings, signed_in):
    project_id, _ = signed_in
    url = f"/ws/projects/{project_id}"
    with client.websocket_connect(url, headers={"Origin": EVIL}) as ws, \
            pytest.raises(WebSocketDisconnect) as closed:
        ws.send_bytes(_edit_frame("hijacked"))  # sent at once, before any answer
        ws.receive_bytes()
    assert closed.value.code == protocol.CloseCode.FORBIDDEN
    assert "evil.example" in closed.value.reason
    with client.websocket_connect(url, headers={"Origin": OWN}) as ws:
        _sync(ws)
        ws.send_bytes(_edit_frame("mine"))
        ws.send_bytes(protocol.sync_step1(Doc().get_state()))  # answered once "mine" is stored
        while not isinstance(protocol.parse(ws.receive_bytes()), protocol.SyncStep2):
            pass
    assert _scene_objects(prepared, project_id) == {"mine": {"name": "mine"}}


def test_a_token_socket_is_not_checked_for_its_origin(client: TestClient, make_account):
    """Another site cannot make a browser send a token it does not know."""
    olga = make_account("olga")
    project_id = client.post("/api/v1/projects", json={"name": "A"},
                             headers=olga.headers).json()["id"]
    url = f"/ws/projects/{project_id}?token={olga.token}"
    with client.websocket_connect(url, headers={"Origin": EVIL}) as ws:
        _sync(ws)


def test_a_foreign_cookie_request_changes_nothing(client: TestClient, prepared: Settings,
                                                  signed_in):
    project_id, _ = signed_in
    before = event_topics(prepared)
    created = client.post("/api/v1/projects", json={"name": "Forged"}, headers={"Origin": EVIL})
    renamed = client.patch(f"/api/v1/projects/{project_id}", json={"name": "Forged"},
                           headers={"Origin": "null"})
    for refused in (created, renamed):
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    assert "ORFEAS_ALLOWED_ORIGINS" in created.json()["detail"]
    assert event_topics(prepared) == before
    # the studio's own page, and a client that sends no Origin at all (not a browser), may
    own = client.patch(f"/api/v1/projects/{project_id}", json={"name": "Own"},
                       headers={"Origin": OWN})
    assert own.status_code == 200, own.text
    assert client.post("/api/v1/projects", json={"name": "Script"}).status_code == 201


def test_a_bearer_client_may_send_any_origin(client: TestClient, signed_in):
    _, headers = signed_in
    client.cookies.clear()
    made = client.post("/api/v1/projects", json={"name": "Tool"},
                       headers=headers | {"Origin": EVIL})
    assert made.status_code == 201, made.text


def test_a_foreign_page_cannot_sign_the_browser_in(client: TestClient, make_account):
    olga = make_account("olga")
    login = client.post("/api/v1/auth/session", headers={"Origin": EVIL},
                        json={"username": "olga", "password": olga.password})
    assert login.status_code == 403
    assert "set-cookie" not in login.headers


@pytest.fixture
def listed_client(prepared: Settings) -> Iterator[TestClient]:
    settings = prepared.replace(allowed_origins=("https://studio.example.com",))
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_listed_origins_may_use_the_cookie(listed_client: TestClient, make_account):
    olga = make_account("olga")
    listed_client.post("/api/v1/auth/session",
                       json={"username": "olga", "password": olga.password})
    listed = listed_client.post("/api/v1/projects", json={"name": "Listed"},
                                headers={"Origin": "https://studio.example.com"})
    other = listed_client.post("/api/v1/projects", json={"name": "Other"},
                               headers={"Origin": "https://other.example.com"})
    assert listed.status_code == 201, listed.text
    assert other.status_code == 403
