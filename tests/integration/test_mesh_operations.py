"""Mesh operations end to end: HTTP → Job.Requested → outbox → JetStream → mesh worker →
a new mesh blob and ``Project.AssetDerived`` → read models, on real PostgreSQL, NATS and S3."""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import trimesh
from starlette.testclient import TestClient

from core.events.job import JobState
from core.events.job_kinds import MESH_REPAIR
from core.events.outbox import OutboxDispatcher
from core.events.studio import Studio
from core.meshio import load_mesh
from core.scene import document
from core.settings import Settings
from tests.integration.conftest import async_part
from tests.integration.helpers import box_stl, event_topics, poll
from workers.mesh.materials import MATERIALS, TEXTURE_SIZES, validate_material_params
from workers.mesh.printability import decode_face_maps


def open_box_stl(subdivisions: int = 2) -> bytes:
    """An icosphere with a few faces cut away: one hole, so not watertight."""
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions, radius=10.0)
    holed = trimesh.Trimesh(sphere.vertices, sphere.faces[3:], process=False)
    buffer = io.BytesIO()
    holed.export(buffer, file_type="stl")
    return buffer.getvalue()


def upload(client: TestClient, project_id: str, headers: dict[str, str], data: bytes,
           filename: str = "part.stl", units: str = "mm") -> dict:
    r = client.post(f"/api/v1/projects/{project_id}/assets",
                    params={"filename": filename, "units": units}, content=data,
                    headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_repair_waits_and_answers_with_the_new_mesh(client: TestClient, pipeline: Settings,
                                                     make_account):
    alice = make_account("alice")
    project = client.post("/api/v1/projects", json={"name": "Repairs"},
                          headers=alice.headers).json()["id"]
    broken = upload(client, project, alice.headers, open_box_stl(), units="cm")
    assert broken["units"] == "cm"

    r = client.post(f"/api/v1/meshes/{broken['id']}/repair?wait=true", json={},
                    headers=alice.headers)
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["state"] == "succeeded" and job["kind"] == MESH_REPAIR
    assert job["result"]["report"]["holes_filled"] >= 1
    assert job["result"]["report"]["after"]["printable"] is True
    mesh_id = job["mesh_id"]

    made = client.get(f"/api/v1/meshes/{mesh_id}", headers=alice.headers)
    assert made.status_code == 200, made.text
    assert made.json()["derived_from"] == {"asset_id": broken["id"], "job_id": job["id"],
                                           "operation": MESH_REPAIR}
    assert made.json()["units"] == "cm" and made.json()["filename"] == "part (repaired).glb"
    listed = client.get(f"/api/v1/projects/{project}/assets", headers=alice.headers).json()
    assert {a["id"] for a in listed["assets"]} == {broken["id"], mesh_id}  # the source stays

    exported = client.get(f"/api/v1/meshes/{mesh_id}/export?format=stl", headers=alice.headers)
    assert exported.status_code == 200, exported.text
    assert 'filename="part (repaired).stl"' in exported.headers["content-disposition"]
    repaired = load_mesh(exported.content, file_type="stl")
    assert repaired.is_watertight and repaired.is_winding_consistent and repaired.volume > 0
    original = client.get(f"/api/v1/meshes/{broken['id']}/export", headers=alice.headers)
    assert original.content == open_box_stl()  # the original is kept, byte for byte
    assert not load_mesh(original.content, file_type="stl").is_watertight

    analysed = client.post(f"/api/v1/meshes/{mesh_id}/analysis?wait=true",
                           headers=alice.headers)
    assert analysed.status_code == 200, analysed.text
    stats = client.get(f"/api/v1/meshes/{mesh_id}/analysis", headers=alice.headers).json()
    assert stats["stats"]["watertight"] is True and stats["stats"]["units"] == "cm"
    assert stats["stats"]["quality"]["printable"] is True
    printability = stats["stats"]["printability"]
    assert 0 <= printability["score"] <= 100 and printability["units"] == "cm"
    assert printability["print"]["weight_g"] > 0
    maps = client.get(stats["face_maps_url"], headers=alice.headers)
    assert maps.status_code == 200, maps.text
    decoded = decode_face_maps(maps.content)
    assert set(decoded) == {"overhang", "wall_thickness_mm"}
    assert len(decoded["overhang"]) == stats["stats"]["faces"]

    timeline = client.get(f"/api/v1/projects/{project}/timeline", headers=alice.headers)
    summaries = [e["summary"] for e in timeline.json()["events"]]
    assert "repair: made part (repaired).glb" in summaries
    before, after = (job["result"]["report"][k]["score"] for k in ("before", "after"))
    assert f"repair of part: score {before:.0f} → {after:.0f}" in summaries, summaries
    assert before < after
    assert event_topics(pipeline).count("core.events.project:Project.AssetDerived") == 1


def test_a_repair_on_a_scene_object_shows_there_and_can_be_undone(
        client: TestClient, pipeline: Settings, make_account):
    alice = make_account("alice")
    project = client.post("/api/v1/projects", json={"name": "Scene"},
                          headers=alice.headers).json()["id"]
    broken = upload(client, project, alice.headers, open_box_stl())
    assert pipeline.database_url is not None
    studio = Studio.connect(pipeline.database_url)
    try:
        studio.edit_scene(uuid.UUID(project), {"part": {
            "name": "part", "asset": broken["id"], "blob": broken["blob_key"]}}, "alice", "test")
        r = client.post(f"/api/v1/meshes/{broken['id']}/repair?wait=true",
                        json={"object_id": "part"}, headers=alice.headers)
        assert r.status_code == 200 and r.json()["state"] == "succeeded", r.text
        job = r.json()

        def shown() -> dict:
            return document.snapshot(studio.scene(uuid.UUID(project)).state)["objects"]["part"]

        assert shown()["asset"] == job["mesh_id"] and shown()["name"] == "part"
        # the timeline names the object and the person who asked, never ids
        lines = [f"{e['actor_name']} {e['summary']}" for e in client.get(
            f"/api/v1/projects/{project}/timeline", headers=alice.headers).json()["events"]]
        assert "alice repair showed its result on part" in lines, lines
        assert any(line.endswith(" changed the mesh of part") for line in lines), lines
        undone = client.post(f"/api/v1/jobs/{job['id']}/undo", headers=alice.headers)
        assert undone.status_code == 200, undone.text
        assert shown()["asset"] == broken["id"] and shown()["blob"] == broken["blob_key"]
    finally:
        studio.close()


@pytest.mark.parametrize(("path", "body", "status", "words"), [
    ("/explode", {}, 404, "no mesh operation 'explode'"),
    ("/repair", {"debris_fraction": 2}, 422, "debris_fraction"),
    ("/repair", {"colour": "red"}, 422, "unknown parameter(s) colour"),
    ("/repair", {"object_id": "nowhere"}, 404, "object nowhere is not in the scene"),
    ("/repair?wait=maybe", {}, 422, "wait must be true or false"),
    ("/repair?wait=true&timeout=9999", {}, 422, "timeout must lie in"),
    ("/analysis", {"units": "furlong"}, 422, "units must be one of"),
])
def test_bad_operations_are_refused_before_anything_is_queued(
        client: TestClient, pipeline: Settings, make_account, path, body, status, words):
    bob = make_account("bob")
    project = client.post("/api/v1/projects", json={"name": "Bad"},
                          headers=bob.headers).json()["id"]
    mesh = upload(client, project, bob.headers, box_stl())
    before = event_topics(pipeline)
    r = client.post(f"/api/v1/meshes/{mesh['id']}{path}", json=body, headers=bob.headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert words in r.json()["detail"]
    assert event_topics(pipeline) == before


def test_an_image_cannot_be_repaired_or_exported(client: TestClient, pipeline: Settings,
                                                 make_account):
    carol = make_account("carol")
    project = client.post("/api/v1/projects", json={"name": "Img"},
                          headers=carol.headers).json()["id"]
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(png, format="PNG")
    image = upload(client, project, carol.headers, png.getvalue(), filename="red.png")
    for r in (client.post(f"/api/v1/meshes/{image['id']}/repair", json={},
                          headers=carol.headers),
              client.get(f"/api/v1/meshes/{image['id']}/export?format=stl",
                         headers=carol.headers)):
        assert r.status_code == 422 and "not a mesh" in r.json()["detail"], r.text
    mesh = upload(client, project, carol.headers, box_stl())
    r = client.get(f"/api/v1/meshes/{mesh['id']}/export?format=dwg", headers=carol.headers)
    assert r.status_code == 422 and "format must be" in r.json()["detail"]
    r = client.get(f"/api/v1/meshes/{mesh['id']}/export?format=stl&encoding=meshopt",
                   headers=carol.headers)
    assert r.status_code == 422 and "format=glb only" in r.json()["detail"]
    r = client.get(f"/api/v1/meshes/{mesh['id']}/export?format=glb&encoding=zip",
                   headers=carol.headers)
    assert r.status_code == 422 and "encoding must be" in r.json()["detail"]


def _start_mesh_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | settings.to_env()
    return subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", "mesh"], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def test_a_mesh_worker_killed_mid_job_leads_to_one_new_mesh(prepared: Settings, tmp_path):
    """SIGKILL the mesh worker (and its geometry process) while it repairs a large mesh:
    JetStream redelivers after the ack wait and the job ends with one result and one mesh."""
    settings = prepared.replace(job_ack_wait_s=3.0)
    assert settings.database_url is not None and settings.s3 is not None
    from core.events.blobs import BlobStore

    studio = Studio.connect(settings.database_url)
    data = open_box_stl(subdivisions=6)  # ~80k faces: seconds of repair
    key = BlobStore(settings.s3).put_bytes(data, "model/stl")
    project = studio.create_project("kill", actor="u")
    from core.events.project import Asset

    asset = Asset(str(uuid.uuid4()), key, "0" * 64, "model/stl", "mesh", len(data),
                  "sphere.stl", "u")
    studio.record_asset(project, asset, "u")
    dispatcher = OutboxDispatcher(settings)
    parts = [async_part("dispatcher", dispatcher.run)]
    log = tmp_path / "worker.log"
    worker = _start_mesh_worker(settings, log)
    try:
        job_id = studio.request_job(project, MESH_REPAIR, {
            "asset_id": asset.asset_id, "blob_key": key, "format": "stl",
            "filename": "sphere.stl", "units": "mm"},
            {"debris_fraction": 1e-4, "merge_tolerance": None}, actor="u")
        poll(lambda: studio.job(job_id), lambda j: j.state is JobState.STARTED, timeout=90)
        time.sleep(0.5)
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its geometry process
        worker.wait(10)
        assert not studio.job(job_id).state.finished, "finished before the kill"
        worker = _start_mesh_worker(settings, log)
        job = poll(lambda: studio.job(job_id), lambda j: j.state.finished, timeout=180)
        assert job.state is JobState.SUCCEEDED, job.error
        assert job.attempts == 2
        kinds = [type(e).__name__ for e in studio.events.get(job_id)]
        assert kinds.count("Succeeded") == 1
        derived = [e for e in studio.events.get(project)
                   if type(e).__name__ == "AssetDerived"]
        assert len(derived) == 1 and derived[0].asset_id == job.result["mesh"]["asset_id"]
    finally:
        with_group = [worker]
        for w in with_group:
            if w.poll() is None:
                os.killpg(w.pid, signal.SIGKILL)
                w.wait(10)
        for part in parts:
            part.stop()
        dispatcher.close()
        studio.close()


def sphere_stl(subdivisions: int = 3) -> bytes:
    buffer = io.BytesIO()
    trimesh.creation.icosphere(subdivisions=subdivisions, radius=10.0).export(
        buffer, file_type="stl")
    return buffer.getvalue()


def test_the_material_catalogue_is_what_the_worker_bakes_from(client: TestClient,
                                                                make_account):
    """The workspace lists and previews materials from this route, so it must agree with
    the worker's own defaults, and a catalogue entry sent back as parameters is accepted."""
    eve = make_account("eve")
    r = client.get("/api/v1/materials", headers=eve.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [m["kind"] for m in body["materials"]] == list(MATERIALS)
    assert body["texture_sizes"] == list(TEXTURE_SIZES)
    for entry in body["materials"]:
        defaults = validate_material_params(entry["kind"], None)
        given = validate_material_params(entry["kind"], {"color": entry["color"],
                                                         "roughness": entry["roughness"]})
        assert given["roughness"] == defaults["roughness"]
        assert given["color"] == pytest.approx(defaults["color"], abs=0.5 / 255)
        assert entry["metallic"] == (1.0 if entry["kind"] == "metal" else 0.0)
    assert client.get("/api/v1/materials").status_code == 401


def test_style_and_material_make_new_meshes(client: TestClient, pipeline: Settings,
                                            make_account):
    dora = make_account("dora")
    project = client.post("/api/v1/projects", json={"name": "Looks"},
                          headers=dora.headers).json()["id"]
    sphere = upload(client, project, dora.headers, sphere_stl(), filename="ball.stl")

    styled = client.post(f"/api/v1/meshes/{sphere['id']}/style?wait=true",
                         json={"style": "low_poly", "ratio": 0.25}, headers=dora.headers)
    assert styled.status_code == 200 and styled.json()["state"] == "succeeded", styled.text
    report = styled.json()["result"]["report"]
    assert report["faces_before"] == 1280 and report["closed"] is True
    assert 0.2 * 1280 <= report["faces"] <= 0.3 * 1280
    low = client.get(f"/api/v1/meshes/{styled.json()['mesh_id']}/export?format=stl",
                     headers=dora.headers)
    low_mesh = load_mesh(low.content, file_type="stl")
    assert low_mesh.is_watertight and len(low_mesh.faces) == report["faces"]

    textured = client.post(f"/api/v1/meshes/{sphere['id']}/material?wait=true",
                           json={"material": "wood", "seed": 7, "texture_size": 128},
                           headers=dora.headers)
    assert textured.status_code == 200 and textured.json()["state"] == "succeeded", \
        textured.text
    glb = client.get(f"/api/v1/meshes/{textured.json()['mesh_id']}/export?format=glb",
                     headers=dora.headers)
    assert glb.status_code == 200 and glb.content[:4] == b"glTF"
    scene = trimesh.load_scene(io.BytesIO(glb.content), file_type="glb")
    (geometry,) = scene.geometry.values()
    material = geometry.visual.material
    assert material.baseColorTexture is not None and material.occlusionTexture is not None
    assert material.baseColorTexture.size == (128, 128)
    assert len(geometry.faces) == 1280
    # packed for the browser: geometry streams compressed, textures as they were
    packed = client.get(f"/api/v1/meshes/{textured.json()['mesh_id']}/export?format=glb"
                        "&encoding=meshopt", headers=dora.headers)
    assert packed.status_code == 200 and packed.content[:4] == b"glTF"
    assert len(packed.content) < len(glb.content)
    head = json.loads(packed.content[20:20 + struct.unpack_from("<I", packed.content, 12)[0]])
    assert head["extensionsRequired"] == ["EXT_meshopt_compression"]
    assert len(head["images"]) == len(json.loads(
        glb.content[20:20 + struct.unpack_from("<I", glb.content, 12)[0]])["images"])


def test_a_material_is_kept_through_later_operations(client: TestClient, pipeline: Settings,
                                                      make_account):
    """Reproduction (issue 21, item 12): optimising a textured mesh dropped its material. A
    repair, style or optimise of a mesh that wears a material (on it, or up its lineage) makes
    the material again on the new surface, with the same kind and seed."""
    ema = make_account("ema")
    project = client.post("/api/v1/projects", json={"name": "Chains"},
                          headers=ema.headers).json()["id"]
    sphere = upload(client, project, ema.headers, sphere_stl(), filename="ball.stl")

    def run(mesh_id: str, operation: str, body: dict) -> dict:
        r = client.post(f"/api/v1/meshes/{mesh_id}/{operation}?wait=true", json=body,
                        headers=ema.headers)
        assert r.status_code == 200 and r.json()["state"] == "succeeded", r.text
        return r.json()

    def textures(mesh_id: str) -> list[tuple[int, int]]:
        glb = client.get(f"/api/v1/meshes/{mesh_id}/export?format=glb", headers=ema.headers)
        scene = trimesh.load_scene(io.BytesIO(glb.content), file_type="glb")
        return [g.visual.material.baseColorTexture.size for g in scene.geometry.values()
                if getattr(g.visual, "material", None) is not None
                and getattr(g.visual.material, "baseColorTexture", None) is not None]

    wood = run(sphere["id"], "material", {"material": "wood", "seed": 7, "texture_size": 128})
    assert textures(wood["mesh_id"]) == [(128, 128)]
    styled = run(wood["mesh_id"], "style", {"style": "low_poly", "ratio": 0.5})
    assert styled["result"]["report"]["material"]["material"] == "wood"
    assert textures(styled["mesh_id"]) == [(128, 128)]
    # two steps from the material, through the styled mesh
    repaired = run(styled["mesh_id"], "repair", {})
    assert repaired["result"]["report"]["material"] == {
        "material": "wood", "seed": 7, "options": styled["result"]["report"]["material"][
            "options"]}
    assert textures(repaired["mesh_id"]) == [(128, 128)]
    optimised = run(repaired["mesh_id"], "optimise", {})
    assert optimised["result"]["report"]["material"]["material"] == "wood"
    assert textures(optimised["mesh_id"]) == [(128, 128)]
    # a mesh that never wore one gets none
    plain = run(sphere["id"], "repair", {})
    assert "material" not in plain["result"]["report"] and textures(plain["mesh_id"]) == []


def test_a_mesh_an_operation_made_is_analysed_without_being_asked(
        client: TestClient, pipeline: Settings, make_account):
    """Reproduction (issue 21, item 12): after a repair the mesh panel kept the old mesh's
    score until someone asked for a new analysis. The new mesh's analysis is requested with
    the operation's result (by the server: nobody's job quota), in its units."""
    finn = make_account("finn")
    project = client.post("/api/v1/projects", json={"name": "Scores"},
                          headers=finn.headers).json()["id"]
    broken = upload(client, project, finn.headers, open_box_stl(), units="cm")
    r = client.post(f"/api/v1/meshes/{broken['id']}/repair?wait=true", json={},
                    headers=finn.headers)
    assert r.status_code == 200 and r.json()["state"] == "succeeded", r.text
    url = f"/api/v1/meshes/{r.json()['mesh_id']}/analysis"
    analysis = poll(lambda: client.get(url, headers=finn.headers),
                    lambda answer: answer.status_code == 200 and "stats" in answer.json(),
                    timeout=60).json()
    assert analysis["stats"]["units"] == "cm" and analysis["stats"]["watertight"] is True
    # the source mesh, uploaded and never operated on, was not analysed by itself
    source = client.get(f"/api/v1/meshes/{broken['id']}/analysis", headers=finn.headers)
    assert source.status_code == 404, source.text
