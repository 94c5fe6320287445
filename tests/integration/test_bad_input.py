"""Bad input gets a 4xx problem+json and changes nothing: no event, no stored object."""

from __future__ import annotations

import os
import uuid

import pytest
from starlette.testclient import TestClient

from core.settings import Settings
from tests.integration.helpers import bucket_keys, event_topics


@pytest.fixture
def owner_project(client: TestClient, prepared: Settings, make_account):
    owner = make_account("owner")
    project = client.post("/api/v1/projects", json={"name": "Bad"}, headers=owner.headers)
    assert project.status_code == 201
    return owner, project.json()["id"]


def _assert_problem(response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]


UPLOADS = [
    pytest.param("garbage.stl", os.urandom(4096), 415, id="random bytes named .stl"),
    pytest.param("empty.obj", b"", 422, id="empty file"),
    pytest.param("notes.txt", b"just some words\n" * 20, 415, id="text file"),
    pytest.param("fake.png", b"\x89PNG\r\n\x1a\n" + os.urandom(200), 415, id="broken PNG"),
    pytest.param("points.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\n", 415, id="point-only OBJ"),
]


@pytest.mark.parametrize(("filename", "content", "status"), UPLOADS)
@pytest.mark.parametrize("transport", ["multipart", "raw"])
def test_refused_uploads_leave_nothing_behind(client, prepared, owner_project, filename,
                                              content, status, transport):
    owner, project_id = owner_project
    events_before, objects_before = event_topics(prepared), bucket_keys(prepared)
    url = f"/api/v1/projects/{project_id}/assets"
    if transport == "multipart":
        response = client.post(url, files={"file": (filename, content)}, headers=owner.headers)
    else:
        response = client.post(f"{url}?filename={filename}", content=content,
                               headers=owner.headers)
    assert response.status_code in (415, 422)
    _assert_problem(response, status)
    assert filename in response.json()["detail"] or "empty" in response.json()["detail"]
    assert event_topics(prepared) == events_before
    assert bucket_keys(prepared) == objects_before == []


def test_unknown_and_malformed_project_ids_are_404(client, prepared, owner_project):
    owner, _ = owner_project
    before = event_topics(prepared)
    for project_id in (uuid.uuid4(), "not-a-uuid"):
        _assert_problem(client.get(f"/api/v1/projects/{project_id}", headers=owner.headers), 404)
        _assert_problem(client.post(f"/api/v1/projects/{project_id}/assets?filename=a.stl",
                                    content=b"solid x\nendsolid x\n", headers=owner.headers), 404)
    for asset_id in (uuid.uuid4(), "nope"):
        _assert_problem(client.post(f"/api/v1/meshes/{asset_id}/analysis",
                                    headers=owner.headers), 404)
    _assert_problem(client.get(f"/api/v1/jobs/{uuid.uuid4()}", headers=owner.headers), 404)
    assert event_topics(prepared) == before
    assert bucket_keys(prepared) == []


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe", b'"a string"'])
def test_malformed_json_is_400(client, prepared, owner_project, body):
    owner, project_id = owner_project
    before = event_topics(prepared)
    headers = owner.headers | {"Content-Type": "application/json"}
    _assert_problem(client.post("/api/v1/projects", content=body, headers=headers), 400)
    _assert_problem(client.patch(f"/api/v1/projects/{project_id}", content=body,
                                 headers=headers), 400)
    _assert_problem(client.post("/api/v1/auth/tokens", content=body), 400)
    assert event_topics(prepared) == before


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": 7}, {"name": "x" * 201},
                                  {"name": "a\x00b"}, {"name": "tab\there"}])
def test_invalid_fields_are_422(client, prepared, owner_project, body):
    owner, project_id = owner_project
    before = event_topics(prepared)
    _assert_problem(client.post("/api/v1/projects", json=body, headers=owner.headers), 422)
    _assert_problem(client.patch(f"/api/v1/projects/{project_id}", json=body,
                                 headers=owner.headers), 422)
    assert event_topics(prepared) == before


def test_an_image_is_not_a_mesh(client, pipeline, owner_project):
    import io

    from PIL import Image

    owner, project_id = owner_project
    png = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(png, format="PNG")
    image = client.post(f"/api/v1/projects/{project_id}/assets?filename=red.png",
                        content=png.getvalue(), headers=owner.headers)
    assert image.status_code == 201 and image.json()["kind"] == "image"
    before = event_topics(pipeline)
    _assert_problem(client.post(f"/api/v1/meshes/{image.json()['id']}/analysis",
                                headers=owner.headers), 422)
    assert event_topics(pipeline) == before


def test_unknown_route_and_wrong_method_are_problems(client):
    _assert_problem(client.get("/api/v1/nothing-here"), 404)
    _assert_problem(client.put("/healthz"), 405)
