"""A readable timeline (issue 21, item 10), from real edits of stock Yjs clients.

Reproduction: every scene edit read "edited the scene (ws, 976 bytes)" beside a raw user id. The
timeline now says what each edit did to which object, by name, and who did it by username
(:mod:`core.projections.timeline_lines`, joined at query time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from core.settings import Settings
from tests.integration import test_yjs_interop as interop
from tests.integration.helpers import poll as poll_until
from tests.integration.test_generation import disc_png
from tests.integration.test_yjs_interop import ApiNode, User, make_project, make_user, poll
from tests.yjs_clients import YjsPeers, wait_converged

peers = interop.peers  # the fixtures, shared with the interop tests
start_node = interop.start_node


def _lines(node: ApiNode, project: str, user: User) -> list[str]:
    response = node.call("GET", f"/api/v1/projects/{project}/timeline", user.token)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return [f"{e['actor_name']} {e['summary']}" for e in events if e["kind"] == "Scene.Updated"]


def _wait_for_line(node: ApiNode, project: str, user: User, line: str) -> None:
    poll(lambda: line in _lines(node, project, user), timeout=20, what=line)


def test_scene_edits_read_as_who_did_what_to_which_object(
        pipeline: Settings, start_node: Callable[[str], ApiNode], peers: YjsPeers) -> None:
    node = start_node("n1")
    alice, bob = (make_user(pipeline, node, name) for name in ("alice", "bob"))
    project = make_project(node, alice, {bob: "editor"})
    peers.connect("a", node.ws, project, token=alice.token, wait=True)
    peers.connect("b", node.ws, project, token=bob.token, wait=True)

    steps: list[tuple[Callable[[], None], str]] = [
        (lambda: peers.set_fields("a", "t1", {"name": "Teapot", "position": [0, 0, 0],
                                              "rotation": [0, 0, 0, 1], "scale": [1, 1, 1]}),
         "alice added Teapot"),
        (lambda: peers.set("a", "t1", "position", [40, 0, 0]), "alice moved Teapot"),
        (lambda: peers.set("b", "t1", "name", "Kettle"), "bob renamed Teapot to Kettle"),
        (lambda: peers.set("b", "t1", "visible", False), "bob hid Kettle"),
        (lambda: peers.delete("a", "t1"), "alice deleted Kettle"),
    ]
    for step, line in steps:
        step()
        wait_converged(peers, ["a", "b"])
        _wait_for_line(node, project, alice, line)
    lines = _lines(node, project, bob)
    assert lines == [line for _, line in steps], lines
    everything = node.call("GET", f"/api/v1/projects/{project}/timeline", bob.token).json()
    assert "added member bob as editor" in [e["summary"] for e in everything["events"]]


def test_a_generation_reads_as_its_requester_generating_the_object(
        client: TestClient, gpu_worker: Settings, make_account: Callable[..., Any]) -> None:
    ann = make_account("ann")
    project_id = client.post("/api/v1/projects", json={"name": "G"},
                             headers=ann.headers).json()["id"]
    image = client.post(f"/api/v1/projects/{project_id}/assets?filename=apple.png",
                        content=disc_png(), headers=ann.headers).json()
    requested = client.post(f"/api/v1/projects/{project_id}/generate",
                            json={"asset_id": image["id"], "face_budget": 2000,
                                  "name": "apple"}, headers=ann.headers)
    assert requested.status_code == 202, requested.text

    def lines() -> list[str]:
        events = client.get(f"/api/v1/projects/{project_id}/timeline",
                            headers=ann.headers).json()["events"]
        return [f"{e['actor_name']} {e['summary']}" for e in events]

    said = poll_until(lines, lambda found: "ann generated apple (final)" in found, timeout=90)
    assert {"ann generated apple (preview)", "ann generated apple (medium)"} <= set(said), said
    assert not any("bytes)" in line and "edited the scene" in line for line in said), said
