"""The design assistant against a hostile collaborator, on the real stack: questions that are
not text PostgreSQL can hold, limits counted in characters not bytes, a suggestion applied by
a double click, a stream the client cuts, and a language model that hangs, trickles, answers
garbage or a huge body. Every refusal is a problem answer and stores nothing; a misbehaving
language model costs the asker its timeout at most and the rules' answer is given."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from starlette.testclient import TestClient

from core.events.studio import Studio
from core.scene import document
from core.settings import Settings
from tests.integration.conftest import Account
from tests.integration.helpers import poll
from tests.integration.test_assistant import _ask, _project, _timeline
from tests.integration.test_mesh_operations import open_box_stl, upload

MakeAccount = Callable[..., Account]


def _messages(client: TestClient, project: str, headers: dict[str, str]) -> list[dict]:
    r = client.get(f"/api/v1/projects/{project}/assistant/messages", headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json()["messages"])


def test_questions_are_counted_in_characters_and_refused_when_postgres_cannot_hold_them(
        client: TestClient, pipeline: Settings, make_account: MakeAccount) -> None:
    alice = make_account("alice")
    project = _project(client, alice.headers, "Hostile words")
    url = f"/api/v1/projects/{project}/assistant/messages"
    raw = alice.headers | {"Content-Type": "application/json"}
    for body, status in (
            (b'{"text": "\\ud800 will it print?"}', 422),  # a lone surrogate: no UTF-8 for it
            (b'{"text": "will it print? \\udfff"}', 422),
            (b'{"text": "will it \\u0000 print?"}', 422),
            (b"will it print?", 400), (b"", 400), (b"[]", 400), (b'{"text": null}', 422),
            (b'{"text": ["will it print?"]}', 422),
            (b'{"text": "a", "asset_id": "' + str(uuid.uuid4()).encode() + b'\\u0000"}', 422),
            (b'{"text": ' + b"[" * 5000 + b"]" * 5000 + b"}", 422),
            (b'{"text": "' + b"x" * (2 * 1024 * 1024) + b'"}', 413)):
        r = client.post(url, content=body, headers=raw)
        assert r.status_code == status, (body[:60], r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith("application/problem+json")
    # The limit is 2,000 characters, whatever their bytes (an emoji is 4 bytes in UTF-8).
    r = client.post(url, json={"text": "\U0001F600" * 2001}, headers=alice.headers)
    assert r.status_code == 422, r.text
    assert _messages(client, project, alice.headers) == []
    assert not any("assistant" in line for line in _timeline(client, project, alice.headers))

    # Text PostgreSQL can hold is kept exactly as asked, however it reads.
    for text in ("\U0001F600" * 2000, "x" * 2000, "\u202ewill it print?\u202c",
                 "will\x07 it\x1b[31m print?\x7f", "هل ستُطبع؟ \U0001F9D1\u200d\U0001F4BB"):
        assert _ask(client, project, alice.headers, text)["question"] == text
    assert [m["question"] for m in _messages(client, project, alice.headers)][-1] == \
        "هل ستُطبع؟ \U0001F9D1\u200d\U0001F4BB"


def test_asking_about_what_is_not_this_projects_mesh(client: TestClient, pipeline: Settings,
                                                      make_account: MakeAccount) -> None:
    alice = make_account("alice")
    project = _project(client, alice.headers, "Mine")
    other = _project(client, alice.headers, "Doomed")
    foreign = upload(client, other, alice.headers, open_box_stl())
    mesh = upload(client, project, alice.headers, open_box_stl())
    job = client.post(f"/api/v1/meshes/{mesh['id']}/analysis", json={},
                      headers=alice.headers).json()["job_id"]
    assert client.delete(f"/api/v1/projects/{other}", headers=alice.headers).status_code in (
        200, 202, 204)
    url = f"/api/v1/projects/{project}/assistant/messages"
    for asset_id, status in ((foreign["id"], 404), (job, 404), (project, 404),
                             (mesh["id"].upper(), 200), (mesh["id"].replace("-", ""), 200)):
        r = client.post(url, json={"text": "will it print?", "asset_id": asset_id},
                        headers=alice.headers)
        assert r.status_code == status, (asset_id, r.text)


def _analysed_broken_mesh(client: TestClient, project: str,
                          headers: dict[str, str]) -> tuple[dict, dict]:
    mesh = upload(client, project, headers, open_box_stl())
    r = client.post(f"/api/v1/meshes/{mesh['id']}/analysis?wait=true", json={},
                    headers=headers)
    assert r.status_code == 200 and r.json()["state"] == "succeeded", r.text
    answer = _ask(client, project, headers, "will this print?", mesh["id"])
    return mesh, next(s for s in answer["suggestions"] if s["operation"] == "repair")


def test_a_double_click_on_apply_runs_one_job(client: TestClient, pipeline: Settings,
                                              make_account: MakeAccount) -> None:
    alice, bob = make_account("alice"), make_account("bob")
    project = _project(client, alice.headers, "Double click")
    assert client.post(f"/api/v1/projects/{project}/invite",
                       json={"user": "bob", "role": "editor"},
                       headers=alice.headers).status_code in (200, 201)
    mesh, repair = _analysed_broken_mesh(client, project, alice.headers)
    assert "object_id" not in repair["params"]  # no object showed the mesh when it was asked
    assert pipeline.database_url is not None
    studio = Studio.connect(pipeline.database_url)
    studio.edit_scene(uuid.UUID(project), {"part": {
        "name": "part", "asset": mesh["id"], "blob": mesh["blob_key"]}}, "setup", "test")
    url = f"/api/v1/projects/{project}/assistant/suggestions/{repair['id']}"
    raw = alice.headers | {"Content-Type": "application/json"}
    for body, status in ((b"not json", 400), (b"[]", 400), (b'{"object_id": "nope"}', 404),
                         (b'{"object_id": ""}', 422), (b'{"object_id": 5}', 422),
                         (b'{"object_id": "part", "scale": 9}', 422),
                         (b'{"object_id": "pa\\u0000rt"}', 422),
                         (b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}", 422)):
        r = client.post(f"{url}/apply", content=body, headers=raw)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get(url, headers=alice.headers).json()["state"] == "proposed"
    answers: list[Any] = [None] * 4
    start = threading.Barrier(len(answers))

    def click(i: int) -> None:
        start.wait()
        answers[i] = client.post(f"{url}/apply", json={"object_id": "part"},
                                 headers=alice.headers)

    clicks = [threading.Thread(target=click, args=(i,)) for i in range(len(answers))]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join()
    assert all(r.status_code == 202 for r in answers), [r.text for r in answers]
    assert len({r.json()["job_id"] for r in answers}) == 1  # one job, however many clicks
    applied = [line for line in _timeline(client, project, alice.headers)
               if line.startswith("applied the assistant's suggestion")]
    assert len(applied) == 1, applied

    # Once that job has ended, applying again is a new job, as the contract says.
    first = answers[0].json()["job_id"]
    done = poll(lambda: client.get(url, headers=alice.headers).json(),
                lambda s: s["state"] in ("succeeded", "failed", "cancelled"))
    assert done["state"] == "succeeded" and done["job_id"] == first, done
    shown = document.snapshot(studio.scene(uuid.UUID(project)).state)[document.OBJECTS]
    assert shown["part"]["asset"] == done["mesh_id"]  # the object named on apply shows it
    again = client.post(f"{url}/apply", headers=alice.headers)
    assert again.status_code == 202 and again.json()["job_id"] != first, again.text

    # Roles are read at each request: a removed editor, a demoted one, another project.
    other = _project(client, alice.headers, "Elsewhere")
    r = client.post(f"/api/v1/projects/{other}/assistant/suggestions/{repair['id']}/apply",
                    headers=alice.headers)
    assert r.status_code == 404, r.text
    assert client.patch(f"/api/v1/projects/{project}/collaborators/{bob.user_id}",
                        json={"role": "viewer"}, headers=alice.headers).status_code == 200
    assert client.post(f"{url}/apply", headers=bob.headers).status_code == 403
    assert client.delete(f"/api/v1/projects/{project}/collaborators/{bob.user_id}",
                         headers=alice.headers).status_code in (200, 204)
    assert client.post(f"{url}/apply", headers=bob.headers).status_code == 403
    assert client.get(url, headers=bob.headers).status_code == 403
    r = client.post(f"/api/v1/projects/{project}/assistant/messages", json={"text": "hi"},
                    headers=bob.headers)
    assert r.status_code == 403


def test_a_stream_cut_by_the_client_leaves_the_whole_message_stored_once(
        client: TestClient, pipeline: Settings, make_account: MakeAccount) -> None:
    alice = make_account("alice")
    project = _project(client, alice.headers, "Cut")
    with client.stream("POST", f"/api/v1/projects/{project}/assistant/messages",
                       json={"text": "what can you do?"},
                       headers=alice.headers | {"Accept": "application/x-ndjson"}) as r:
        assert r.status_code == 200
        first = json.loads(next(r.iter_lines()))
        assert first["type"] == "token"
    [stored] = _messages(client, project, alice.headers)
    assert stored["question"] == "what can you do?" and stored["answer"].startswith(
        first["text"])
    # The per-user request rate covers the assistant like any signed-in route.
    r = client.post(f"/api/v1/projects/{project}/assistant/messages",
                    json={"text": "what can you do?"}, headers=alice.headers)
    assert '"requests"' in r.headers.get("RateLimit", ""), dict(r.headers)


@dataclass
class HostileModel:
    """A server speaking the chat-completions protocol badly (a protocol fake, not a model):
    each POST gets the next behaviour of ``plan``; ``sent`` counts the body bytes it wrote."""

    plan: list[str] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)
    url: str = ""
    stop: threading.Event = field(default_factory=threading.Event)


def _reply(content: Any) -> bytes:
    return json.dumps({"choices": [{"index": 0, "message": {"role": "assistant",
                                                             "content": content}}]}).encode()


@pytest.fixture
def hostile() -> Iterator[HostileModel]:
    state = HostileModel()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            behaviour = state.plan.pop(0) if state.plan else "unknown"
            if behaviour == "hang":
                state.stop.wait(30)
                return
            if behaviour.startswith("slow "):  # a valid reply, after 1.2 s
                state.stop.wait(1.2)
                self._send(behaviour, _reply(behaviour.removeprefix("slow ")))
            elif behaviour == "trickle":  # a valid, grounded reply, one byte at a time
                self._send(behaviour, _reply("Add a mesh first."), per_byte_s=0.05)
            elif behaviour == "huge":
                self._send(behaviour, b'{"choices": [{"message": {"content": "'
                           + b"a" * (64 << 20) + b'"}}]}')
            elif behaviour == "nested":
                self._send(behaviour, b"[" * 200_000 + b"]" * 200_000)
            elif behaviour == "garbage":
                self._send(behaviour, b"\xff\xfe not json at all")
            elif behaviour == "nul":
                self._send(behaviour, _reply("Add a mesh\u0000 first."))
            elif behaviour == "surrogate":
                self._send(behaviour,
                           b'{"choices": [{"message": {"content": "Add a mesh \\ud800"}}]}')
            elif behaviour == "invented":
                self._send(behaviour, _reply("Hollow it out and it will score 99."))
            elif behaviour == "not-a-string":
                self._send(behaviour, _reply({"text": "will_it_print"}))
            else:
                self._send(behaviour, _reply(behaviour))

        def _send(self, behaviour: str, data: bytes, per_byte_s: float = 0.0) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            written = 0
            try:
                if per_byte_s:
                    for i in range(len(data)):
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                        written += 1
                        if state.stop.wait(per_byte_s):
                            break
                else:
                    for i in range(0, len(data), 1 << 16):
                        self.wfile.write(data[i:i + (1 << 16)])
                        written += len(data[i:i + (1 << 16)])
            except OSError:
                pass  # the client stopped reading: what was written is what counts
            state.sent[behaviour] = written

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/v1/chat/completions"
    yield state
    state.stop.set()
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_misbehaving_language_model_falls_back_to_the_rules(
        client: TestClient, pipeline: Settings, make_account: MakeAccount,
        hostile: HostileModel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORFEAS_LLM_URL", hostile.url)
    monkeypatch.setenv("ORFEAS_LLM_TIMEOUT_S", "1")
    alice = make_account("alice")
    project = _project(client, alice.headers, "With a bad model")
    question = "could a printer manage my thing"  # the rules do not know it: the model is asked
    for plan in (["hang"], ["will_it_print", "trickle"], ["huge"], ["nested"], ["garbage"],
                 ["not-a-string"], ["will_it_print", "nul"], ["will_it_print", "surrogate"],
                 ["will_it_print", "invented"], ["repair"]):
        hostile.plan[:] = plan
        answer = _ask(client, project, alice.headers, question)
        assert answer["phrased_by"] == "rules", (plan, answer)
        assert "\x00" not in answer["answer"] and "99" not in answer["answer"]
    # The huge body was not read whole: the client stopped once it passed its bound.
    assert hostile.sent["huge"] < 16 << 20, hostile.sent
    # One timeout for the question: two calls each within it but not together are cut.
    monkeypatch.setenv("ORFEAS_LLM_TIMEOUT_S", "2")
    hostile.plan[:] = ["slow will_it_print", "slow Add a mesh first."]
    assert _ask(client, project, alice.headers, question)["phrased_by"] == "rules"
    assert len(_messages(client, project, alice.headers)) == 11
