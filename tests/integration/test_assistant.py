"""The design assistant over HTTP on real PostgreSQL, NATS and S3 with the mesh worker running:
grounded answers, a suggestion applied as a normal job with its real effect beside the
prediction, the conversation shared with collaborators and in the history, similar designs
among what the asker may see, and bad input refused with nothing stored."""

from __future__ import annotations

import json
import uuid

import pytest
import trimesh
from starlette.testclient import TestClient

from core.events.studio import Studio
from core.scene import document, origins
from core.settings import Settings
from tests.integration.helpers import poll
from tests.integration.test_mesh_operations import open_box_stl, upload
from tests.unit.test_assistant_llm import ProtocolFake, _completion, fake  # noqa: F401


def _project(client: TestClient, headers: dict[str, str], name: str) -> str:
    r = client.post("/api/v1/projects", json={"name": name}, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _ask(client: TestClient, project: str, headers: dict[str, str], text: str,
         asset_id: str | None = None) -> dict:
    r = client.post(f"/api/v1/projects/{project}/assistant/messages",
                    json={"text": text, "asset_id": asset_id}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _analysed(client: TestClient, asset_id: str, headers: dict[str, str]) -> None:
    r = client.post(f"/api/v1/meshes/{asset_id}/analysis?wait=true", json={}, headers=headers)
    assert r.status_code == 200 and r.json()["state"] == "succeeded", r.text


def _stl(mesh: trimesh.Trimesh) -> bytes:
    data = mesh.export(file_type="stl")
    assert isinstance(data, bytes)
    return data


def _timeline(client: TestClient, project: str, headers: dict[str, str]) -> list[str]:
    r = client.get(f"/api/v1/projects/{project}/timeline", headers=headers)
    assert r.status_code == 200, r.text
    return [line["summary"] for line in r.json()["events"]]


def test_will_it_print_then_repair_shows_the_real_effect(client: TestClient,
                                                         pipeline: Settings, make_account):
    alice, bob = make_account("alice"), make_account("bob")
    project = _project(client, alice.headers, "Broken part")
    assert client.post(f"/api/v1/projects/{project}/invite",
                       json={"user": "bob", "role": "viewer"},
                       headers=alice.headers).status_code in (200, 201)
    broken = upload(client, project, alice.headers, open_box_stl())
    assert pipeline.database_url is not None
    studio = Studio.connect(pipeline.database_url)
    studio.edit_scene(uuid.UUID(project), {"part": {
        "name": "part", "asset": broken["id"], "blob": broken["blob_key"]}}, "setup", "test")

    # Naming no mesh asks about the project's newest; its suggestions act on that mesh.
    first = _ask(client, project, alice.headers, "Will this print?")
    assert first["intent"] == "will_it_print" and first["asset_id"] == broken["id"]
    assert [s["operation"] for s in first["suggestions"]] == ["analysis"]
    r = client.post(f"/api/v1/projects/{project}/assistant/suggestions/"
                    f"{first['suggestions'][0]['id']}/apply?wait=true", headers=alice.headers)
    assert r.status_code == 200 and r.json()["state"] == "succeeded", r.text

    answer = _ask(client, project, alice.headers, "will this print?", broken["id"])
    facts = {f["name"]: f for f in answer["facts"]}
    assert facts["watertight"]["value"] is False and facts["watertight"]["source"] == "analysis"
    score = facts["printability score"]["value"]
    assert score < 80 and f"{score:g}/100" in answer["answer"]
    repair = next(s for s in answer["suggestions"] if s["operation"] == "repair")
    assert repair["params"]["object_id"] == "part"  # the object showing the mesh follows
    expected = {c["name"]: c for c in repair["expected"]}["printability score"]
    assert expected["before"] == score and expected["after"] > score
    assert repair["state"] == "proposed" and repair["actual"] is None

    # A viewer reads the conversation but may not apply; the refusal records nothing.
    url = f"/api/v1/projects/{project}/assistant/suggestions/{repair['id']}"
    assert client.post(f"{url}/apply", headers=bob.headers).status_code == 403
    assert client.get(url, headers=bob.headers).json()["state"] == "proposed"
    seen = client.get(f"/api/v1/projects/{project}/assistant/messages", headers=bob.headers)
    assert seen.status_code == 200
    assert [m["question"] for m in seen.json()["messages"]] == ["Will this print?",
                                                                 "will this print?"]
    assert seen.json()["messages"][1]["asked_by_name"] == "alice"
    assert seen.json()["messages"][0]["asset_id"] == broken["id"]

    r = client.post(f"{url}/apply?wait=true", headers=alice.headers)
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["state"] == "succeeded" and job["kind"] == "mesh.repair" and job["mesh_id"]
    done = poll(lambda: client.get(url, headers=bob.headers).json(),
                lambda s: s["actual"] is not None)
    assert done["state"] == "succeeded" and done["job_id"] == job["job_id"]
    assert done["mesh_id"] == job["mesh_id"]
    actual = {c["name"]: c for c in done["actual"]}["printability score"]
    assert actual["before"] == score and actual["after"] > score  # the repair helped

    lines = _timeline(client, project, bob.headers)
    assert "asked the assistant: “will this print?”" in lines
    assert any(line.startswith("the assistant answered (will it print):") for line in lines)
    assert f"applied the assistant's suggestion “{repair['title']}”" in lines
    shown = studio.scene(uuid.UUID(project))
    assert document.snapshot(shown.state)[document.OBJECTS]["part"]["asset"] == job["mesh_id"]
    # Undoable like any mesh job: the object shows the broken mesh again.
    assert client.post(f"/api/v1/jobs/{job['job_id']}/undo",
                       headers=alice.headers).status_code == 200
    shown = studio.scene(uuid.UUID(project))
    assert document.snapshot(shown.state)[document.OBJECTS]["part"]["asset"] == broken["id"]


def test_streamed_answer_ends_with_the_stored_message(client: TestClient, pipeline: Settings,
                                                      make_account):
    alice = make_account("alice")
    project = _project(client, alice.headers, "Stream")
    with client.stream("POST", f"/api/v1/projects/{project}/assistant/messages",
                       json={"text": "what can you do?"},
                       headers=alice.headers | {"Accept": "application/x-ndjson"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in r.iter_lines() if line]
    tokens = [line["text"] for line in lines if line["type"] == "token"]
    assert len(tokens) > 1 and lines[-1]["type"] == "answer"
    message = lines[-1]["message"]
    assert message["intent"] == "unknown" and "".join(tokens) == message["answer"]
    assert "will this print?" in message["answer"]  # the honest list of what it answers
    listed = client.get(f"/api/v1/projects/{project}/assistant/messages",
                        headers=alice.headers).json()["messages"]
    assert [m["id"] for m in listed] == [message["id"]]
    # The question reads in the history as asked, whatever words it holds.
    _ask(client, project, alice.headers, "is {label} or {kind} a thing?")
    assert "asked the assistant: “is {label} or {kind} a thing?”" in _timeline(
        client, project, alice.headers)


def test_bad_questions_are_refused_and_store_nothing(client: TestClient, pipeline: Settings,
                                                     make_account):
    alice, mallory = make_account("alice"), make_account("mallory")
    project = _project(client, alice.headers, "Mine")
    other = _project(client, alice.headers, "Other")
    foreign = upload(client, other, alice.headers, open_box_stl())
    url = f"/api/v1/projects/{project}/assistant/messages"
    for body, status in (({"text": ""}, 422), ({"text": "   \n"}, 422),
                         ({"text": "x" * 2001}, 422), ({"text": 5}, 422), ({}, 422),
                         ({"text": "hi", "extra": 1}, 422),
                         ({"text": "will it print?", "asset_id": "not-an-id"}, 422),
                         ({"text": "will it print?", "asset_id": foreign["id"]}, 404),
                         ({"text": "will it print?", "asset_id": str(uuid.uuid4())}, 404)):
        r = client.post(url, json=body, headers=alice.headers)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    assert client.post(url, json={"text": "hi"}, headers=mallory.headers).status_code == 403
    assert client.get(url, headers=mallory.headers).status_code == 403
    for sid in (str(uuid.uuid4()), "nope"):
        r = client.post(f"/api/v1/projects/{project}/assistant/suggestions/{sid}/apply",
                        headers=alice.headers)
        assert r.status_code == 404, r.text
    assert client.get(url, headers=alice.headers).json()["messages"] == []
    assert not any("assistant" in line for line in _timeline(client, project, alice.headers))
    # A suggestion of one project is not found through another.
    asked = _ask(client, other, alice.headers, "will it print?", foreign["id"])
    sid = asked["suggestions"][0]["id"]
    r = client.get(f"/api/v1/projects/{project}/assistant/suggestions/{sid}",
                   headers=alice.headers)
    assert r.status_code == 404


def test_similar_designs_never_show_other_users_private_projects(
        client: TestClient, pipeline: Settings, make_account):
    alice, carol = make_account("alice"), make_account("carol")
    mine = _project(client, alice.headers, "Alice's")
    also_mine = _project(client, alice.headers, "Alice's other")
    carols = _project(client, carol.headers, "Carol's private")
    sphere = upload(client, mine, alice.headers,
                    _stl(trimesh.creation.icosphere(subdivisions=2, radius=10.0)), "ball.stl")
    near = upload(client, also_mine, alice.headers,
                  _stl(trimesh.creation.icosphere(subdivisions=2, radius=12.0)), "orb.stl")
    far = upload(client, also_mine, alice.headers,
                 _stl(trimesh.creation.box(extents=(60.0, 4.0, 4.0))), "rod.stl")
    twin = upload(client, carols, carol.headers,
                  _stl(trimesh.creation.icosphere(subdivisions=2, radius=10.0)), "twin.stl")
    for asset, owner in ((sphere, alice), (near, alice), (far, alice), (twin, carol)):
        _analysed(client, asset["id"], owner.headers)

    answer = _ask(client, mine, alice.headers, "show me similar designs", sphere["id"])
    assert answer["intent"] == "similar_designs"
    assert [n["filename"] for n in answer["similar"]] == ["orb.stl", "rod.stl"]
    assert answer["similar"][0]["project_name"] == "Alice's other"
    assert answer["similar"][0]["thumbnail_url"] == f"/api/v1/meshes/{near['id']}/thumbnail"
    assert "twin" not in json.dumps(answer)  # carol's identical sphere stays private
    carol_sees = _ask(client, carols, carol.headers, "similar designs?", twin["id"])
    assert carol_sees["similar"] == []

    # Trends come from the platform analytics (names and counts only).
    r = client.post(f"/api/v1/meshes/{far['id']}/style", json={"style": "low_poly"},
                    headers=alice.headers)
    assert r.status_code == 202, r.text
    trends = poll(lambda: _ask(client, mine, alice.headers, "what are the trends?"),
                  lambda a: a["facts"])  # once the analytics read model has the job
    assert trends["intent"] == "trends" and "styles: low_poly (1)" in trends["answer"]
    assert {"name": "style: low_poly", "value": 1, "unit": "uses",
            "source": "analytics"} in trends["facts"]


def test_history_questions_name_versions_and_people(client: TestClient, pipeline: Settings,
                                                    make_account):
    alice, bob = make_account("alice"), make_account("bob")
    project = _project(client, alice.headers, "History")
    assert client.post(f"/api/v1/projects/{project}/invite",
                       json={"user": "bob", "role": "editor"},
                       headers=alice.headers).status_code in (200, 201)
    assert client.post(f"/api/v1/projects/{project}/versions", json={"message": "first"},
                       headers=alice.headers).status_code == 201
    assert pipeline.database_url is not None
    studio = Studio.connect(pipeline.database_url)
    studio.edit_scene(uuid.UUID(project), {"pot": {"name": "Teapot"}}, bob.user_id,
                      origins.SOCKET)
    who = poll(lambda: _ask(client, project, alice.headers, "who changed “Teapot”?"),
               lambda a: a["facts"])
    assert who["intent"] == "who_changed" and "bob" in who["answer"]
    assert who["facts"][0] == {"name": "Teapot changed by", "value": "bob", "unit": None,
                               "source": "history"}
    since = _ask(client, project, alice.headers, "what changed since version “first”?")
    assert since["intent"] == "changes_since" and "bob: added Teapot" in since["answer"]
    missing = _ask(client, project, alice.headers, "what changed since “nothing such”?")
    assert "No version is named like “nothing such”" in missing["answer"]


def test_a_configured_language_model_picks_the_intent_and_phrases_only_what_is_grounded(
        client: TestClient, pipeline: Settings, make_account, fake: ProtocolFake,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch):
    """Against the protocol fake of ``tests/unit/test_assistant_llm.py`` (not a model)."""
    monkeypatch.setenv("ORFEAS_LLM_URL", fake.url)
    alice = make_account("alice")
    project = _project(client, alice.headers, "With a model")
    fake.replies += [(200, _completion("will_it_print"), 0.0),
                     (200, _completion("Nothing to look at yet: add a mesh first."), 0.0)]
    answer = _ask(client, project, alice.headers, "could a printer manage my thing")
    assert answer["intent"] == "will_it_print" and answer["phrased_by"] == "language model"
    assert answer["answer"] == "Nothing to look at yet: add a mesh first."
    fake.replies += [(200, _completion("will_it_print"), 0.0),
                     (200, _completion("It scores 97, print it."), 0.0)]  # an invented figure
    refused = _ask(client, project, alice.headers, "could a printer manage my thing")
    assert refused["phrased_by"] == "rules" and "97" not in refused["answer"]
    stored = client.get(f"/api/v1/projects/{project}/assistant/messages",
                        headers=alice.headers).json()["messages"]
    assert [m["phrased_by"] for m in stored] == ["language model", "rules"]
