"""A viewer that reconnects is not told it cannot edit (issue 21, a known bug).

Reproduction: a stock y-websocket client answers the server's sync step 1 with a sync step 2
holding everything the server's state vector lacks, and Yjs always puts the client's whole
delete set in it. Once the scene had a deletion (an overwritten value is one), every viewer's
reconnect sent a non-empty update, and the room answered "viewers cannot edit this project"
though the viewer had touched nothing. Such an update brings nothing the server lacks and is
now dropped without a word; a viewer's real edit, live or sent on reconnecting (new items or a
deletion), is still refused with the notice and stored nowhere.
"""

from __future__ import annotations

from collections.abc import Callable

from core.settings import Settings
from tests.integration import test_yjs_interop as interop
from tests.integration.test_yjs_interop import (
    ApiNode,
    make_project,
    make_user,
    poll,
    stored_snapshot,
)
from tests.yjs_clients import YjsPeers, wait_converged

peers = interop.peers  # the fixtures, shared with the interop tests
start_node = interop.start_node

REFUSED = {"type": "refused", "detail": "viewers cannot edit this project"}


def _round_trip(peers: YjsPeers, viewer: str, owner: str, mark: str) -> None:
    """Wait until the room has handled every frame the viewer sent so far, and the viewer has
    every frame the room sent it in answer: the viewer's presence reaches the owner (the room
    reads one socket's frames in order), then an edit of the owner's reaches the viewer."""
    peers.awareness(viewer, {"mark": mark})
    poll(lambda: {"mark": mark} in peers.awareness_states(owner).values(),
         what=f"the viewer's presence {mark!r} at the owner")
    peers.set(owner, "marker", "name", mark)
    poll(lambda: peers.state(viewer)["objects"].get("marker", {}).get("name") == mark,
         what=f"the owner's edit {mark!r} at the viewer")


def _reconnect(peers: YjsPeers, client: str) -> None:
    peers.reconnect(client)
    peers.wait_synced(client)


def test_a_reconnecting_viewer_is_refused_only_what_it_changed(
        prepared: Settings, start_node: Callable[[str], ApiNode], peers: YjsPeers) -> None:
    node = start_node("n1")
    owner, viewer = (make_user(prepared, node, name) for name in ("olga", "vic"))
    project = make_project(node, owner, {viewer: "viewer"})
    peers.connect("o", node.ws, project, token=owner.token, wait=True)
    peers.connect("v", node.ws, project, token=viewer.token, wait=True, notices=True)

    # a scene with deletions: an object removed and a value overwritten
    peers.set_objects("o", {"lamp": {"name": "lamp"}, "desk": {"name": "desk"}})
    peers.delete("o", "desk")
    peers.set("o", "lamp", "name", "reading lamp")
    wait_converged(peers, ["o", "v"])

    # the viewer drops off and comes back, twice, with edits by the owner in between
    for turn in range(2):
        peers.disconnect("v")
        peers.set("o", "lamp", "name", f"lamp {turn}")
        _reconnect(peers, "v")
        _round_trip(peers, "v", "o", f"back {turn}")
    assert peers.notices("v") == []
    assert peers.state("v")["objects"]["lamp"] == {"name": "lamp 1"}

    # real edits are still refused: a deletion made offline, new items made offline, live
    peers.disconnect("v")
    peers.delete("v", "lamp")
    _reconnect(peers, "v")
    _round_trip(peers, "v", "o", "after the deletion")
    assert peers.notices("v") == [REFUSED]

    peers.close_client("v")  # a fresh viewer, without the refused deletion to resend
    peers.connect("w", node.ws, project, token=viewer.token, wait=True, notices=True)
    peers.disconnect("w")
    peers.set("w", "graffiti", "name", "x")
    _reconnect(peers, "w")
    _round_trip(peers, "w", "o", "after the addition")
    assert peers.notices("w") == [REFUSED]

    peers.set("w", "lamp", "name", "mine")
    _round_trip(peers, "w", "o", "after the live edit")
    assert peers.notices("w") == [REFUSED, REFUSED]

    expected = {"lamp": {"name": "lamp 1"}, "marker": {"name": "after the live edit"}}
    assert stored_snapshot(prepared, project) == expected
    assert peers.state("o")["objects"] == expected
