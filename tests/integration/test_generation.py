"""Image to 3D through the whole shape: upload → generate command → GPU worker (here on the
CPU) → three stages stored in S3 and recorded as events, each a closed mesh."""

from __future__ import annotations

import hashlib
import io
import json
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import numpy as np
import pytest
import trimesh
from PIL import Image, ImageDraw
from starlette.testclient import TestClient

from api.app import create_app
from core.events.blobs import BlobStore
from core.events.job import STAGES
from core.events.job_kinds import GENERATOR_VERSIONS
from core.events.studio import Studio
from core.projections.runner import ProjectionRunner
from core.settings import Settings
from tests.images import blank_png, huge_png, transparent_png
from tests.integration.helpers import box_stl, bucket_keys, event_topics, poll
from tests.renders import view

REQUESTED = "core.events.job:Job.Requested"
REUSED = "core.events.job:Job.ReuseRequested"
UPLOADED = "core.events.project:Project.AssetUploaded"


def disc_png() -> bytes:
    image = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(image).ellipse((48, 48, 208, 208), fill=(200, 40, 40))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_generate_stores_three_closed_stages(client: TestClient, gpu_worker: Settings,
                                             make_account):
    """On a rendered corpus mesh (the duck), with each stage's device report in its event."""
    ann = make_account("ann")
    project_id = client.post("/api/v1/projects", json={"name": "G"},
                             headers=ann.headers).json()["id"]
    duck = view("duck")
    image = client.post(f"/api/v1/projects/{project_id}/assets?filename=duck.png",
                        content=duck.png(), headers=ann.headers).json()
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
    # the browser's download: the same stage packed with EXT_meshopt_compression
    final_url = f"/api/v1/jobs/{job_id}/stages/final.glb"
    plain = client.get(final_url, headers=ann.headers)
    packed = client.get(final_url + "?encoding=meshopt", headers=ann.headers)
    assert plain.status_code == packed.status_code == 200
    assert packed.content[:4] == b"glTF" and len(packed.content) < 0.6 * len(plain.content)
    held = client.get(final_url, headers=ann.headers | {"If-None-Match": plain.headers["etag"]})
    assert held.status_code == 304 and held.content == b"", held.text
    assert plain.headers["etag"] == f'"{hashlib.sha256(plain.content).hexdigest()}"'
    refused = client.get(final_url + "?encoding=gzip", headers=ann.headers)
    assert refused.status_code == 422, refused.text
    topics = event_topics(gpu_worker)
    assert topics.count("core.events.job:Job.StageCompleted") == 3
    assert topics[-1] == "core.events.job:Job.Succeeded"
    # the final stage is also a mesh of the project, to analyse, repair and export
    assert topics[-2] == "core.events.project:Project.AssetDerived"
    made = client.get(f"/api/v1/meshes/{job['result']['mesh']['asset_id']}",
                      headers=ann.headers)
    assert made.status_code == 200, made.text
    assert made.json()["blob_key"] == job["result"]["blob"]
    assert made.json()["derived_from"]["operation"] == "generate"

    final = trimesh.load(io.BytesIO(blobs.get_bytes(job["result"]["blob"])), file_type="glb",
                         force="mesh")
    yellow = np.asarray(duck.image.convert("RGB"))[duck.truth].mean(axis=0)
    painted = final.visual.vertex_colors[:, :3].mean(axis=0)
    assert np.abs(painted - yellow).max() < 25, (painted, yellow)
    _assert_device_report(job)


def _height(mesh: trimesh.parent.Geometry) -> float:
    low, high = mesh.bounds
    return float(high[1] - low[1])


def _assert_device_report(job: dict) -> None:
    """Per stage: device, precision, peak memory and timings; per job: their totals."""
    stats = [job["stages"][stage]["stats"] for stage in STAGES]
    for s in stats:
        assert s["device"] == "cpu" and s["dtype"] == "float32" and s["attempts"] == 1
        assert s["peak_memory_source"].startswith("rss_peak")
        assert s["peak_memory_bytes"] > s["peak_memory_delta_bytes"] >= 0
        assert set(s["timings"]) >= {"mask", "inflate", "mesh", "colour", "export", "store"}
        assert 0 < s["seconds"] < s["elapsed_s"]
    assert stats[0]["elapsed_s"] < stats[1]["elapsed_s"] < stats[2]["elapsed_s"]
    result = job["result"]
    assert result["device"] == "cpu"
    assert result["backend_version"] == GENERATOR_VERSIONS["inflate"]
    assert result["gpu_seconds"] == pytest.approx(sum(s["seconds"] for s in stats), abs=1e-3)
    assert result["peak_memory_bytes"] == max(s["peak_memory_bytes"] for s in stats)


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
    assert names[-4:] == ["preview", "medium", "final", "succeeded"], names
    assert "started" in names and names.index("started") < names.index("preview")
    final = events[-2]
    assert events[-1]["result"]["blob"] == final["blob"]  # the end carries the result
    assert final["faces"] <= 4000 and final["cached"] is False
    glb = client.get(final["url"], headers=cleo.headers)
    assert glb.status_code == 200 and glb.headers["content-type"] == "model/gltf-binary"
    mesh = trimesh.load(io.BytesIO(glb.content), file_type="glb", force="mesh")
    assert mesh.is_watertight
    assert _height(mesh) == pytest.approx(50.0)  # millimetres, the default height (y up)

    # the same bytes and parameters again: answered from the finished job's results, nothing
    # runs again, and the image is the asset the project already has
    requested_before = event_topics(gpu_worker).count("core.events.job:Job.Requested")
    uploads_before = event_topics(gpu_worker).count(UPLOADED)
    with client.stream("POST", url, files={"image": ("again.png", disc_png(), "image/png")},
                       data={"face_budget": "4000", "seed": "3"},
                       headers=cleo.headers | {"Accept": "text/event-stream"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        body = r.read().decode()
    assert "event: final" in body and '"cached": true' in body
    assert event_topics(gpu_worker).count("core.events.job:Job.Requested") == requested_before
    assert event_topics(gpu_worker).count(REUSED) == 1  # the hit, for analytics
    assert event_topics(gpu_worker).count(UPLOADED) == uploads_before
    objects = client.get(f"/api/v1/projects/{project_id}/state",
                         headers=cleo.headers).json()["scene"]["objects"]
    assert len(objects) == 2  # the cache hit shows in the scene too
    assert {o["blob"] for o in objects.values()} == {final["blob"]}

    # someone in another project sends the same image: a job of their own project answers
    # at once with the same blobs; cleo's job stays out of their reach
    dan = make_account("dan")
    other = _project(client, dan)
    with client.stream("POST", f"/api/v1/projects/{other}/generate-progressive",
                       files={"image": ("mine.png", disc_png(), "image/png")},
                       data={"face_budget": "4000", "seed": "3"}, headers=dan.headers) as r:
        theirs = _events(r)
    assert [e["event"] for e in theirs][-2:] == ["final", "succeeded"], theirs
    assert theirs[-2]["cached"] is True and theirs[-2]["blob"] == final["blob"]
    assert theirs[-2]["job_id"] != final["job_id"]
    assert client.get(theirs[-2]["url"], headers=dan.headers).status_code == 200
    # another height is another result (the stored meshes are sized): it runs, not a hit
    with client.stream("POST", f"/api/v1/projects/{other}/generate-progressive",
                       files={"image": ("mine.png", disc_png(), "image/png")},
                       data={"face_budget": "4000", "seed": "3", "height_mm": "80"},
                       headers=dan.headers) as r:
        taller = _events(r)
    assert taller[-2]["event"] == "final" and taller[-2]["cached"] is False, taller
    tall = client.get(taller[-2]["url"], headers=dan.headers)
    tall_mesh = trimesh.load(io.BytesIO(tall.content), file_type="glb", force="mesh")
    assert _height(tall_mesh) == pytest.approx(80.0)
    job_url = f"/api/v1/jobs/{final['job_id']}"
    for refused in (client.get(final["url"], headers=dan.headers),
                    client.get(job_url, headers=dan.headers),
                    client.delete(job_url, headers=dan.headers),
                    client.post(f"{job_url}/undo", headers=dan.headers)):
        assert refused.status_code == 403, refused.text


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
    assert len(jobs) == 10  # each request has a job of its own...
    assert event_topics(pipeline).count("core.events.job:Job.Requested") == 1  # ...one runs
    assert event_topics(pipeline).count(REUSED) == 9  # nine joined the first one's run
    assert pipeline.database_url is not None
    studio = Studio.connect(pipeline.database_url)
    try:
        (ran,) = [j for j in jobs if studio.job(UUID(j)).reused_from is None]
    finally:
        studio.close()
    cancelled, *joined = sorted(jobs - {ran})
    for job_id in (ran, cancelled):  # a join waits where the run it joined waits
        with client.stream("GET", f"/api/v1/jobs/{job_id}/events", headers=dana.headers) as r:
            first = next(line for line in r.iter_lines() if line)
        assert '"event": "queued"' in first and '"position": 0' in first
    # cancelling a queued job ends its stream; a join cancelled leaves the run to the others
    assert client.delete(f"/api/v1/jobs/{cancelled}", headers=dana.headers).status_code == 204
    with client.stream("GET", f"/api/v1/jobs/{cancelled}/events", headers=dana.headers) as r:
        events = _events(r)
    assert [e["event"] for e in events] == ["cancelled"]
    _finish(pipeline, ran)  # the run ends, and with it every join still waiting
    for job_id in joined:
        job = poll(lambda job_id=job_id: client.get(f"/api/v1/jobs/{job_id}",
                                                    headers=dana.headers).json(),
                   lambda j: j.get("state") not in (None, "requested"))
        assert job["state"] == "succeeded" and job["scene_objects"] == [job_id], job
        assert job["stages"]["final"]["blob"] == f"blobs/final-{ran}"
    assert client.get(f"/api/v1/jobs/{cancelled}",
                      headers=dana.headers).json()["state"] == "cancelled"


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
        ({"image": ("x.png", disc_png(), "image/png")}, {"height_mm": "0.5"}, 422),
        ({"image": ("x.png", disc_png(), "image/png")}, {"height_mm": "1001"}, 422),
        ({"image": ("x.png", disc_png(), "image/png")}, {"height_mm": "nan"}, 422),
        ({"image": ("x.png", disc_png(), "image/png")}, {"height_mm": "tall"}, 422),
        ({"picture": ("x.png", disc_png(), "image/png")}, {}, 400),
        ({"image": ("x.png", transparent_png(), "image/png")}, {}, 422),
        ({"image": ("x.png", blank_png(), "image/png")}, {}, 422),
        ({"image": ("x.png", blank_png(4), "image/png")}, {}, 422),
        ({"image": ("x.png", huge_png(10_000, 10_000), "image/png")}, {}, 413),
        ({"image": ("x.png", huge_png(10_000, 10_000), "image/png")}, {"backend": "dream"},
         422),  # the cheap checks first
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
    """Without a GPU worker every job stays queued; one over the free tier's jobs at once is
    refused (429)."""
    from core.limits import DEFAULTS, Tier

    at_once = DEFAULTS[Tier.FREE].concurrent_jobs

    gus = make_account("gus")
    project_id = _project(client, gus)
    image = client.post(f"/api/v1/projects/{project_id}/assets?filename=g.png",
                        content=disc_png(), headers=gus.headers).json()
    url = f"/api/v1/projects/{project_id}/generate"
    for seed in range(at_once):
        started = client.post(url, json={"asset_id": image["id"], "seed": seed},
                              headers=gus.headers)
        assert started.status_code == 202, started.text
        location = started.headers["location"]
        poll(lambda url=location: client.get(url, headers=gus.headers),
             lambda r: r.status_code == 200)  # the read model has it
    refused = client.post(url, json={"asset_id": image["id"], "seed": 99}, headers=gus.headers)
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"] == "application/problem+json"


def test_stored_images_are_checked_before_a_job(client: TestClient, prepared: Settings,
                                                make_account):
    """Any image may be uploaded as an asset; generating from one that shows nothing, or
    that is too large, is refused with nothing queued or stored."""
    ida = make_account("ida")
    project_id = _project(client, ida)
    url = f"/api/v1/projects/{project_id}/generate"

    def upload(name: str, data: bytes) -> str:
        response = client.post(f"/api/v1/projects/{project_id}/assets?filename={name}",
                               content=data, headers=ida.headers)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    cases = [(upload("clear.png", transparent_png()), 422, "fully transparent"),
             (upload("white.png", blank_png()), 422, "blank"),
             (upload("wide.png", huge_png(8_000, 6_000)), 413, "48.0 megapixels")]
    before, stored = event_topics(prepared), bucket_keys(prepared)
    for asset_id, status, reason in cases:
        response = client.post(url, json={"asset_id": asset_id}, headers=ida.headers)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert reason in response.json()["detail"]
    assert event_topics(prepared) == before
    assert bucket_keys(prepared) == stored


# -- the dedup cache, with the worker's part played by the test ---------------------------------


def _finish(settings: Settings, job_id: str, seconds: tuple[float, ...] = (0.5, 1.0, 2.0),
            version: str = GENERATOR_VERSIONS["inflate"]) -> None:
    """Record what a GPU worker would for a job: three stages with their device seconds and
    a result naming the generator version, so that cache and analytics have a real job."""
    assert settings.database_url is not None
    studio = Studio.connect(settings.database_url)
    try:
        job = UUID(job_id)
        studio.start_job(job, "gpu-test", "cpu")
        for stage, spent in zip(STAGES, seconds, strict=True):
            studio.complete_stage(job, stage, f"blobs/{stage}-{job_id}", {
                "faces": 100, "seconds": spent, "device": "cpu",
                "peak_memory_bytes": 2**20})
        studio.succeed_job(job, {"blob": f"blobs/final-{job_id}", "backend": "inflate",
                                 "backend_version": version, "gpu_seconds": sum(seconds)})
    finally:
        studio.close()


def _image_asset(client: TestClient, account, project_id: str) -> str:
    response = client.post(f"/api/v1/projects/{project_id}/assets?filename=disc.png",
                           content=disc_png(), headers=account.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _generate(client: TestClient, account, project_id: str, asset_id: str,
              seed: int = 0) -> str:
    response = client.post(f"/api/v1/projects/{project_id}/generate",
                           json={"asset_id": asset_id, "seed": seed}, headers=account.headers)
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def test_cached_results_expire_after_their_ttl(client: TestClient, pipeline: Settings,
                                              make_account):
    jo = make_account("jo")
    project_id = _project(client, jo)
    asset_id = _image_asset(client, jo, project_id)
    first = _generate(client, jo, project_id, asset_id)
    _finish(pipeline, first)
    assert _generate(client, jo, project_id, asset_id) != first  # a hit, as a job of its own
    with TestClient(create_app(pipeline.replace(generation_cache_ttl_s=0.0)),
                    raise_server_exceptions=False) as expired:
        again = _generate(expired, jo, project_id, asset_id)
    assert again != first  # the same request, past the TTL: a new job
    assert event_topics(pipeline).count(REQUESTED) == 2
    assert event_topics(pipeline).count(REUSED) == 1


def test_cached_results_expire_with_a_new_generator_version(
        client: TestClient, pipeline: Settings, make_account, monkeypatch):
    kit = make_account("kit")
    project_id = _project(client, kit)
    asset_id = _image_asset(client, kit, project_id)
    made_by_old_release = _generate(client, kit, project_id, asset_id)
    _finish(pipeline, made_by_old_release, version="0")
    current = _generate(client, kit, project_id, asset_id)
    assert current != made_by_old_release
    _finish(pipeline, current)
    assert _generate(client, kit, project_id, asset_id) != current  # a hit, nothing runs
    assert event_topics(pipeline).count(REQUESTED) == 2
    monkeypatch.setitem(GENERATOR_VERSIONS, "inflate", "99")  # the next release
    _generate(client, kit, project_id, asset_id)
    assert event_topics(pipeline).count(REQUESTED) == 3  # runs again


def test_generation_analytics_from_the_log(client: TestClient, pipeline: Settings,
                                           make_account):
    """Hits, single-flight joins and saved GPU seconds, for site admins only, and the same
    after the read model is rebuilt from the log."""
    root, lee = make_account("root", admin=True), make_account("lee")
    project_id = _project(client, lee)
    asset_id = _image_asset(client, lee, project_id)
    shared = _generate(client, lee, project_id, asset_id)
    assert shared not in {_generate(client, lee, project_id, asset_id) for _ in range(2)}
    _finish(pipeline, shared, seconds=(0.5, 1.0, 2.0))
    assert _generate(client, lee, project_id, asset_id) != shared  # a cache hit
    failed = _generate(client, lee, project_id, asset_id, seed=5)
    assert pipeline.database_url is not None
    studio = Studio.connect(pipeline.database_url)
    try:
        studio.fail_job(UUID(failed), "out of memory", retryable=True, actor="gpu-test")
    finally:
        studio.close()

    url = "/api/v1/admin/analytics/generation"
    body = client.get(url, headers=root.headers).json()
    assert body["total"] == {
        "jobs": 2, "succeeded": 1, "failed": 1, "cache_hits": 1, "single_flight_joins": 2,
        "requests": 5, "hit_rate": 0.6, "gpu_seconds": 3.5, "saved_gpu_seconds": 10.5}
    assert {row["backend"] for row in body["days"]} == {"inflate"}
    assert sum(row["requests"] for row in body["days"]) == 5
    assert max(row["max_peak_memory_bytes"] for row in body["days"]) == 2**20

    for refused, status in ((client.get(url, headers=lee.headers), 403),
                            (client.get(url + "?days=0", headers=root.headers), 422),
                            (client.get(url + "?days=many", headers=root.headers), 422)):
        assert refused.status_code == status, refused.text
        assert refused.headers["content-type"] == "application/problem+json"

    runner = ProjectionRunner(pipeline.database_url, names=["generation_stats"])
    try:
        runner.rebuild("generation_stats")
    finally:
        runner.close()
    assert json.loads(client.get(url, headers=root.headers).text) == body
