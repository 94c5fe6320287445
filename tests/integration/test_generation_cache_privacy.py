"""The generation cache across projects (issue 19, reproduction 11).

A request answered from another project's job once got that job itself: its id, project,
requester and input image were shown to a user who is no member of that project. Now a
reuse is a job of the requesting project, whose stages point at the shared content-addressed
blobs; nothing of the other project reaches the requester, and the analytics still count the
hit and the GPU seconds it saved.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import trimesh
from starlette.testclient import TestClient

from core.events.job import STAGES
from core.settings import Settings
from tests.integration.helpers import poll
from tests.integration.test_generation import _finish, _project, disc_png


def _image(client: TestClient, account: Any, project_id: str) -> str:
    uploaded = client.post(f"/api/v1/projects/{project_id}/assets?filename=disc.png",
                           content=disc_png(), headers=account.headers)
    assert uploaded.status_code == 201, uploaded.text
    return str(uploaded.json()["id"])


def _generate(client: TestClient, account: Any, project_id: str, image: str) -> str:
    requested = client.post(f"/api/v1/projects/{project_id}/generate",
                            json={"asset_id": image, "face_budget": 2000, "seed": 4},
                            headers=account.headers)
    assert requested.status_code == 202, requested.text
    return str(requested.json()["job_id"])


def _ended(client: TestClient, account: Any, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = poll(
        lambda: client.get(f"/api/v1/jobs/{job_id}", headers=account.headers).json(),
        lambda j: j.get("state") not in (None, "requested", "started"), timeout=60)
    return job


def _shows_none_of(answer: object, secrets: set[str]) -> None:
    text = answer if isinstance(answer, str) else json.dumps(answer)
    assert not {s for s in secrets if s in text}, text


def test_a_hit_from_another_project_is_a_job_of_that_project(
        client: TestClient, gpu_worker: Settings, make_account: Callable[..., Any]) -> None:
    root, amy, ben = (make_account("root", admin=True), make_account("amy"),
                      make_account("ben"))
    first, second = _project(client, amy), _project(client, ben)
    amys_image = _image(client, amy, first)
    amys_job = _generate(client, amy, first, amys_image)
    assert _ended(client, amy, amys_job)["state"] == "succeeded"

    # ben, in no project of amy's, sends the same bytes with the same parameters
    bens_image = _image(client, ben, second)
    bens_job = _generate(client, ben, second, bens_image)
    assert bens_job != amys_job
    secrets = {amys_job, first, amy.user_id, amys_image}
    job = _ended(client, ben, bens_job)
    assert job["state"] == "succeeded", job
    assert (job["id"], job["project_id"], job["requested_by"]) == (bens_job, second,
                                                                   ben.user_id)
    assert job["inputs"]["asset_id"] == bens_image
    assert job["scene_objects"] == [bens_job]
    _shows_none_of(job, secrets)
    with client.stream("GET", f"/api/v1/jobs/{bens_job}/events", headers=ben.headers) as r:
        streamed = r.read().decode()
    assert '"event": "succeeded"' in streamed and '"cached": true' in streamed
    _shows_none_of(streamed, secrets)
    for stage in STAGES:
        glb = client.get(f"/api/v1/jobs/{bens_job}/stages/{stage}.glb", headers=ben.headers)
        assert glb.status_code == 200, glb.text
        mesh = trimesh.load(io.BytesIO(glb.content), file_type="glb", force="mesh")
        assert isinstance(mesh, trimesh.Trimesh) and len(mesh.faces) > 0
    state = client.get(f"/api/v1/projects/{second}/state", headers=ben.headers).json()
    assert state["scene"]["objects"][bens_job]["created_by"] == ben.user_id
    _shows_none_of(state, secrets)
    made = client.get(f"/api/v1/meshes/{job['result']['mesh']['asset_id']}",
                      headers=ben.headers)  # the generated mesh is one of ben's project
    assert made.status_code == 200, made.text
    _shows_none_of(made.json(), secrets)

    timeline = poll(
        lambda: client.get(f"/api/v1/projects/{second}/timeline", headers=ben.headers).json(),
        lambda t: any("answered from earlier results" in e["summary"] for e in t["events"]),
        timeout=30)
    _shows_none_of(timeline, secrets)

    # amy's job stays hers
    amys = f"/api/v1/jobs/{amys_job}"
    for refused in (client.get(amys, headers=ben.headers),
                    client.get(f"{amys}/events", headers=ben.headers),
                    client.get(f"{amys}/stages/final.glb", headers=ben.headers),
                    client.delete(amys, headers=ben.headers),
                    client.post(f"{amys}/undo", headers=ben.headers)):
        assert refused.status_code in (403, 404), refused.text
        _shows_none_of(refused.text, secrets - {amys_job})

    # one run, one hit that saved what the run cost
    total = client.get("/api/v1/admin/analytics/generation", headers=root.headers).json()["total"]
    assert (total["jobs"], total["cache_hits"], total["single_flight_joins"]) == (1, 1, 0)
    assert total["saved_gpu_seconds"] == total["gpu_seconds"] > 0


def test_a_join_from_another_project_ends_as_a_job_of_that_project(
        client: TestClient, pipeline: Settings, make_account: Callable[..., Any]) -> None:
    """No GPU worker runs here: amy's job stays queued while ben's identical request joins
    it, and ben's own job ends when amy's does."""
    root, amy, ben = (make_account("root", admin=True), make_account("amy"),
                      make_account("ben"))
    first, second = _project(client, amy), _project(client, ben)
    amys_image = _image(client, amy, first)
    amys_job = _generate(client, amy, first, amys_image)
    bens_image = _image(client, ben, second)
    bens_job = _generate(client, ben, second, bens_image)
    assert bens_job != amys_job
    secrets = {amys_job, first, amy.user_id, amys_image}
    with client.stream("GET", f"/api/v1/jobs/{bens_job}/events", headers=ben.headers) as r:
        queued = json.loads(next(line for line in r.iter_lines() if line))
    assert queued["event"] == "queued" and queued["shared"] is True
    assert queued["job_id"] == bens_job
    assert client.get(f"/api/v1/jobs/{amys_job}", headers=ben.headers).status_code == 403

    _finish(pipeline, amys_job, seconds=(0.25, 0.5, 1.0))
    job = _ended(client, ben, bens_job)
    assert job["state"] == "succeeded", job
    assert (job["project_id"], job["requested_by"]) == (second, ben.user_id)
    assert job["inputs"]["asset_id"] == bens_image
    assert job["stages"]["final"]["blob"] == f"blobs/final-{amys_job}"  # the shared blob
    _shows_none_of(job, secrets - {amys_job})  # (the test's blob keys embed amy's job id)
    _shows_none_of({k: v for k, v in job.items() if k not in ("stages", "result")}, secrets)
    state = client.get(f"/api/v1/projects/{second}/state", headers=ben.headers).json()
    assert state["scene"]["objects"][bens_job]["created_by"] == ben.user_id

    total = client.get("/api/v1/admin/analytics/generation", headers=root.headers).json()["total"]
    assert (total["jobs"], total["cache_hits"], total["single_flight_joins"]) == (1, 0, 1)
    assert total["saved_gpu_seconds"] == total["gpu_seconds"] == 1.75
