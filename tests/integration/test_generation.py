"""Image to 3D through the whole shape: upload → generate command → GPU worker (here on the
CPU) → three stages stored in S3 and recorded as events, each a closed mesh."""

from __future__ import annotations

import io

import trimesh
from PIL import Image, ImageDraw
from starlette.testclient import TestClient

from core.events.blobs import BlobStore
from core.settings import Settings
from tests.integration.helpers import box_stl, event_topics, poll


def disc_png() -> bytes:
    image = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(image).ellipse((48, 48, 208, 208), fill=(200, 40, 40))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_generate_stores_three_closed_stages(client: TestClient, gpu_worker: Settings,
                                             make_account):
    ann = make_account("ann")
    project_id = client.post("/api/v1/projects", json={"name": "G"},
                             headers=ann.headers).json()["id"]
    image = client.post(f"/api/v1/projects/{project_id}/assets?filename=disc.png",
                        content=disc_png(), headers=ann.headers).json()
    requested = client.post(f"/api/v1/projects/{project_id}/generate",
                            json={"asset_id": image["id"], "face_budget": 5000},
                            headers=ann.headers)
    assert requested.status_code == 202, requested.text
    job_id = requested.json()["job_id"]
    job = poll(lambda: client.get(f"/api/v1/jobs/{job_id}", headers=ann.headers).json(),
               lambda j: j["state"] in ("succeeded", "failed"), timeout=60)
    assert job["state"] == "succeeded", job
    assert set(job["stages"]) == {"preview", "medium", "final"}
    assert gpu_worker.s3 is not None
    blobs = BlobStore(gpu_worker.s3)
    for stage in job["stages"].values():
        mesh = trimesh.load(io.BytesIO(blobs.get_bytes(stage["blob"])), file_type="glb",
                            force="mesh")
        assert mesh.is_watertight and mesh.volume > 0
        assert len(mesh.faces) == stage["stats"]["faces"] <= 5000
    assert job["result"]["blob"] == job["stages"]["final"]["blob"]
    topics = event_topics(gpu_worker)
    assert topics.count("core.events.job:Job.StageCompleted") == 3
    assert topics[-1] == "core.events.job:Job.Succeeded"


def test_generate_refuses_a_mesh_and_an_unknown_asset(client: TestClient, prepared: Settings,
                                                      make_account):
    ben = make_account("ben")
    project_id = client.post("/api/v1/projects", json={"name": "G"},
                             headers=ben.headers).json()["id"]
    mesh = client.post(f"/api/v1/projects/{project_id}/assets?filename=b.stl",
                       content=box_stl(), headers=ben.headers).json()
    before = event_topics(prepared)
    url = f"/api/v1/projects/{project_id}/generate"
    assert client.post(url, json={"asset_id": mesh["id"]}, headers=ben.headers).status_code == 422
    assert client.post(url, json={"asset_id": "nope"}, headers=ben.headers).status_code == 404
    assert client.post(url, json={"asset_id": mesh["id"], "face_budget": 1},
                       headers=ben.headers).status_code == 422
    assert event_topics(prepared) == before
