"""Per-user undo after a job's undo, through the real routes (issue 19, reproduction 7).

A job's undo once wrote the origin ``undo:<job id>``, the prefix of a user's own undo, and
the per-user history then read ``int("undo:<uuid>")``: every undo and redo in the project
answered 500 from then on. Now each kind of scene change has its own origin, and the history
reads every origin the log holds, those stored before included.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from core.events.studio import Studio
from core.scene import document, origins
from core.settings import Settings
from tests.integration.test_mesh_operations import open_box_stl, upload


def _objects(studio: Studio, project: str) -> dict[str, Any]:
    objects: dict[str, Any] = document.snapshot(studio.scene(uuid.UUID(project)).state)["objects"]
    return objects


def test_undo_and_redo_work_after_a_job_was_undone(client: TestClient, pipeline: Settings,
                                                   make_account: Callable[..., Any]) -> None:
    alice, bob = make_account("alice"), make_account("bob")
    project = client.post("/api/v1/projects", json={"name": "Undo"},
                          headers=alice.headers).json()["id"]
    assert client.post(f"/api/v1/projects/{project}/invite",
                       json={"user": "bob", "role": "editor"},
                       headers=alice.headers).status_code in (200, 201)
    broken = upload(client, project, alice.headers, open_box_stl())
    assert pipeline.database_url is not None
    studio = Studio.connect(pipeline.database_url)
    try:
        studio.edit_scene(uuid.UUID(project), {"part": {
            "name": "part", "asset": broken["id"], "blob": broken["blob_key"]}},
            "setup", "test")
        # alice's own edit, as her socket stores it
        studio.edit_scene(uuid.UUID(project), {"lamp": {"name": "lamp"}}, alice.user_id,
                          origins.SOCKET)
        repaired = client.post(f"/api/v1/meshes/{broken['id']}/repair?wait=true",
                               json={"object_id": "part"}, headers=alice.headers)
        assert repaired.status_code == 200 and repaired.json()["state"] == "succeeded", \
            repaired.text
        job = repaired.json()
        undone = client.post(f"/api/v1/jobs/{job['id']}/undo", headers=alice.headers)
        assert undone.status_code == 200, undone.text
        assert _objects(studio, project)["part"]["asset"] == broken["id"]

        url = f"/api/v1/projects/{project}/operations"
        # alice's undo takes back her edit and steps over the job's undo, which stays done
        first = client.post(f"{url}/undo", headers=alice.headers)
        assert first.status_code == 200, first.text
        assert "lamp" not in _objects(studio, project)
        assert _objects(studio, project)["part"]["asset"] == broken["id"]
        again = client.post(f"{url}/redo", headers=alice.headers)
        assert again.status_code == 200, again.text
        assert _objects(studio, project)["lamp"] == {"name": "lamp"}
        assert client.post(f"{url}/undo", headers=alice.headers).status_code == 200
        for user in (alice, bob):  # nothing left for either: a clear 409, never a 500
            nothing = client.post(f"{url}/undo", headers=user.headers)
            assert nothing.status_code == 409, nothing.text
            assert nothing.headers["content-type"] == "application/problem+json"
        assert client.post(f"{url}/redo", headers=bob.headers).status_code == 409
    finally:
        studio.close()


def test_undo_reads_every_origin_the_log_holds(client: TestClient, prepared: Settings,
                                               make_account: Callable[..., Any]) -> None:
    """Origins stored before they had one format (a job's undo as ``undo:<job id>``) or by
    tools (free text, an undo naming no version) are read, and stepped over, not parsed."""
    carol = make_account("carol")
    project = client.post("/api/v1/projects", json={"name": "Old log"},
                          headers=carol.headers).json()["id"]
    assert prepared.database_url is not None
    studio = Studio.connect(prepared.database_url)
    try:
        pid = uuid.UUID(project)
        studio.edit_scene(pid, {"vase": {"name": "vase"}}, carol.user_id, origins.SOCKET)
        for odd in (f"undo:{uuid.uuid4()}", "undo:", "undo:x", "redo:", "redo:7:8",
                    "cache:whatever", "job:", "made by a script", ""):
            studio.edit_scene(pid, {"note": {"name": odd}}, "someone else", odd)
            studio.edit_scene(pid, {"mark": {"name": odd}}, carol.user_id, odd)
        studio.edit_scene(pid, {"mark": None}, carol.user_id, f"undo:{uuid.uuid4()}")

        url = f"/api/v1/projects/{project}/operations"
        undone = client.post(f"{url}/undo", headers=carol.headers)
        assert undone.status_code == 200, undone.text
        redone = client.post(f"{url}/redo", headers=carol.headers)
        assert redone.status_code == 200, redone.text
    finally:
        studio.close()
