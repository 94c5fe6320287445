"""The first slice through the whole shape, over HTTP, on real PostgreSQL, NATS and S3:
project → upload → analysis command → dispatcher → JetStream → mesh worker → projection."""

from __future__ import annotations

import hashlib

from starlette.testclient import TestClient

from core.events.blobs import BlobStore, blob_key
from core.settings import Settings
from tests.integration.helpers import box_stl, bucket_keys, event_topics, poll


def test_upload_analyse_and_read_back(client: TestClient, pipeline: Settings, make_account):
    alice = make_account("alice")
    created = client.post("/api/v1/projects", json={"name": "Bracket"}, headers=alice.headers)
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    assert created.json()["members"][0] == {
        "user_id": alice.user_id, "username": "alice", "role": "owner"}

    stl = box_stl(2.0)
    uploaded = client.post(f"/api/v1/projects/{project_id}/assets",
                           files={"file": ("bracket.stl", stl, "model/stl")},
                           headers=alice.headers)
    assert uploaded.status_code == 201, uploaded.text
    asset = uploaded.json()
    digest = hashlib.sha256(stl).hexdigest()
    assert asset["sha256"] == digest
    assert asset["blob_key"] == blob_key(digest)
    assert asset["kind"] == "mesh" and asset["size"] == len(stl)
    assert pipeline.s3 is not None
    assert BlobStore(pipeline.s3).get_bytes(asset["blob_key"]) == stl

    requested = client.post(f"/api/v1/meshes/{asset['id']}/analysis", headers=alice.headers)
    assert requested.status_code == 202, requested.text
    job_id = requested.json()["job_id"]

    analysis = poll(
        lambda: client.get(f"/api/v1/meshes/{asset['id']}/analysis", headers=alice.headers),
        lambda r: r.status_code != 202,
    )
    assert analysis.status_code == 200, analysis.text
    stats = analysis.json()["stats"]
    assert analysis.json()["job_id"] == job_id
    assert stats["faces"] == 12 and stats["vertices"] == 8
    assert stats["watertight"] is True
    assert abs(stats["volume"] - 8.0) < 1e-9 and abs(stats["area"] - 24.0) < 1e-9
    assert stats["bounds"] == {"min": [-1.0, -1.0, -1.0], "max": [1.0, 1.0, 1.0]}

    job = client.get(f"/api/v1/jobs/{job_id}", headers=alice.headers).json()
    assert job["state"] == "succeeded" and job["attempts"] == 1
    assert job["worker"].startswith("mesh@")

    assert event_topics(pipeline) == [
        "core.events.project:Project.Created",
        "core.events.scene:Scene.Created",
        "core.events.project:Project.AssetUploaded",
        "core.events.job:Job.Requested",
        "core.events.job:Job.Started",
        "core.events.job:Job.Succeeded",
    ]
    # the upload, the per-face maps of the analysis (for the viewer's heat maps) and its
    # thumbnail (for lists of designs)
    assert bucket_keys(pipeline) == sorted([asset["blob_key"], stats["face_maps"],
                                            stats["thumbnail"]])


def test_raw_body_upload_and_dedup(client: TestClient, pipeline: Settings, make_account):
    bob = make_account("bob")
    project_id = client.post("/api/v1/projects", json={"name": "P"},
                             headers=bob.headers).json()["id"]
    stl = box_stl(1.0)
    first = client.post(f"/api/v1/projects/{project_id}/assets?filename=a.stl", content=stl,
                        headers=bob.headers)
    second = client.post(f"/api/v1/projects/{project_id}/assets?filename=b.stl", content=stl,
                         headers=bob.headers)
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert first.json()["id"] != second.json()["id"]
    assert first.json()["blob_key"] == second.json()["blob_key"]
    assert bucket_keys(pipeline) == [first.json()["blob_key"]]  # stored once
    listed = client.get(f"/api/v1/projects/{project_id}/assets", headers=bob.headers).json()
    assert [a["filename"] for a in listed["assets"]] == ["a.stl", "b.stl"]
