"""The Yjs client harness itself, proven against the reference y-websocket server.

Real yjs + y-websocket clients (tests/node/peer.mjs) talk to ``@y/websocket-server``; the
studio's own CRDT tests reuse the same harness against the studio server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from websockets.sync.server import ServerConnection, serve

from tests.yjs_clients import (
    YjsPeerError,
    YjsPeers,
    ensure_node_modules,
    reference_server,
    wait_converged,
)

CLIENTS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    ensure_node_modules()
    with reference_server() as url:
        yield f"{url}/ws/projects"


@pytest.fixture
def peers() -> Iterator[YjsPeers]:
    with YjsPeers() as peers:
        yield peers


def test_three_clients_converge_across_offline_edits(server_url: str, peers: YjsPeers) -> None:
    for name in CLIENTS:
        peers.connect(name, server_url, "project-1", token="t0k", wait=True)

    # "shared" exists everywhere before the concurrent edits: two clients that both create the
    # same object concurrently each make their own Y.Map, and one of them (with its fields) loses.
    peers.set_fields("a", "shared", {"transform": [1, 0, 0, 0, 1, 0, 0, 0, 1], "blob": None})
    wait_converged(peers, CLIENTS)
    for name in CLIENTS:  # concurrent: nobody waits for the others' edits
        peers.set(name, f"obj-{name}", "name", f"made by {name}")
        peers.set(name, "shared", name, name.upper())
    objects = wait_converged(peers, CLIENTS)
    assert objects["obj-b"] == {"name": "made by b"}
    assert objects["shared"] == {
        "a": "A",
        "b": "B",
        "c": "C",
        "transform": [1, 0, 0, 0, 1, 0, 0, 0, 1],
        "blob": None,
    }

    peers.disconnect("c")
    assert peers.state("c")["status"] == "disconnected"
    peers.set("c", "offline", "name", "edited offline")
    peers.delete("c", "obj-a")
    peers.set("a", "online", "name", "edited while c was away")
    online = wait_converged(peers, ["a", "b"])
    assert "offline" not in online and "online" in online and "obj-a" in online

    peers.reconnect("c")
    peers.wait_synced("c")
    objects = wait_converged(peers, CLIENTS)
    assert objects["offline"] == {"name": "edited offline"}
    assert objects["online"] == {"name": "edited while c was away"}
    assert "obj-a" not in objects
    assert peers.state("a")["synced"] and peers.close_info("c")["code"] is None  # c closed itself


def test_rooms_are_separate(server_url: str, peers: YjsPeers) -> None:
    peers.connect("a", server_url, "project-x", wait=True)
    peers.connect("b", server_url, "project-y", wait=True)
    peers.set("a", "o1", "name", "only in x")
    peers.connect("a2", server_url, "project-x", wait=True)
    assert wait_converged(peers, ["a", "a2"]) == {"o1": {"name": "only in x"}}
    assert peers.state("b")["objects"] == {}


def test_awareness_propagates(server_url: str, peers: YjsPeers) -> None:
    ids = {name: peers.connect(name, server_url, "project-aw", wait=True) for name in CLIENTS}
    for name in CLIENTS:
        peers.awareness(name, {"user": name, "cursor": [1, 0]})
    expected = {ids[name]: {"user": name, "cursor": [1, 0]} for name in CLIENTS}
    _poll(lambda: all(peers.awareness_states(name) == expected for name in CLIENTS))

    peers.disconnect("b")  # a clean disconnect tells the others b has left
    _poll(lambda: ids["b"] not in peers.awareness_states("a"))


def test_errors_are_replies_not_crashes(peers: YjsPeers) -> None:
    with pytest.raises(YjsPeerError, match="no client named"):
        peers.state("nobody")
    assert peers.send({"cmd": "nonsense"}, check=False) == {
        "ok": False,
        "error": 'unknown command "nonsense"',
    }
    peers.send({"cmd": "ping"})  # still alive


def test_close_info_records_refused_connections(peers: YjsPeers) -> None:
    with reference_server() as url:
        peers.connect("a", f"{url}/ws/projects", "p", wait=True)
    # the server is gone: the client sees the socket close and keeps retrying
    _poll(lambda: peers.close_info("a")["closes"] >= 1)
    info = peers.close_info("a")
    assert info["code"] == 1006 and info["status"] == "disconnected" and info["terminal"] is None


def test_close_info_records_server_close_code_and_reason(peers: YjsPeers) -> None:
    def refuse(ws: ServerConnection) -> None:
        ws.close(4403, "forbidden")

    with serve(refuse, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.socket.getsockname()[1]
        peers.connect("a", f"ws://127.0.0.1:{port}/ws/projects", "p", token="bad")
        _poll(lambda: peers.close_info("a")["terminal"] is not None)
        info = peers.close_info("a")
        server.shutdown()
    assert (info["code"], info["reason"], info["closes"]) == (4403, "forbidden", 1)
    assert info["terminal"] == {"code": 4403, "reason": "forbidden"}  # 44xx: no reconnect


def _poll(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
