"""Typed request bodies at the edge: a body that is not finite, not closed, not of the right
types, too deep or too large is refused with a problem (422, or 413 for size) before anything
is recorded, and a body too large is refused while it streams, not after it was read whole."""

from __future__ import annotations

import select
import socket
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from api.jsonbody import MAX_JSON_BYTES
from core.settings import Settings
from tests.integration.helpers import box_stl, event_topics
from tests.integration.live_server import serving

STREAMED_BYTES = 200 * 1024 * 1024
CHUNK = 256 * 1024


def _problem(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail: str = response.json()["detail"]
    return detail


@pytest.fixture
def mesh(client: TestClient, pipeline: Settings, make_account):
    """An owner's headers and a stored mesh that the read models know."""
    owner = make_account("mesher")
    project = client.post("/api/v1/projects", json={"name": "Typed"}, headers=owner.headers)
    uploaded = client.post(f"/api/v1/projects/{project.json()['id']}/assets",
                           params={"filename": "box.stl"}, content=box_stl(),
                           headers=owner.headers)
    assert uploaded.status_code == 201, uploaded.text
    return owner.headers, uploaded.json()["id"]


@pytest.mark.parametrize("number", [b"Infinity", b"-Infinity", b"NaN", b"1e999"])
def test_a_non_finite_number_is_refused_and_no_job_is_recorded(client, pipeline, mesh, number):
    """Reproduction 1: ``{"merge_tolerance": Infinity}`` was accepted (202) and its job then
    stopped every read model, since PostgreSQL's jsonb refuses the token."""
    headers, mesh_id = mesh
    before = event_topics(pipeline)
    response = client.post(f"/api/v1/meshes/{mesh_id}/repair",
                           content=b'{"merge_tolerance": ' + number + b"}",
                           headers=headers | {"Content-Type": "application/json"})
    assert "merge_tolerance" in _problem(response, 422)
    nested = client.post(f"/api/v1/meshes/{mesh_id}/analysis",
                         content=b'{"printer": {"nozzle_mm": ' + number + b"}}",
                         headers=headers | {"Content-Type": "application/json"})
    assert "printer.nozzle_mm" in _problem(nested, 422)
    assert event_topics(pipeline) == before


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/repair", {"debris_fraction": 0.1, "colour": "red"}, "colour"),
    ("/style", {"style": "low_poly", "ratio": 0.5, "sharpness": 2}, "sharpness"),
    ("/analysis", {"printer": {"nozzle": 0.4}}, "printer.nozzle"),
    ("/repair", {"debris_fraction": "0.1"}, "debris_fraction"),
    ("/optimise", {"reorient": 1}, "reorient"),
    ("/material", {"material": "wood", "seed": 1.5}, "seed"),
    ("/analysis", {"up": [0, 0, "z"]}, "up.2"),
])
def test_unknown_keys_and_wrong_types_in_mesh_operations_are_422(client, pipeline, mesh, path,
                                                                 body, field):
    headers, mesh_id = mesh
    before = event_topics(pipeline)
    response = client.post(f"/api/v1/meshes/{mesh_id}{path}", json=body, headers=headers)
    assert field in _problem(response, 422)
    assert event_topics(pipeline) == before


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "Fine", "colour": "blue"}, "colour"),
    ({"name": ["a list"]}, "name"),
    ({"name": None}, "name"),
    ({"name": True}, "name"),
])
def test_unknown_keys_and_wrong_types_in_project_bodies_are_422(client, prepared, make_account,
                                                                body, field):
    owner = make_account("typist")
    before = event_topics(prepared)
    assert field in _problem(client.post("/api/v1/projects", json=body, headers=owner.headers),
                             422)
    assert event_topics(prepared) == before


def test_sign_in_bodies_are_typed(client, prepared, make_account):
    account = make_account("signer")
    good = {"username": account.username, "password": account.password}
    assert "password" in _problem(client.post("/api/v1/auth/tokens",
                                              json=good | {"password": 12345678}), 422)
    assert "remember_me" in _problem(client.post("/api/v1/auth/tokens",
                                                 json=good | {"remember_me": True}), 422)
    assert "NUL" in _problem(client.post("/api/v1/auth/tokens",
                                         json=good | {"username": "a\x00b"}), 422)
    assert client.post("/api/v1/auth/tokens", json=good).status_code == 201


def test_deep_nesting_is_a_4xx_not_a_server_error(client, pipeline, mesh):
    """Reproduction 8: 10,000 nested arrays raised RecursionError (500)."""
    headers, mesh_id = mesh
    deep = b'{"name": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    before = event_topics(pipeline)
    json_headers = headers | {"Content-Type": "application/json"}
    for path in ("/api/v1/projects", f"/api/v1/meshes/{mesh_id}/repair", "/api/v1/auth/tokens"):
        assert "nests deeper" in _problem(client.post(path, content=deep, headers=json_headers),
                                          422)
    just_too_deep = b'{"name": ' + b"[" * 32 + b"]" * 32 + b"}"
    assert "nests deeper" in _problem(
        client.post("/api/v1/projects", content=just_too_deep, headers=json_headers), 422)
    assert event_topics(pipeline) == before


def test_a_declared_length_over_the_limit_is_refused_before_the_body(client, prepared,
                                                                     make_account):
    owner = make_account("declarer")
    response = client.post("/api/v1/projects", content=b"{}",
                           headers=owner.headers | {"Content-Length": str(MAX_JSON_BYTES + 1)})
    assert "at most" in _problem(response, 413)


def test_a_huge_streamed_body_is_refused_while_it_streams(prepared, make_account):
    """Reproduction 6: a 200 MiB body was read whole before the 1 MiB check. Streamed with
    no Content-Length, the answer must come while the client is still sending."""
    owner = make_account("streamer")
    before = event_topics(prepared)
    with serving(prepared) as base:
        address = urlsplit(base)
        with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
            sock.sendall(
                b"POST /api/v1/projects HTTP/1.1\r\nHost: studio\r\n"
                b"Authorization: " + owner.headers["Authorization"].encode() + b"\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            sent = _stream_until_answered(sock, _chunks(b'{"name": "' + b"x" * CHUNK))
            answer = _read_head(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"application/problem+json" in answer
    assert sent < STREAMED_BYTES // 4, f"the server let {sent} bytes in before answering"
    assert event_topics(prepared) == before


def _chunks(first: bytes):
    yield first
    while True:
        yield b"x" * CHUNK


def _stream_until_answered(sock: socket.socket, chunks) -> int:
    """Send chunked body frames until the server answers; the bytes sent by then."""
    sent = 0
    sock.setblocking(False)
    pending = b""
    while sent < STREAMED_BYTES:
        readable, writable, _ = select.select([sock], [sock], [], 30)
        if readable:
            break
        if not writable:
            raise AssertionError("the server neither read nor answered for 30 s")
        if not pending:
            data = next(chunks)
            pending = b"%x\r\n" % len(data) + data + b"\r\n"
        try:
            written = sock.send(pending)
        except (BrokenPipeError, ConnectionResetError):
            break
        pending = pending[written:]
        sent += written
    sock.setblocking(True)
    return sent


def _read_head(sock: socket.socket) -> bytes:
    received = b""
    while b"\r\n\r\n" not in received:
        data = sock.recv(65536)
        if not data:
            break
        received += data
    return received


def test_a_generation_name_with_nul_is_refused_before_anything_is_stored(client, prepared,
                                                                         make_account):
    """PostgreSQL's jsonb takes no NUL: such a name, stored in a job's parameters, would fail
    the write (or a read model). Refused as JSON and as a multipart field alike."""
    from tests.integration.test_generation import disc_png

    owner = make_account("namer")
    project = client.post("/api/v1/projects", json={"name": "N"}, headers=owner.headers)
    url = f"/api/v1/projects/{project.json()['id']}"
    before = event_topics(prepared)
    as_json = client.post(f"{url}/generate", headers=owner.headers,
                          json={"asset_id": "anything", "name": "a\x00b"})
    assert "name" in _problem(as_json, 422)
    multipart = client.post(f"{url}/generate-progressive", headers=owner.headers,
                            files={"image": ("disc.png", disc_png(), "image/png")},
                            data={"name": "a\x00b"})
    assert "NUL" in _problem(multipart, 422)
    assert event_topics(prepared) == before
