"""The event log is the one channel for scene changes (issue 20, part 2).

A writer only commits: every API node learns of the commit from the log itself (a trigger's
``pg_notify`` in the committing transaction, one LISTEN connection per node) and its rooms
read what they lack. So a writer killed with SIGKILL right after its commit, which could never
announce anything, still reaches every connected client on every node; and a node whose
LISTEN connection is cut reads what was committed meanwhile once it is back.

The nodes are real ``orfeas api`` processes (``tests.integration.test_yjs_interop.ApiNode``)
on one database and one NATS; the clients are stock Yjs clients (``tests/node/peer.mjs``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from core.collab.scene_log import APPLICATION_NAME
from core.settings import Settings
from tests.integration.test_yjs_interop import ApiNode, User, make_project, make_user
from tests.yjs_clients import ROOT, YjsPeers, ensure_node_modules, wait_converged

SEEN_WITHIN_S = 5.0  # a generous bound on the wait; the time it took is printed

# A worker's commit, as the GPU worker records a stage that shows its mesh in the scene
# (``Studio.complete_stage`` with the scene object), or a plain scene edit, in a process of
# its own: connected, it says "ready" and waits for a line; it commits, says so and waits to
# be killed: nothing after the commit runs.
WRITER = """
import sys, time, uuid
from core.events.job_kinds import GENERATE
from core.events.studio import Studio

url, project, user, object_id = sys.argv[1:5]
studio = Studio.connect(url)
print("ready", flush=True)
sys.stdin.readline()
if object_id.startswith("edit-"):
    position = studio.edit_scene(uuid.UUID(project), {object_id: {"name": object_id}},
                                 user, "test")
else:
    job = studio.request_job(uuid.UUID(project), GENERATE,
                             {"asset_id": "a1", "blob_key": "blobs/sha256/ab/cd"}, {}, user)
    studio.start_job(job, "doomed-worker", "cpu")
    fields = {"blob": "blobs/sha256/ab/cd", "stage": "preview", "name": "generated",
              "asset": "a1", "position": [0.0, 0.0, 0.0],
              "rotation": [0.0, 0.0, 0.0, 1.0], "scale": [1.0, 1.0, 1.0],
              "material": {}, "style": "", "visible": True, "locked": False,
              "created_by": user}
    position = studio.complete_stage(job, "preview", "blobs/sha256/ab/cd", {},
                                     {object_id: fields})
print("committed", position, flush=True)
time.sleep(600)
"""


@pytest.fixture
def start_node(prepared: Settings, tmp_path: Path) -> Iterator[Callable[[str], ApiNode]]:
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


def commit_and_die(settings: Settings, project: str, user: User, object_id: str,
                   just_before: Callable[[], None] = lambda: None) -> float:
    """Commit a scene change in a process that is SIGKILLed as soon as it reports the commit
    (``just_before`` runs once it is ready to commit); returns when the commit was reported
    (``time.monotonic``)."""
    assert settings.database_url is not None
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, settings.database_url, project, user.user_id, object_id],
        cwd=ROOT, env=os.environ | settings.to_env(), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert writer.stdin is not None and writer.stdout is not None
        assert writer.stderr is not None
        ready = writer.stdout.readline()
        assert ready.startswith("ready"), f"the writer failed: {writer.stderr.read()}"
        just_before()
        writer.stdin.write("go\n")
        writer.stdin.flush()
        line = writer.stdout.readline()
        committed = time.monotonic()
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
        assert line.startswith("committed"), f"the writer failed: {writer.stderr.read()}"
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    return committed


def wait_seen(peers: YjsPeers, clients: list[str], object_id: str) -> dict[str, Any]:
    """Poll until every client holds ``object_id``; its objects as the first client has them."""
    deadline = time.monotonic() + SEEN_WITHIN_S
    while True:
        seen = {name: peers.state(name)["objects"] for name in clients}
        if all(object_id in objects for objects in seen.values()):
            return seen[clients[0]]
        if time.monotonic() > deadline:
            held = {name: sorted(objects) for name, objects in seen.items()}
            raise AssertionError(f"{object_id} not seen by every client within "
                                 f"{SEEN_WITHIN_S} s; they hold {held}")
        time.sleep(0.01)


def two_nodes_with_a_client_each(prepared: Settings, start_node: Callable[[str], ApiNode],
                                 peers: YjsPeers) -> tuple[str, User]:
    n1, n2 = start_node("n1"), start_node("n2")
    alice, bob = make_user(prepared, n1, "alice"), make_user(prepared, n1, "bob")
    project = make_project(n1, alice, {bob: "editor"})
    peers.connect("a", n1.ws, project, token=alice.token, wait=True)
    peers.connect("b", n2.ws, project, token=bob.token, wait=True)
    peers.set_fields("a", "chair", {"name": "chair"})  # both rooms loaded and live
    wait_converged(peers, ["a", "b"])
    return project, alice


def listeners(settings: Settings) -> list[int]:
    """The backend process ids of the nodes' LISTEN connections on the test's database."""
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            " AND datname = current_database()", (APPLICATION_NAME,)).fetchall()
    return sorted(row[0] for row in rows)


def test_a_writer_killed_right_after_its_commit_reaches_every_client_on_every_node(
        prepared: Settings, start_node: Callable[[str], ApiNode], peers: YjsPeers) -> None:
    project, alice = two_nodes_with_a_client_each(prepared, start_node, peers)
    object_id = f"result-{uuid.uuid4().hex[:8]}"

    committed = commit_and_die(prepared, project, alice, object_id)
    objects = wait_seen(peers, ["a", "b"], object_id)
    print(f"\na killed writer's commit seen by both clients after "
          f"{1000 * (time.monotonic() - committed):.0f} ms")

    assert objects[object_id]["stage"] == "preview"
    assert wait_converged(peers, ["a", "b"])[object_id] == objects[object_id]
    peers.set("b", "chair", "colour", "red")  # the rooms store on after it
    assert wait_converged(peers, ["a", "b"])["chair"] == {"name": "chair", "colour": "red"}


def test_a_commit_while_the_listen_connections_are_cut_reaches_every_client(
        prepared: Settings, start_node: Callable[[str], ApiNode], peers: YjsPeers) -> None:
    project, alice = two_nodes_with_a_client_each(prepared, start_node, peers)
    before = listeners(prepared)
    assert len(before) == 2  # one per node

    def cut() -> None:
        assert prepared.database_url is not None
        with psycopg.connect(prepared.database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid",
                         (before,))

    # committed a few milliseconds after the cut, while the nodes wait RETRY_FIRST_S to
    # listen again: no notification will ever tell them
    object_id = f"edit-{uuid.uuid4().hex[:8]}"
    committed = commit_and_die(prepared, project, alice, object_id, just_before=cut)
    objects = wait_seen(peers, ["a", "b"], object_id)
    print(f"\na commit made while the nodes were not listening seen by both clients after "
          f"{1000 * (time.monotonic() - committed):.0f} ms")

    assert objects[object_id] == {"name": object_id}
    after = listeners(prepared)
    assert len(after) == 2 and not set(after) & set(before)  # both listen again, anew
    later = f"edit-{uuid.uuid4().hex[:8]}"
    commit_and_die(prepared, project, alice, later)  # and notifications flow again
    assert wait_seen(peers, ["a", "b"], later)[later] == {"name": later}
