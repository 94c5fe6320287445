"""The scene schema, enforced at the socket against stock Yjs clients, and read around in scenes
stored before it was.

Reproductions (issue 19): a stock client's ``objects.set('evil', new Uint8Array(...))`` was
stored and stopped the scene projection for good; a sub-document, an XmlFragment or arrays
nested 3,000 deep made ``GET .../state`` and revert answer 500 for everyone in the project; a
frame of 300,000 ``0xff`` bytes held the event loop for 17.9 s, and long varints closed the
socket with 1000 instead of 4400.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from pycrdt import Array, Doc, Map, XmlFragment
from starlette.testclient import TestClient
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from core.events.studio import Studio
from core.scene import scene_schema
from core.settings import Settings
from tests.integration import test_yjs_interop as interop
from tests.integration.helpers import poll as poll_until
from tests.integration.test_yjs_interop import (
    ApiNode,
    make_project,
    make_user,
    poll,
    stored_events,
)
from tests.yjs_clients import YjsPeers, wait_converged

peers = interop.peers  # the fixtures, shared with the interop tests
start_node = interop.start_node

HOSTILE = {  # what a stock client puts under an object id, and what the refusal names
    "bytes": "binary value",
    "subdoc": "sub-document",
    "xml": "XML_FRAGMENT",
    "deep": "nested deeper",
}


def stored_document(settings: Settings, project_id: str) -> Doc:
    """Every stored update of the project's scene, replayed into a fresh document."""
    doc: Doc = Doc()
    for event in stored_events(settings, project_id):
        doc.apply_update(event.update)
    return doc


def assert_conforms(doc: Doc) -> None:
    """Nothing the scene schema refuses is in ``doc``."""
    assert set(doc.keys()) <= {"objects", "meta"}, set(doc.keys())
    for object_id, value in doc.get("objects", type=Map).items():
        assert scene_schema.object_problem(value) is None, object_id
    for key, value in doc.get("meta", type=Map).items():
        assert scene_schema.meta_problem(value) is None, key


def closed_with(peers: YjsPeers, client: str) -> dict[str, Any]:
    return poll(lambda: (info := peers.close_info(client))["code"] is not None and info,
                what=f"{client}'s socket closed")


def test_a_stock_client_cannot_store_what_the_scene_cannot_hold(
        prepared: Settings, start_node: Callable[[str], ApiNode], peers: YjsPeers) -> None:
    node = start_node("n1")
    alice, bob, mallory = (make_user(prepared, node, n) for n in ("alice", "bob", "mallory"))
    project = make_project(node, alice, {bob: "editor", mallory: "editor"})
    peers.connect("a", node.ws, project, token=alice.token, wait=True)
    peers.connect("b", node.ws, project, token=bob.token, wait=True)
    peers.set_fields("a", "lamp", {"name": "lamp", "visible": True})
    wait_converged(peers, ["a", "b"])

    for step, (kind, named) in enumerate(HOSTILE.items()):
        hostile = f"m-{kind}"
        peers.connect(hostile, node.ws, project, token=mallory.token, wait=True)
        peers.set_hostile(hostile, "evil", kind)
        closed = closed_with(peers, hostile)
        assert closed["code"] == 4400 and named in closed["reason"], closed
        peers.close_client(hostile)
        # the room carries on: an edit of Alice's reaches Bob, and nothing of Mallory's
        peers.set("a", "lamp", "name", f"lamp {step}")
        objects = wait_converged(peers, ["a", "b"])
        assert objects == {"lamp": {"name": f"lamp {step}", "visible": True}}

    stored = stored_document(prepared, project)
    assert_conforms(stored)
    assert stored.get("objects", type=Map).to_py() == {"lamp": {"name": "lamp 3",
                                                               "visible": True}}
    state = node.call("GET", f"/api/v1/projects/{project}/state", bob.token)
    assert state.status_code == 200, state.text
    assert state.json()["scene"]["objects"] == {"lamp": {"name": "lamp 3", "visible": True}}


def _closed_by_server(url: str, frame: bytes) -> tuple[int, str]:
    """Send one raw frame on a fresh socket; the close code and reason that answer it."""
    with ws_connect(url, max_size=None, open_timeout=10) as ws:
        ws.send(frame)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=30)
    assert closed.value.rcvd is not None, "the server sent no close frame"
    return closed.value.rcvd.code, closed.value.rcvd.reason


@pytest.mark.parametrize("frame", [
    pytest.param(b"\xff" * 300_000 + b"\x01", id="300 KB varint"),
    pytest.param(b"\xff" * 5_000 + b"\x01", id="message type of 5,000 bytes"),
    pytest.param(b"\x00\x02" + b"\xff" * 5_000 + b"\x01", id="update length of 5,000 bytes"),
])
def test_a_frame_with_a_long_varint_closes_its_socket_with_4400(
        prepared: Settings, start_node: Callable[[str], ApiNode], peers: YjsPeers,
        frame: bytes) -> None:
    """The value of such a varint had more digits than Python prints: the error message
    itself failed, and the socket closed with 1000 as if all was well."""
    node = start_node("n1")
    alice, mallory = make_user(prepared, node, "alice"), make_user(prepared, node, "mallory")
    project = make_project(node, alice, {mallory: "viewer"})
    peers.connect("a", node.ws, project, token=alice.token, wait=True)
    peers.connect("b", node.ws, project, token=alice.token, wait=True)
    code, reason = _closed_by_server(f"{node.ws}/{project}?token={mallory.token}", frame)
    where = frame.index(b"\xff")
    assert (code, reason) == (4400, f"a varint longer than 10 bytes at byte {where}")
    peers.set("a", "lamp", "name", "lamp")
    assert wait_converged(peers, ["a", "b"]) == {"lamp": {"name": "lamp"}}


# -- scenes stored before the schema ------------------------------------------------------------


def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


def _old_bad_update() -> bytes:
    """What stock clients stored before the room checked edits."""
    doc: Doc = Doc()
    objects = doc.get("objects", type=Map)
    objects["chair"] = Map({"name": "chair", "visible": True, "thumbnail": b"\x89PNG",
                            "tower": _deep(3_000)})
    objects["evil"] = b"\x01\x02\x03"
    objects["sub"] = Doc()
    objects["xml"] = XmlFragment()
    objects["deep"] = Array([_deep(3_000)])
    doc.get("meta", type=Map)["deep"] = _deep(3_000)
    return doc.get_update()


def test_a_scene_stored_before_the_schema_still_shows_reverts_and_projects(
        client: TestClient, pipeline: Settings, make_account: Callable[..., Any]) -> None:
    owner = make_account("hana")
    project_id = client.post("/api/v1/projects", json={"name": "old"},
                             headers=owner.headers).json()["id"]
    url = f"/api/v1/projects/{project_id}"
    assert pipeline.database_url is not None
    studio = Studio.connect(pipeline.database_url)
    try:
        pid = uuid.UUID(project_id)
        studio.edit_scene(pid, {"lamp": {"name": "lamp"}}, actor=owner.user_id, origin="t")
        before = client.post(f"{url}/versions", json={"message": "clean"},
                             headers=owner.headers).json()
        studio.append_scene_updates(pid, [(_old_bad_update(), owner.user_id, "ws")])
        tagged = client.post(f"{url}/versions", json={"message": "bad"},
                             headers=owner.headers).json()
    finally:
        studio.close()

    expected = {"lamp": {"name": "lamp"}, "chair": {"name": "chair", "visible": True}}

    def state() -> dict[str, Any]:
        response = client.get(f"{url}/state", headers=owner.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    # the scene projection gets past the bad event, to the version tagged after it
    model = poll_until(lambda: _scene_rows(pipeline, project_id), lambda rows: "chair" in rows)
    assert model == {"lamp": "lamp", "chair": "chair"}
    assert state()["scene"] == {"objects": expected, "meta": {}}
    at = client.get(f"{url}/state?version={tagged['version_id']}", headers=owner.headers)
    assert at.status_code == 200 and at.json()["scene"]["objects"] == expected, at.text
    diff = client.get(f"{url}/versions/diff?from={before['position']}&to={tagged['position']}",
                      headers=owner.headers)
    assert diff.status_code == 200, diff.text

    reverted = client.post(f"{url}/versions/{before['version_id']}/revert",
                           headers=owner.headers)
    assert reverted.status_code == 200, reverted.text
    assert reverted.json()["scene"]["objects"] == {"lamp": {"name": "lamp"}}
    studio = Studio.connect(pipeline.database_url)
    try:
        doc: Doc = Doc()
        doc.apply_update(studio.scene(uuid.UUID(project_id)).state)
        assert_conforms(doc)  # the revert took out what does not conform
    finally:
        studio.close()


def _scene_rows(settings: Settings, project_id: str) -> dict[str, str]:
    """The scene projection's objects of the project: id → name."""
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url) as db:
        rows = db.execute("SELECT object_id, name FROM rm_scene_objects WHERE project_id = %s",
                          (project_id,)).fetchall()
    return dict(rows)
