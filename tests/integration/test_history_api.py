"""Version control over HTTP: versions, time travel, revert, diff, timeline, undo of commands."""

from __future__ import annotations

import uuid

import pytest
import trimesh
from starlette.testclient import TestClient

from core.events.studio import Studio
from core.settings import Settings
from tests.integration.helpers import box_stl, event_topics, poll


def _upload(client, account, project_id, name, data):
    response = client.post(f"/api/v1/projects/{project_id}/assets?filename={name}",
                           content=data, headers=account.headers)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def history(client: TestClient, pipeline: Settings, make_account):
    """A project with two tagged versions: v1 shows a 2-unit box, v2 a taller box and a ball."""
    owner = make_account("hana")
    project_id = client.post("/api/v1/projects", json={"name": "Lamp"},
                             headers=owner.headers).json()["id"]
    small = _upload(client, owner, project_id, "small.stl", box_stl(2.0))
    tall = trimesh.creation.box(extents=(2.0, 2.0, 3.0)).export(file_type="stl")
    tall_asset = _upload(client, owner, project_id, "tall.stl", tall)
    assert pipeline.database_url is not None
    studio = Studio.connect(pipeline.database_url)
    pid = uuid.UUID(project_id)
    studio.edit_scene(pid, {"shade": {"name": "shade", "blob": small["blob_key"],
                                      "asset": small["id"]}}, actor=owner.user_id, origin="t")
    v1 = client.post(f"/api/v1/projects/{project_id}/versions", json={"message": "first"},
                     headers=owner.headers).json()
    assert client.patch(f"/api/v1/projects/{project_id}", json={"name": "Lamp II"},
                        headers=owner.headers).status_code == 200
    studio.edit_scene(pid, {"shade": {"blob": tall_asset["blob_key"]},
                            "ball": {"name": "ball"}}, actor=owner.user_id, origin="t")
    v2 = client.post(f"/api/v1/projects/{project_id}/versions", json={"message": "second"},
                     headers=owner.headers).json()
    studio.close()
    return owner, project_id, v1, v2


def test_versions_state_and_revert(client: TestClient, history):
    owner, project_id, v1, v2 = history
    url = f"/api/v1/projects/{project_id}"
    listed = client.get(f"{url}/versions", headers=owner.headers).json()["versions"]
    assert [v["message"] for v in listed] == ["first", "second"]
    assert listed[0]["author"] == owner.user_id and listed[0]["created_at"]

    then = client.get(f"{url}/state?version={v1['version_id']}", headers=owner.headers).json()
    assert then["project"]["name"] == "Lamp"
    assert set(then["scene"]["objects"]) == {"shade"}
    at = client.get(f"{url}/state?at={v1['position']}", headers=owner.headers).json()
    assert at == then
    now = client.get(f"{url}/state", headers=owner.headers).json()
    assert now["project"]["name"] == "Lamp II" and set(now["scene"]["objects"]) == {"shade", "ball"}

    reverted = client.post(f"{url}/versions/{v1['version_id']}/revert", headers=owner.headers)
    assert reverted.status_code == 200, reverted.text
    after = client.get(f"{url}/state", headers=owner.headers).json()
    assert after["project"]["name"] == then["project"]["name"]
    assert after["scene"] == then["scene"]
    # the revert is history too: reverting to v2 brings everything back
    again = client.post(f"{url}/versions/{v2['version_id']}/revert", headers=owner.headers)
    assert again.status_code == 200
    assert client.get(f"{url}/state", headers=owner.headers).json()["scene"] == now["scene"]
    summaries = [e["summary"] for e in poll(
        lambda: client.get(f"{url}/timeline", headers=owner.headers).json()["events"],
        lambda events: sum(e["kind"] == "Project.RevertedTo" for e in events) == 2,
        timeout=10)]
    assert "reverted to the version “first”" in summaries, summaries
    assert "reverted to the version “second”" in summaries, summaries


def test_diff_reports_objects_and_geometry(client: TestClient, history):
    owner, project_id, v1, v2 = history
    diff = client.get(f"/api/v1/projects/{project_id}/versions/diff",
                      params={"from": v1["version_id"], "to": v2["version_id"]},
                      headers=owner.headers)
    assert diff.status_code == 200, diff.text
    body = diff.json()
    assert body["added"] == ["ball"] and body["removed"] == []
    assert body["changed"] == {"shade": ["blob"]}
    assert body["project"] == {"name": {"from": "Lamp", "to": "Lamp II"}}
    geometry = body["geometry"]["shade"]
    assert geometry["faces"] == 0 and geometry["vertices"] == 0
    assert geometry["volume"] == pytest.approx(4.0)  # 2x2x3 - 2x2x2
    assert geometry["area"] == pytest.approx(8.0)
    assert geometry["bounds"] == {"min": [0, 0, pytest.approx(-0.5)],
                                  "max": [0, 0, pytest.approx(0.5)]}
    assert geometry["hausdorff"] == pytest.approx(0.5, abs=1e-6)
    # positions work as well as version ids
    by_position = client.get(f"/api/v1/projects/{project_id}/versions/diff",
                             params={"from": v1["position"], "to": v2["position"]},
                             headers=owner.headers).json()
    assert by_position["changed"] == body["changed"]


def test_timeline_pages_by_position(client: TestClient, history):
    owner, project_id, _, _ = history
    url = f"/api/v1/projects/{project_id}/timeline"
    everything = client.get(url, headers=owner.headers).json()
    kinds = [e["kind"] for e in everything["events"]]
    assert kinds[:2] == ["Project.Created", "Scene.Created"]
    assert "Project.VersionTagged" in kinds and "Project.Renamed" in kinds
    positions = [e["position"] for e in everything["events"]]
    assert positions == sorted(positions)
    pages, cursor = [], 0
    while cursor is not None:
        page = client.get(url, params={"after": cursor, "limit": 3}, headers=owner.headers).json()
        pages.extend(page["events"])
        cursor = page["next"]
    assert pages == everything["events"]
    assert all(e["summary"] for e in pages)
    # scene edits say what they changed, by object name; people are named
    edits = [e["summary"] for e in pages if e["kind"] == "Scene.Updated"]
    assert edits == ["added shade", "added ball; changed the mesh of shade"], edits
    assert {e["actor_name"] for e in pages if e["actor"] == owner.user_id} == {"hana"}


def test_bad_history_requests_change_nothing(client: TestClient, history, pipeline):
    owner, project_id, v1, v2 = history
    url = f"/api/v1/projects/{project_id}"
    before = event_topics(pipeline)
    head = v2["position"] + 100000
    cases = [
        (f"/api/v1/projects/{uuid.uuid4()}/state", 404),
        (f"{url}/state?version={uuid.uuid4()}", 404),
        (f"{url}/state?at={head}", 422),
        (f"{url}/state?at=0", 422),
        (f"{url}/state?at=abc", 422),
        (f"{url}/state?at=1&version={v1['version_id']}", 422),
        (f"{url}/versions/diff?from={v2['version_id']}&to={v1['version_id']}", 422),
        (f"{url}/versions/diff?from={v1['version_id']}", 422),
        (f"{url}/timeline?limit=0", 422),
        (f"{url}/timeline?after=x", 422),
    ]
    for path, status in cases:
        response = client.get(path, headers=owner.headers)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    for path in (f"{url}/versions/{uuid.uuid4()}/revert",):
        assert client.post(path, headers=owner.headers).status_code == 404
    assert client.post(f"{url}/versions", json={"message": 5},
                       headers=owner.headers).status_code == 422
    assert event_topics(pipeline) == before


def test_generation_shows_in_the_scene_and_undo_removes_it(client: TestClient,
                                                           gpu_worker: Settings, make_account):
    from tests.integration.test_generation import disc_png

    ivy = make_account("ivy")
    project_id = client.post("/api/v1/projects", json={"name": "U"},
                             headers=ivy.headers).json()["id"]
    image = _upload(client, ivy, project_id, "disc.png", disc_png())
    job_id = client.post(f"/api/v1/projects/{project_id}/generate",
                         json={"asset_id": image["id"], "face_budget": 3000},
                         headers=ivy.headers).json()["job_id"]
    job = poll(lambda: client.get(f"/api/v1/jobs/{job_id}", headers=ivy.headers).json(),
               lambda j: j["state"] in ("succeeded", "failed"), timeout=60)
    assert job["state"] == "succeeded", job
    state = client.get(f"/api/v1/projects/{project_id}/state", headers=ivy.headers).json()
    shown = state["scene"]["objects"][job_id]
    assert shown["blob"] == job["result"]["blob"] and shown["stage"] == "final"
    assert shown["asset"] == image["id"] and shown["created_by"] == ivy.user_id

    undone = client.post(f"/api/v1/jobs/{job_id}/undo", headers=ivy.headers)
    assert undone.status_code == 200, undone.text
    state = client.get(f"/api/v1/projects/{project_id}/state", headers=ivy.headers).json()
    assert job_id not in state["scene"]["objects"]
    again = client.post(f"/api/v1/jobs/{job_id}/undo", headers=ivy.headers)
    assert again.status_code == 409
    timeline = client.get(f"/api/v1/projects/{project_id}/timeline",
                          headers=ivy.headers).json()["events"]
    last_two = [e["summary"] for e in timeline[-2:]]
    assert "undid generate" in last_two
    assert any(s.startswith("undid a job: deleted ") for s in last_two), last_two
    # undo appended events: the state just before it still shows the object
    before_undo = client.get(f"/api/v1/projects/{project_id}/state",
                             params={"at": undone.json()["position"] - 1},
                             headers=ivy.headers).json()
    assert job_id in before_undo["scene"]["objects"]
