"""Stock Yjs clients (yjs + y-websocket in Node) against real API processes.

Every API node here is a real ``python -m infra.cli api`` process on a free port; the clients
are ``tests/node/peer.mjs``. What is stored is read back from the event log and replayed into a
fresh pycrdt document, so "stored before broadcast" and "stored once" are checked against the
log itself, not against what the server says about it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Map
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from core.events.scene import Scene
from core.events.studio import Studio
from core.scene import document
from core.settings import Settings
from infra.admin import create_user
from infra.embedded.ports import free_port
from tests.yjs_clients import (
    NODE_DIR,
    ROOT,
    YjsPeers,
    ensure_node_modules,
    wait_converged,
)

BOOT_TIMEOUT_S = 30.0


# -- real API processes -----------------------------------------------------------------------


class ApiNode:
    """One API node as its own process (``python -m infra.cli api``), restartable on its port."""

    def __init__(self, settings: Settings, log_dir: Path, name: str) -> None:
        self.settings = settings
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws = f"ws://127.0.0.1:{self.port}/ws/projects"
        self.log_path = log_dir / f"api-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=self.base, timeout=10.0)

    def start(self) -> ApiNode:
        assert self.process is None or self.process.poll() is not None
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "infra.cli", "api", "--host", "127.0.0.1",
                 "--port", str(self.port)],
                cwd=ROOT, env=os.environ | self.settings.to_env(),
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"API node {self.name} exited:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if self.http.get("/healthz", timeout=1.0).status_code == 200:
                    return self
            if time.monotonic() > deadline:
                raise AssertionError(f"API node {self.name} did not start:\n{self.log_tail()}")
            time.sleep(0.05)

    def signal(self, sig: int, timeout: float = 15.0) -> None:
        """Send ``sig`` and wait for the process to end (killing it if it lingers)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        self.signal(signal.SIGTERM, timeout=10.0)
        self.http.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any
             ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, path, headers=headers, **kwargs)


@dataclass(frozen=True)
class User:
    name: str
    user_id: str
    token: str


@pytest.fixture
def start_node(prepared: Settings, tmp_path: Path) -> Iterator[Callable[[str], ApiNode]]:
    """Starts API processes on ``prepared``; all of them are stopped after the test."""
    nodes: list[ApiNode] = []

    def start(name: str) -> ApiNode:
        node = ApiNode(prepared, tmp_path, name)
        nodes.append(node)
        return node.start()

    try:
        yield start
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture
def peers() -> Iterator[YjsPeers]:
    ensure_node_modules()
    with YjsPeers(timeout=20.0) as peers:
        yield peers


def make_user(settings: Settings, node: ApiNode, name: str) -> User:
    password = f"{name}-secret-pw"
    user = create_user(settings, name, password, is_admin=False, email=None)
    response = node.call("POST", "/api/v1/auth/tokens",
                         json={"username": name, "password": password})
    assert response.status_code == 201, response.text
    return User(name, str(user.id), response.json()["token"])


def make_project(node: ApiNode, owner: User, members: dict[User, str] | None = None) -> str:
    response = node.call("POST", "/api/v1/projects", owner.token, json={"name": "collab"})
    assert response.status_code == 201, response.text
    project_id: str = response.json()["id"]
    for member, role in (members or {}).items():
        invited = node.call("POST", f"/api/v1/projects/{project_id}/invite", owner.token,
                            json={"user": member.name, "role": role})
        assert invited.status_code == 201, invited.text
    return project_id


# -- the stored log ---------------------------------------------------------------------------


def stored_events(settings: Settings, project_id: str) -> list[Scene.Updated]:
    """Every ``Scene.Updated`` event of the project's scene, in log order."""
    assert settings.database_url is not None
    studio = Studio.connect(settings.database_url)
    try:
        events = studio.events.get(Scene.create_id(project_id))
        return [e for e in events if isinstance(e, Scene.Updated)]
    finally:
        studio.close()


def stored_snapshot(settings: Settings, project_id: str) -> dict[str, Any]:
    """The scene objects as the store's aggregate holds them (compaction included)."""
    assert settings.database_url is not None
    studio = Studio.connect(settings.database_url)
    try:
        objects: dict[str, Any] = document.snapshot(
            studio.scene(uuid.UUID(project_id)).state)["objects"]
        return objects
    finally:
        studio.close()


def replay(updates: list[bytes]) -> dict[str, Any]:
    """The ``objects`` map of a fresh pycrdt doc with every update applied, in order."""
    doc: Doc = Doc()
    for update in updates:
        doc.apply_update(update)
    objects: dict[str, Any] = doc.get("objects", type=Map).to_py() or {}
    return objects


_STRUCT_RANGES = """
import * as Y from 'yjs'
const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const updates = JSON.parse(Buffer.concat(chunks).toString())
const ranges = updates.map((b64) => Y.decodeUpdate(Buffer.from(b64, 'base64')).structs
  .filter((s) => !(s instanceof Y.Skip))
  .map((s) => [s.id.client, s.id.clock, s.length]))
process.stdout.write(JSON.stringify(ranges))
"""


def struct_ranges(updates: list[bytes]) -> list[list[tuple[int, int, int]]]:
    """For each update, the ``(client, clock, length)`` of the structs it carries (by yjs)."""
    payload = json.dumps([base64.b64encode(u).decode() for u in updates])
    result = subprocess.run(["node", "--input-type=module", "-e", _STRUCT_RANGES],
                            cwd=NODE_DIR, input=payload, capture_output=True, text=True,
                            timeout=60, check=True)
    return [[(c, k, n) for c, k, n in ranges] for ranges in json.loads(result.stdout)]


def duplicated_structs(events: list[Scene.Updated]) -> list[str]:
    """Clock ranges that more than one stored update carries, and gaps in a client's clocks.

    An update stored twice (or two updates sharing an edit) carry the same struct ids; the
    delete sets are not compared (every sync step 2 repeats the whole delete set, harmlessly).
    """
    def describe(index: int) -> str:
        e = events[index]
        return (f"#{index} (v{e.originator_version} by {e.actor[:8]} via {e.origin} at "
                f"{e.timestamp.strftime('%H:%M:%S.%f')})")

    problems = []
    by_client: dict[int, list[tuple[int, int, int]]] = {}
    for index, ranges in enumerate(struct_ranges([e.update for e in events])):
        for client, clock, length in ranges:
            by_client.setdefault(client, []).append((clock, clock + length, index))
    for client, spans in by_client.items():
        spans.sort()
        end, last = 0, -1
        for start, stop, index in spans:
            if start < end:
                problems.append(f"client {client}: clocks {start}..{min(stop, end)} of event "
                                f"{describe(index)} are also in {describe(last)}")
            elif start > end:
                problems.append(f"client {client}: clocks {end}..{start} were never stored")
            if stop > end:
                end, last = stop, index
    return problems


def check_log(settings: Settings, project_id: str, converged: dict[str, Any],
              context: str = "") -> None:
    """The stored updates replay to exactly ``converged``, and none duplicates another."""
    events = stored_events(settings, project_id)
    replayed = replay([e.update for e in events])
    assert replayed == converged, (
        f"{context}replaying {len(events)} stored updates differs from the clients:\n"
        f"stored  {json.dumps(replayed, sort_keys=True)}\n"
        f"clients {json.dumps(converged, sort_keys=True)}")
    problems = duplicated_structs(events)
    assert not problems, f"{context}stored log is not exactly-once: {problems[:10]}"


def poll(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.02)


# -- 1. interop through one node ----------------------------------------------------------------


def test_stock_clients_converge_through_one_node(prepared: Settings, start_node, peers) -> None:
    node = start_node("n1")
    alice, bob, carol = (make_user(prepared, node, n) for n in ("alice", "bob", "carol"))
    project = make_project(node, alice, {bob: "editor", carol: "editor"})
    tokens = {"a": alice.token, "b": bob.token, "c": carol.token}
    for name, token in tokens.items():
        peers.connect(name, node.ws, project, token=token, wait=True)

    peers.set_fields("a", "shared", {"name": "table", "visible": True})
    wait_converged(peers, tokens)
    for round_ in range(5):  # nobody waits for anybody
        for name in tokens:
            peers.set(name, f"obj-{name}", f"k{round_}", round_)
            peers.set(name, "shared", f"{name}{round_}", [round_, name])
    objects = wait_converged(peers, tokens, timeout=15)
    expected = {f"obj-{n}": {f"k{r}": r for r in range(5)} for n in tokens}
    expected["shared"] = {"name": "table", "visible": True,
                          **{f"{n}{r}": [r, n] for n in tokens for r in range(5)}}
    assert objects == expected

    # stored before anyone else saw it: converged means stored, no waiting
    assert stored_snapshot(prepared, project) == objects
    check_log(prepared, project, objects)

    peers.connect("d", node.ws, project, token=bob.token, wait=True)  # joins late
    assert peers.state("d")["objects"] == objects


# -- 2. two nodes -------------------------------------------------------------------------------


def test_two_nodes_converge_and_store_each_update_once(prepared: Settings, start_node,
                                                       peers) -> None:
    n1, n2 = start_node("n1"), start_node("n2")
    users = [make_user(prepared, n1, f"user{i}") for i in range(4)]
    project = make_project(n1, users[0], {u: "editor" for u in users[1:]})
    placement = {"a": (n1, users[0]), "b": (n1, users[1]), "c": (n2, users[2]),
                 "d": (n2, users[3])}
    for name, (node, user) in placement.items():
        peers.connect(name, node.ws, project, token=user.token, wait=True)

    peers.set_fields("a", "shared", {"name": "floor"})
    wait_converged(peers, placement)
    for round_ in range(6):
        for name in placement:
            peers.set(name, f"obj-{name}", f"k{round_}", round_)
            peers.set(name, "shared", name, round_)
        if round_ == 3:
            peers.delete("c", "obj-c", "k0")
    objects = wait_converged(peers, placement, timeout=15)
    assert objects["shared"] == {"name": "floor", "a": 5, "b": 5, "c": 5, "d": 5}
    assert objects["obj-c"] == {f"k{r}": r for r in range(1, 6)}
    # an edit bigger than a NATS message (1 MiB; test_fanout): the other node reads it from
    # the log, and the room that stored it carries on
    peers.set_fields("c", "poster", {"caption": "x" * 1_500_000})
    objects = wait_converged(peers, placement, timeout=15)
    assert len(objects["poster"]["caption"]) == 1_500_000
    peers.set("c", "shared", "after", 1)
    objects = wait_converged(peers, placement, timeout=15)
    assert objects["shared"]["after"] == 1
    check_log(prepared, project, objects)


# -- 3. roles ----------------------------------------------------------------------------------


def test_roles_over_stock_clients(prepared: Settings, start_node, peers) -> None:
    n1, n2 = start_node("n1"), start_node("n2")
    owner, editor, viewer, stranger = (make_user(prepared, n1, n)
                                       for n in ("olga", "ed", "vic", "stan"))
    project = make_project(n1, owner, {editor: "editor", viewer: "viewer"})
    peers.connect("o", n1.ws, project, token=owner.token, wait=True)
    peers.connect("e", n2.ws, project, token=editor.token, wait=True)
    peers.connect("v", n1.ws, project, token=viewer.token, wait=True)

    peers.set("o", "lamp", "name", "lamp")
    peers.set("e", "desk", "name", "desk")
    objects = wait_converged(peers, ["o", "e", "v"])
    assert set(objects) == {"lamp", "desk"}

    # a viewer's local edit is refused with a notice (a stock client logs the unknown message
    # type and carries on) and never stored
    peers.set("v", "graffiti", "name", "x")
    poll(lambda: "Unable to compute message" in peers.stderr_tail(), what="a notice")
    peers.set("o", "lamp", "visible", True)  # the viewer still receives edits afterwards
    poll(lambda: peers.state("v")["objects"].get("lamp", {}).get("visible") is True,
         what="viewer receives later edits")
    assert "graffiti" not in stored_snapshot(prepared, project)
    assert peers.state("v")["status"] == "connected"

    # refused connections: a close code, and no reconnect loop (44xx is terminal)
    peers.connect("s", n2.ws, project, token=stranger.token)
    peers.connect("anon", n1.ws, project)
    poll(lambda: peers.close_info("s")["terminal"] and peers.close_info("anon")["terminal"],
         what="refusals")
    assert peers.close_info("s")["code"] == 4403
    assert peers.close_info("anon")["code"] == 4401

    # removed on n1 while connected to n2: the socket is closed at once
    started = time.monotonic()
    removed = n1.call("DELETE", f"/api/v1/projects/{project}/collaborators/{editor.user_id}",
                      owner.token)
    assert removed.status_code == 204, removed.text
    poll(lambda: peers.close_info("e")["code"] == 4403, timeout=3, what="removal closes e")
    assert time.monotonic() - started < 3
    peers.set("e", "after-removal", "name", "nope")
    poll(lambda: peers.close_info("e")["terminal"], what="e stops reconnecting")
    peers.set("o", "final", "name", "f")
    poll(lambda: "final" in peers.state("v")["objects"], what="v sees final")
    assert not {"after-removal", "graffiti"} & set(stored_snapshot(prepared, project))


# -- 4. presence -------------------------------------------------------------------------------


def test_presence_across_nodes(prepared: Settings, start_node, peers) -> None:
    n1, n2 = start_node("n1"), start_node("n2")
    alice, bob, carol, dan = (make_user(prepared, n1, n) for n in ("alice", "bob", "carol", "dan"))
    project = make_project(n1, alice, {bob: "editor", carol: "viewer", dan: "editor"})
    placement = {"a": (n1, alice), "b": (n1, bob), "c": (n2, carol)}
    ids = {name: peers.connect(name, node.ws, project, token=user.token, wait=True)
           for name, (node, user) in placement.items()}
    for name in placement:
        peers.awareness(name, {"user": name, "cursor": [1, 2]})
    expected = {ids[n]: {"user": n, "cursor": [1, 2]} for n in placement}
    poll(lambda: all(peers.awareness_states(n) == expected for n in placement),
         what=f"everyone sees {expected}")

    def online(node: ApiNode) -> dict[str, bool]:
        response = node.call("GET", f"/api/v1/projects/{project}/collaborators", alice.token)
        assert response.status_code == 200, response.text
        return {c["username"]: c["online"] for c in response.json()["collaborators"]}

    everyone = {"alice": True, "bob": True, "carol": True, "dan": False}
    assert online(n1) == everyone and online(n2) == everyone

    peers.awareness("c", {"user": "c", "cursor": [3, 4]})  # an update crosses nodes too
    poll(lambda: peers.awareness_states("a").get(ids["c"]) == {"user": "c", "cursor": [3, 4]},
         what="updated cursor at a")

    peers.disconnect("c")
    poll(lambda: all(ids["c"] not in peers.awareness_states(n) for n in ("a", "b")),
         what="c's state gone")
    gone = {**everyone, "carol": False}
    poll(lambda: online(n1) == gone and online(n2) == gone, what="carol offline")

    peers.close_client("b")  # a client that just goes away (no goodbye message)
    poll(lambda: ids["b"] not in peers.awareness_states("a"), what="b's state gone")


# -- 5. durability ------------------------------------------------------------------------------


def test_sigkill_loses_no_acknowledged_edit(prepared: Settings, start_node, peers) -> None:
    node = start_node("n1")
    users = [make_user(prepared, node, f"user{i}") for i in range(5)]
    project = make_project(node, users[0], {u: "editor" for u in users[1:]})
    names = [f"c{i}" for i in range(5)]
    for name, user in zip(names, users, strict=True):
        peers.connect(name, node.ws, project, token=user.token, wait=True)

    def edit_round(step: int) -> None:
        for name in names:
            peers.set(name, f"obj-{name}", f"k{step}", step)

    for step in range(15):
        edit_round(step)
    node.signal(signal.SIGKILL)

    # whatever any client saw of another client's object is stored already
    stored = stored_snapshot(prepared, project)
    for name in names:
        seen = peers.state(name)["objects"]
        for other in names:
            if other != name:
                missing = {k: v for k, v in seen.get(f"obj-{other}", {}).items()
                           if stored.get(f"obj-{other}", {}).get(k) != v}
                assert not missing, f"{name} saw {other}'s {missing}, which was not stored"

    for step in range(15, 20):  # offline edits: kept locally, sent after reconnecting
        edit_round(step)
    node.start()
    for step in range(20, 25):
        edit_round(step)
    objects = wait_converged(peers, names, timeout=30)
    assert objects == {f"obj-{n}": {f"k{s}": s for s in range(25)} for n in names}
    check_log(prepared, project, objects)


# -- 6. per-user undo ----------------------------------------------------------------------------


def test_per_user_undo_and_redo_are_live(prepared: Settings, start_node, peers) -> None:
    node = start_node("n1")
    alice, bob = make_user(prepared, node, "alice"), make_user(prepared, node, "bob")
    project = make_project(node, alice, {bob: "editor"})
    peers.connect("a", node.ws, project, token=alice.token, wait=True)
    peers.connect("b", node.ws, project, token=bob.token, wait=True)

    peers.set_fields("a", "chair", {"name": "chair", "color": "red"})
    wait_converged(peers, ["a", "b"])
    peers.set_fields("b", "table", {"name": "table", "color": "blue"})
    wait_converged(peers, ["a", "b"])
    peers.set("a", "chair", "color", "green")  # alice's last change
    wait_converged(peers, ["a", "b"])
    peers.set("b", "table", "size", 2)  # bob's, after alice's
    before = wait_converged(peers, ["a", "b"])

    undone = node.call("POST", f"/api/v1/projects/{project}/operations/undo", alice.token)
    assert undone.status_code in (200, 201), undone.text
    after_undo = {"chair": {"name": "chair", "color": "red"},
                  "table": {"name": "table", "color": "blue", "size": 2}}
    poll(lambda: all(peers.state(n)["objects"] == after_undo for n in ("a", "b")),
         what="both clients see the undo")

    redone = node.call("POST", f"/api/v1/projects/{project}/operations/redo", alice.token)
    assert redone.status_code in (200, 201), redone.text
    poll(lambda: all(peers.state(n)["objects"] == before for n in ("a", "b")),
         what="both clients see the redo")
    check_log(prepared, project, before)


# -- 7. a client that stops reading ------------------------------------------------------------


class StalledClient:
    """A WebSocket client on a raw socket that reads only when told: after the handshake its
    small receive buffer fills, then the server's send buffer, then the server's queue for it.
    websockets' sans-I/O protocol does the framing."""

    def __init__(self, url: str) -> None:
        self.protocol = ClientProtocol(parse_uri(url), max_size=None)
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        self.socket.settimeout(10.0)
        self.socket.connect(("127.0.0.1", parse_uri(url).port))
        self.protocol.send_request(self.protocol.connect())
        self.socket.sendall(b"".join(self.protocol.data_to_send()))
        while self.protocol.handshake_exc is None and not self.protocol.events_received():
            self._read()  # the 101 response and what follows it in the same segment
        assert self.protocol.handshake_exc is None, self.protocol.handshake_exc

    def _read(self) -> bool:
        data = self.socket.recv(256 * 1024)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        return bool(data)

    def read_until_closed(self) -> tuple[int | None, str | None, int]:
        """Read everything the server sent, to its close frame: (code, reason, frames)."""
        frames = 0
        while self.protocol.close_rcvd is None and self._read():
            frames += len(self.protocol.events_received())
        self.socket.close()
        close = self.protocol.close_rcvd
        return (close.code, close.reason, frames) if close else (None, None, frames)


def test_a_client_that_stops_reading_is_closed_and_nobody_waits_for_it(
        prepared: Settings, start_node, peers) -> None:
    node = start_node("n1")
    alice, bob = (make_user(prepared, node, n) for n in ("alice", "bob"))
    project = make_project(node, alice, {bob: "viewer"})
    stalled = StalledClient(f"{node.ws}/{project}?token={bob.token}")
    peers.connect("a", node.ws, project, token=alice.token, wait=True)
    peers.connect("b", node.ws, project, token=bob.token, wait=True)  # bob on a screen that reads

    edit = 512 * 1024  # the server queues 16 MiB for a socket; buffers hold a few MiB more
    for sent in range(1, 200):
        peers.set("a", "scan", "name", f"{sent}:" + "x" * edit)
        # Every few edits, wait until the reader has the last: the server has then offered it
        # to the stalled socket too (a sender far ahead of a slow machine's server would run
        # out of edits before the server got to the one that fills the stalled outbox).
        if sent % 8 == 0:
            wait_converged(peers, ["a", "b"], timeout=30)
            if "too slow" in node.log_tail(100_000):
                break
    else:
        raise AssertionError(f"the stalled socket was never closed:\n{node.log_tail()}")

    # the reader that keeps up has every edit, and the room keeps taking edits
    peers.set("a", "scan", "visible", True)
    objects = wait_converged(peers, ["a", "b"], timeout=15)
    assert objects["scan"]["name"].startswith(f"{sent}:") and objects["scan"]["visible"]
    assert stored_snapshot(prepared, project)["scan"]["name"].startswith(f"{sent}:")
    # the stalled client, once it reads, gets the frames queued before the close, then the close
    code, reason, frames = stalled.read_until_closed()
    assert (code, reason) == (1013, "too slow; reconnect to resync")
    assert 0 < frames < sent
