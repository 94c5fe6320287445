"""Image to 3D through the whole shape: upload → generate command → GPU worker (here on the
CPU) → three stages stored in S3 and recorded as events, each a closed mesh."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

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


def _events(response) -> list[dict]:
    import json

    return [json.loads(line) for line in response.iter_lines() if line]


def _project(client: TestClient, account) -> str:
    return client.post("/api/v1/projects", json={"name": "Stream"},
                       headers=account.headers).json()["id"]


def test_progressive_stream_and_dedup(client: TestClient, gpu_worker: Settings, make_account):
    cleo = make_account("cleo")
    project_id = _project(client, cleo)
    url = f"/api/v1/projects/{project_id}/generate-progressive"
    with client.stream("POST", url, files={"image": ("disc.png", disc_png(), "image/png")},
                       data={"face_budget": "4000", "seed": "3"}, headers=cleo.headers) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("application/x-ndjson")
        events = _events(r)
    names = [e["event"] for e in events]
    assert names[-3:] == ["preview", "medium", "final"], names
    assert "started" in names and names.index("started") < names.index("preview")
    final = events[-1]
    assert final["faces"] <= 4000 and final["cached"] is False
    glb = client.get(final["url"], headers=cleo.headers)
    assert glb.status_code == 200 and glb.headers["content-type"] == "model/gltf-binary"
    mesh = trimesh.load(io.BytesIO(glb.content), file_type="glb", force="mesh")
    assert mesh.is_watertight

    # the same bytes and parameters again: answered from the finished job, no new job
    requested_before = event_topics(gpu_worker).count("core.events.job:Job.Requested")
    with client.stream("POST", url, files={"image": ("again.png", disc_png(), "image/png")},
                       data={"face_budget": "4000", "seed": "3"},
                       headers=cleo.headers | {"Accept": "text/event-stream"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        body = r.read().decode()
    assert "event: final" in body and '"cached": true' in body
    assert event_topics(gpu_worker).count("core.events.job:Job.Requested") == requested_before
    objects = client.get(f"/api/v1/projects/{project_id}/state",
                         headers=cleo.headers).json()["scene"]["objects"]
    assert len(objects) == 2  # the cache hit shows in the scene too
    assert {o["blob"] for o in objects.values()} == {final["blob"]}


def test_identical_requests_in_flight_share_one_job(client: TestClient, pipeline: Settings,
                                                    make_account):
    """No GPU worker runs here, so the first job stays queued while the others arrive."""
    dana = make_account("dana")
    project_id = _project(client, dana)
    image = client.post(f"/api/v1/projects/{project_id}/assets?filename=d.png",
                        content=disc_png(), headers=dana.headers).json()
    def request(_: int) -> str:
        response = client.post(f"/api/v1/projects/{project_id}/generate",
                               json={"asset_id": image["id"], "seed": 9}, headers=dana.headers)
        assert response.status_code == 202, response.text
        return str(response.json()["job_id"])

    with ThreadPoolExecutor(10) as pool:  # ten at once, not one after another
        jobs = set(pool.map(request, range(10)))
    assert len(jobs) == 1
    (job_id,) = jobs
    assert event_topics(pipeline).count("core.events.job:Job.Requested") == 1
    with client.stream("GET", f"/api/v1/jobs/{job_id}/events", headers=dana.headers) as r:
        first = next(line for line in r.iter_lines() if line)
    assert '"event": "queued"' in first and '"position": 0' in first
    # cancelling a queued job ends its stream
    assert client.delete(f"/api/v1/jobs/{job_id}", headers=dana.headers).status_code == 204
    with client.stream("GET", f"/api/v1/jobs/{job_id}/events", headers=dana.headers) as r:
        events = _events(r)
    assert [e["event"] for e in events] == ["cancelled"]


def test_bad_generation_requests_store_nothing(client: TestClient, prepared: Settings,
                                               make_account):
    from tests.integration.helpers import bucket_keys

    eli = make_account("eli")
    project_id = _project(client, eli)
    url = f"/api/v1/projects/{project_id}/generate-progressive"
    before = event_topics(prepared)
    cases = [
        ({"image": ("x.stl", box_stl(), "model/stl")}, {}, 415),
        ({"image": ("x.png", b"not a png", "image/png")}, {}, 415),
        ({"image": ("x.png", disc_png(), "image/png")}, {"backend": "dream"}, 422),
        ({"image": ("x.png", disc_png(), "image/png")}, {"face_budget": "2"}, 422),
        ({"image": ("x.png", disc_png(), "image/png")}, {"seed": "-1"}, 422),
        ({"image": ("x.png", disc_png(), "image/png")}, {"seed": "abc"}, 422),
        ({"picture": ("x.png", disc_png(), "image/png")}, {}, 400),
    ]
    for files, data, status in cases:
        response = client.post(url, files=files, data=data, headers=eli.headers)
        assert response.status_code == status, (files, data, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert event_topics(prepared) == before
    assert bucket_keys(prepared) == []


def test_generators_are_listed_as_the_workers_report_them(client: TestClient,
                                                          gpu_worker: Settings, make_account):
    fay = make_account("fay")
    def by_name(body: dict) -> dict:
        return {g["name"]: g for g in body["generators"]}

    listed = by_name(poll(lambda: client.get("/api/v1/generators", headers=fay.headers).json(),
                          lambda body: by_name(body)["inflate"]["available"], timeout=30))
    inflate = listed["inflate"]
    assert inflate["device"] == "cpu" and inflate["capabilities"]["needs_weights"] is False
    # the weight-based generators are listed, unavailable here, with the reason
    for name in ("shap-e", "hunyuan3d"):
        assert listed[name]["available"] is False and listed[name]["reason"], listed[name]


def test_concurrent_job_quota(client: TestClient, pipeline: Settings, make_account):
    """Without a GPU worker every job stays queued; the fifth at once is refused (429)."""
    from core.generators import MAX_CONCURRENT_JOBS

    gus = make_account("gus")
    project_id = _project(client, gus)
    image = client.post(f"/api/v1/projects/{project_id}/assets?filename=g.png",
                        content=disc_png(), headers=gus.headers).json()
    url = f"/api/v1/projects/{project_id}/generate"
    for seed in range(MAX_CONCURRENT_JOBS):
        started = client.post(url, json={"asset_id": image["id"], "seed": seed},
                              headers=gus.headers)
        assert started.status_code == 202, started.text
        location = started.headers["location"]
        poll(lambda url=location: client.get(url, headers=gus.headers),
             lambda r: r.status_code == 200)  # the read model has it
    refused = client.post(url, json={"asset_id": image["id"], "seed": 99}, headers=gus.headers)
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
