"""Disabling an account closes its open scene sockets on every node, with 4403 and why (its
token stops working at once, but a socket checked it only when it opened). Two API instances
on one database and NATS; the projection runner lists the projects the user may open."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient, WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from api.app import create_app
from core.collab import protocol
from core.collab.protocol import CloseCode
from core.projections.runner import ProjectionRunner
from core.settings import Settings
from tests.integration.conftest import Account, BackgroundPart
from tests.integration.helpers import poll
from tests.integration.test_scene_socket import Client


@pytest.fixture
def second(prepared: Settings) -> Iterator[TestClient]:
    """Another API node on the same database and NATS, and the projection runner."""
    assert prepared.database_url is not None
    runner = ProjectionRunner(prepared.database_url)
    part = BackgroundPart("projections", runner.run)
    with TestClient(create_app(prepared), raise_server_exceptions=False) as other:
        yield other
    part.stop()
    runner.close()


def test_disabling_an_account_closes_its_scene_socket_on_another_node(
        client: TestClient, second: TestClient,
        make_account: Callable[..., Account]) -> None:
    admin, owner, vic = make_account("root", admin=True), make_account("olga"), make_account("vic")
    project = client.post("/api/v1/projects", json={"name": "S"}, headers=owner.headers)
    project_id = project.json()["id"]
    assert client.post(f"/api/v1/projects/{project_id}/invite", headers=owner.headers,
                       json={"user": "vic", "role": "editor"}).status_code == 201
    poll(lambda: client.get("/api/v1/projects", headers=vic.headers).json()["projects"],
         lambda listed: [p["id"] for p in listed] == [project_id])
    with second.websocket_connect(f"/ws/projects/{project_id}?token={vic.token}") as ws, \
            second.websocket_connect(f"/ws/projects/{project_id}?token={owner.token}") as kept:
        Client(ws).handshake()
        owners = Client(kept)
        owners.handshake()
        disabled = client.put("/api/v1/admin/users/vic/disabled", json={"disabled": True},
                              headers=admin.headers)
        assert disabled.status_code == 200, disabled.text
        closed = _closed(ws)
        assert closed.code == CloseCode.FORBIDDEN == 4403
        assert closed.reason == "your account was disabled"
        kept.send_bytes(protocol.sync_step1(owners.doc.get_state()))  # the others carry on
        owners.pump_until(lambda m: isinstance(m, protocol.SyncStep2))


def _closed(ws: WebSocketTestSession, tries: int = 100) -> WebSocketDisconnect:
    """The close the server sends (it comes over NATS, a moment after the answer): until it
    does, each probe (a sync step 1) is answered; after ``tries`` of them the test fails."""
    with pytest.raises(WebSocketDisconnect) as closed:
        for _ in range(tries):
            ws.send_bytes(protocol.sync_step1(b"\x00"))
            ws.receive_bytes()
            time.sleep(0.05)
    return closed.value
