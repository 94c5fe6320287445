"""Concurrent edits of one object's placement all survive (issue 21, item 6).

Reproduction: position, rotation and scale were one ``transform`` value of the object's map, so
a collaborator's offline move, sent on reconnecting, silently wiped another's concurrent scaling
of the same object (Yjs keeps one of two concurrent writes to a key whole). They are three keys
now (:mod:`core.scene.transform_keys`); here two stock Yjs clients (``tests/node/peer.mjs``)
edit different parts of an object the studio built, live and with one of them offline, and a
scene stored with the old layout is split once by the room that loads it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pycrdt import Map

from core.events.studio import Studio
from core.scene import document, origins
from core.scene.scene_object import scene_object
from core.settings import Settings
from tests.integration import test_yjs_interop as interop
from tests.integration.test_yjs_interop import (
    ApiNode,
    User,
    make_project,
    make_user,
    stored_events,
    stored_snapshot,
)
from tests.yjs_clients import YjsPeers, wait_converged

peers = interop.peers  # the fixtures, shared with the interop tests
start_node = interop.start_node


@pytest.fixture
def studio(prepared: Settings) -> Iterator[Studio]:
    assert prepared.database_url is not None
    studio = Studio.connect(prepared.database_url)
    try:
        yield studio
    finally:
        studio.close()


def _room(prepared: Settings, start_node: Callable[[str], ApiNode]
          ) -> tuple[ApiNode, User, User, str]:
    node = start_node("n1")
    alice, bob = (make_user(prepared, node, name) for name in ("alice", "bob"))
    return node, alice, bob, make_project(node, alice, {bob: "editor"})


def _teapot(studio: Studio, project: str, user: User) -> dict[str, Any]:
    """The studio's own object (the one constructor), stored as a server edit."""
    fields = scene_object(name="teapot", asset=None, blob=None, created_by=user.user_id)
    studio.edit_scene(uuid.UUID(project), {"teapot": fields}, user.user_id, origins.SERVER)
    return fields


def test_edits_of_different_parts_of_one_object_all_survive(
        prepared: Settings, start_node: Callable[[str], ApiNode], peers: YjsPeers,
        studio: Studio) -> None:
    node, alice, bob, project = _room(prepared, start_node)
    teapot = _teapot(studio, project, alice)
    peers.connect("a", node.ws, project, token=alice.token, wait=True)
    peers.connect("b", node.ws, project, token=bob.token, wait=True)
    assert wait_converged(peers, ["a", "b"])["teapot"] == teapot

    # live, at the same time: Alice moves it, Bob rotates it
    peers.set("a", "teapot", "position", [10, 0, 0])
    peers.set("b", "teapot", "rotation", [0, 0.7071, 0, 0.7071])
    wait_converged(peers, ["a", "b"])

    # Bob offline scales it while Alice moves it again; Bob's edit is sent on reconnecting
    peers.disconnect("b")
    peers.set("b", "teapot", "scale", [2, 2, 2])
    peers.set("a", "teapot", "position", [10, 0, 25])
    peers.reconnect("b")
    peers.wait_synced("b")
    objects = wait_converged(peers, ["a", "b"])

    expected = teapot | {"position": [10, 0, 25], "rotation": [0, 0.7071, 0, 0.7071],
                         "scale": [2, 2, 2]}
    assert objects["teapot"] == expected
    assert stored_snapshot(prepared, project)["teapot"] == expected


def test_a_scene_stored_with_one_transform_value_is_split_once_as_it_loads(
        prepared: Settings, start_node: Callable[[str], ApiNode], peers: YjsPeers,
        studio: Studio) -> None:
    node, alice, bob, project = _room(prepared, start_node)
    legacy = {"position": [1, 2, 3], "rotation": [0, 0, 0, 1], "scale": [1, 1, 1]}
    studio.edit_scene(uuid.UUID(project), {"teapot": {"name": "teapot", "transform": legacy}},
                      alice.user_id, "test")  # written as scenes were before the split
    assert stored_snapshot(prepared, project)["teapot"] == {"name": "teapot", **legacy}

    peers.connect("a", node.ws, project, token=alice.token, wait=True)
    assert peers.state("a")["objects"]["teapot"] == {"name": "teapot", **legacy}
    splits = [e for e in stored_events(prepared, project)
              if e.origin == origins.SPLIT_TRANSFORMS]
    assert len(splits) == 1

    # the split layout takes concurrent edits as any new object does
    peers.connect("b", node.ws, project, token=bob.token, wait=True)
    peers.disconnect("b")
    peers.set("b", "teapot", "scale", [3, 3, 3])
    peers.set("a", "teapot", "position", [4, 2, 3])
    peers.reconnect("b")
    peers.wait_synced("b")
    objects = wait_converged(peers, ["a", "b"])
    assert objects["teapot"] == {"name": "teapot", "position": [4, 2, 3],
                                 "rotation": [0, 0, 0, 1], "scale": [3, 3, 3]}

    # another node loading the scene finds nothing to split and writes nothing
    other = start_node("n2")
    peers.connect("c", other.ws, project, token=bob.token, wait=True)
    assert wait_converged(peers, ["a", "c"])["teapot"] == objects["teapot"]
    assert [e.origin for e in stored_events(prepared, project)].count(
        origins.SPLIT_TRANSFORMS) == 1
    stored = document.load(studio.scene(uuid.UUID(project)).state)
    assert "transform" not in stored.get(document.OBJECTS, type=Map)["teapot"]
