"""Mesh thumbnails on the real stack (PostgreSQL, NATS, S3, the mesh worker): the analysis
draws one, it is served as a cacheable PNG to those who may see the mesh and to no one else,
and the assistant's similar designs link to it."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Callable

import trimesh
from PIL import Image
from starlette.testclient import TestClient

from core.settings import Settings
from tests.integration.conftest import Account
from tests.integration.test_assistant import _analysed, _ask, _project, _stl
from tests.integration.test_mesh_operations import upload


def _png(body: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(body))
    assert picture.format == "PNG" and picture.mode == "RGBA"
    return picture


def test_an_analysed_mesh_has_a_thumbnail_only_its_viewers_see(
        client: TestClient, pipeline: Settings, make_account: Callable[..., Account]) -> None:
    alice, bob = make_account("alice"), make_account("bob")
    project = _project(client, alice.headers, "Thumbnails")
    other = _project(client, alice.headers, "More thumbnails")
    ball = upload(client, project, alice.headers,
                  _stl(trimesh.creation.icosphere(subdivisions=2, radius=10.0)), "ball.stl")
    orb = upload(client, other, alice.headers,
                 _stl(trimesh.creation.icosphere(subdivisions=2, radius=11.0)), "orb.stl")

    r = client.get(f"/api/v1/meshes/{ball['id']}/thumbnail", headers=alice.headers)
    assert r.status_code == 404 and "not been analysed" in r.json()["detail"], r.text
    assert r.headers["content-type"].startswith("application/problem+json")

    for asset in (ball, orb):
        _analysed(client, asset["id"], alice.headers)
    r = client.get(f"/api/v1/meshes/{ball['id']}/thumbnail", headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["etag"] == f'"{hashlib.sha256(r.content).hexdigest()}"'
    assert r.headers["cache-control"].startswith("private, max-age=")
    assert _png(r.content).getchannel("A").getextrema() == (0, 255)
    # A client that holds these bytes is told so, with no body (a list, a weak tag, or *).
    for held in (r.headers["etag"], f'"stale", W/{r.headers["etag"]}', "*"):
        again = client.get(f"/api/v1/meshes/{ball['id']}/thumbnail",
                           headers=alice.headers | {"If-None-Match": held})
        assert again.status_code == 304 and again.content == b"", held
        assert again.headers["etag"] == r.headers["etag"]
        assert again.headers["cache-control"] == r.headers["cache-control"]
    # The face maps are content-addressed too: revalidated each time (no-cache), a 304 while
    # the client's copy is the current one.
    faces = client.get(f"/api/v1/meshes/{ball['id']}/analysis/faces", headers=alice.headers)
    assert faces.status_code == 200 and faces.headers["cache-control"] == "private, no-cache"
    assert faces.headers["etag"] == f'"{hashlib.sha256(faces.content).hexdigest()}"'
    held_faces = client.get(f"/api/v1/meshes/{ball['id']}/analysis/faces",
                            headers=alice.headers | {"If-None-Match": faces.headers["etag"]})
    assert held_faces.status_code == 304 and held_faces.content == b""

    # Another user's: refused exactly as reading the mesh itself is (a problem, no picture).
    r = client.get(f"/api/v1/meshes/{ball['id']}/thumbnail", headers=bob.headers)
    mesh = client.get(f"/api/v1/meshes/{ball['id']}", headers=bob.headers)
    assert r.status_code == mesh.status_code == 403, r.text
    r = client.get(f"/api/v1/meshes/{ball['id']}/thumbnail",  # a tag opens nothing
                   headers=bob.headers | {"If-None-Match": "*"})
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    r = client.get(f"/api/v1/meshes/{uuid.uuid4()}/thumbnail", headers=alice.headers)
    assert r.status_code == 404 and r.headers["content-type"].startswith(
        "application/problem+json"), r.text

    answer = _ask(client, project, alice.headers, "show me similar designs", ball["id"])
    assert [n["filename"] for n in answer["similar"]] == ["orb.stl"]
    assert "no thumbnail" not in answer["answer"].lower()
    url = answer["similar"][0]["thumbnail_url"]
    assert url == f"/api/v1/meshes/{orb['id']}/thumbnail"
    r = client.get(url, headers=alice.headers)
    assert r.status_code == 200 and _png(r.content).size == (128, 128)
