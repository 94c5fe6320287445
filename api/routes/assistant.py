"""The design assistant: ask about a project's meshes and history, apply its suggestions.

A question is checked whole (its text, the mesh it names) before anything is written; the
answer is then composed from the read models (:mod:`core.assistant.compose`), and the question
with its answer is stored as one ``Exchange``, so collaborators read the same conversation and
the history shows it. Applying a suggestion is an ordinary mesh job, through the same code as
``POST /meshes/{id}/{operation}`` (:func:`api.routes.meshes.queue_mesh_job`).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator, Mapping
from http import HTTPStatus
from typing import Annotated, Any
from uuid import UUID, uuid5

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api.auth import Access, Scope, current_user, guard
from api.jsonbody import MAX_JSON_BYTES, Json, json_object, parse_body, read_limited
from api.openapi import Query, contract
from api.resources import Resources, resources
from api.routes.jobs import job_body, wait_for_job
from api.routes.meshes import WAIT, _made_mesh, _wait_seconds, queue_mesh_job
from core.assistant import suggestions
from core.assistant.compose import compose
from core.assistant.intents import MAX_QUESTION_CHARS
from core.assistant.llm import LanguageModel
from core.assistant.reads import AssistantReads, made_mesh
from core.contracts.mesh_params import ObjectId
from core.contracts.validation import NO_NUL, Input, validated
from core.errors import InvalidInput, NotFound
from core.events.assistant import Exchange
from core.events.job_kinds import MESH_ANALYSE
from core.events.roles import Role

NDJSON = "application/x-ndjson"
ASSISTANT_MODEL = "assistant"
LIST_FRESHNESS_S = 1.0  # a list waits this long at most for the messages just answered
MAX_LISTED = 200
_UUID = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
_WORDS = re.compile(r"\S+\s*")


class Question(Input):
    """``POST /projects/{id}/assistant/messages``: a question, and the mesh it is about."""

    text: Annotated[str, Field(max_length=MAX_QUESTION_CHARS, pattern=NO_NUL)] = Field(
        description="The question, 1 to 2000 characters (blank is refused).")
    asset_id: Annotated[str, Field(pattern=_UUID)] | None = Field(
        default=None, description="A mesh of this project; none: the project's newest mesh.")


class ApplyTo(Input):
    """``POST …/assistant/suggestions/{sid}/apply``: optionally, the scene object to show the
    result on (as the mesh routes' ``object_id``); no body or ``{}`` applies it as offered."""

    object_id: ObjectId | None = None


FIGURE: dict[str, Any] = {"type": "object", "required": ["name", "unit", "before", "after"]}
SUGGESTION: dict[str, Any] = {
    "type": "object",
    "required": ["id", "title", "operation", "params", "reason", "expected", "state"],
    "properties": {"id": {"type": "string"}, "title": {"type": "string"},
                   "operation": {"enum": sorted(suggestions.OPERATIONS)},
                   "params": {"type": "object"}, "reason": {"type": "string"},
                   "expected": {"type": "array", "items": FIGURE},
                   "actual": {"type": ["array", "null"], "items": FIGURE},
                   "state": {"type": "string"}, "job_id": {"type": ["string", "null"]},
                   "mesh_id": {"type": ["string", "null"]}},
}
MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["id", "question", "intent", "answer", "facts", "suggestions", "position"],
    "properties": {
        "id": {"type": "string"}, "question": {"type": "string"},
        "intent": {"type": "string"}, "answer": {"type": "string"},
        "facts": {"type": "array", "items": {
            "type": "object", "required": ["name", "value", "unit", "source"]}},
        "suggestions": {"type": "array", "items": SUGGESTION},
        "similar": {"type": "array"}, "position": {"type": "integer"},
        "phrased_by": {"enum": ["rules", "language model"]},
    },
}
MESSAGES: dict[str, Any] = {"type": "object", "required": ["messages", "next_after"],
                            "properties": {"messages": {"type": "array", "items": MESSAGE},
                                           "next_after": {"type": "integer"}}}


def _reads(res: Resources) -> AssistantReads:
    return AssistantReads(res.pool, res.read_models)


@contract(body=Question, response=MESSAGE, media_types=("application/json", NDJSON))
@guard(Access(Scope.PROJECT, Role.VIEWER))
async def ask(request: Request) -> Response:
    """Any member may ask (viewers too: asking changes no design). With ``Accept:
    application/x-ndjson`` the answer's words arrive as ``token`` lines and the stored
    message as the last, ``answer`` line."""
    res = resources(request)
    project_id: UUID = request.state.project_id
    body = await parse_body(request, Question)
    text = body.text.strip()
    if not text:
        raise InvalidInput("text must not be blank")
    asset = await _asked_about(res, project_id, body.asset_id)
    user = current_user(request)
    answer, phrased_by, about = await compose(
        _reads(res), text, project_id, asset, user.key, LanguageModel.from_env(os.environ),
        lambda asset_id: res.read_models.latest_job(MESH_ANALYSE, asset_id))
    about_id = str(about["asset_id"]) if about is not None else None
    exchange = Exchange(project_id=str(project_id), text=text, asset_id=about_id,
                        actor=user.key)
    offered = [s | {"id": str(uuid5(exchange.id, f"suggestion-{i}"))}
               for i, s in enumerate(answer.suggestions)]
    exchange.answer(answer.intent, answer.text, answer.facts, offered, answer.similar,
                    phrased_by)
    position = await asyncio.to_thread(res.studio.record_exchange, exchange)
    message = {
        "id": str(exchange.id), "project_id": str(project_id),
        "asset_id": about_id, "position": position,
        "asked_by": user.key, "asked_by_name": user.username,
        "at": exchange.modified_on.isoformat(), "question": text, "intent": answer.intent,
        "answer": answer.text, "facts": answer.facts,
        "suggestions": [_proposed(s) for s in offered], "similar": answer.similar,
        "phrased_by": phrased_by,
    }
    if NDJSON in request.headers.get("accept", ""):
        return StreamingResponse(_streamed(message), media_type=NDJSON)
    return Json(message)


async def _streamed(message: dict[str, Any]) -> AsyncIterator[bytes]:
    """The answer a few words a line, then the whole message: the panel shows the words as
    they come, the same way it would show a language model's tokens."""
    words = _WORDS.findall(str(message["answer"]))
    for start in range(0, len(words), 4):
        yield _line({"type": "token", "text": "".join(words[start:start + 4])})
        await asyncio.sleep(0)
    yield _line({"type": "answer", "message": message})


def _line(body: Mapping[str, Any]) -> bytes:
    return (json.dumps(body, default=str) + "\n").encode()


async def _asked_about(res: Resources, project_id: UUID,
                       asset_id: str | None) -> dict[str, Any] | None:
    """The mesh the question names, which must be one of this project's."""
    if asset_id is None:
        return None
    asset = await res.read_models.asset(UUID(asset_id))
    if asset is None or asset["project_id"] != project_id:
        raise NotFound(f"mesh {asset_id} not found in project {project_id}")
    if asset["kind"] != "mesh":
        raise InvalidInput(f"asset {asset_id} is an {asset['kind']}, not a mesh")
    return asset


def _proposed(suggestion: Mapping[str, Any]) -> dict[str, Any]:
    return dict(suggestion) | {"state": "proposed", "job_id": None, "mesh_id": None,
                               "actual": None}


@contract(response=MESSAGES, query=(
    Query("after", {"type": "integer", "minimum": 0},
          "Only messages answered after this log position (the last list's next_after)."),
    Query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LISTED},
          "At most this many messages (default and most: 200).")))
@guard(Access(Scope.PROJECT, Role.VIEWER))
async def list_messages(request: Request) -> Response:
    """The project's conversation, oldest first, with each suggestion as it stands now."""
    res = resources(request)
    after = _int_query(request, "after", 0, 0, 2**62)
    limit = _int_query(request, "limit", MAX_LISTED, 1, MAX_LISTED)
    await res.read_models.caught_up(LIST_FRESHNESS_S, names=[ASSISTANT_MODEL])
    reads = _reads(res)
    rows = await reads.messages(request.state.project_id, after, limit)
    offered = await reads.suggestions_of([row["id"] for row in rows])
    analyses = await reads.made_analyses(offered)
    by_message: dict[UUID, list[dict[str, Any]]] = {}
    for row in offered:
        by_message.setdefault(row["message_id"], []).append(_suggestion_body(row, analyses))
    messages = [_message_body(row, by_message.get(row["id"], [])) for row in rows]
    return Json({"messages": messages,
                 "next_after": rows[-1]["position"] if rows else after})


def _int_query(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise InvalidInput(f"{name} must lie in [{low}, {high}]")
    return value


def _message_body(row: Mapping[str, Any], offered: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": str(row["id"]), "project_id": str(row["project_id"]),
        "asset_id": str(row["asset_id"]) if row["asset_id"] else None,
        "position": row["position"], "asked_by": row["asked_by"],
        "asked_by_name": row["asked_by_name"], "at": row["at"], "question": row["question"],
        "intent": row["intent"], "answer": row["answer"], "facts": row["facts"],
        "suggestions": offered, "similar": row["similar"], "phrased_by": row["phrased_by"],
    }


def _suggestion_body(row: Mapping[str, Any],
                     analyses: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A suggestion as it stands: proposed, or its latest job's state, and once the job's
    new mesh is analysed, the real figures beside the expected ones."""
    body = dict(row["body"])
    made = made_mesh(row)
    state = "proposed" if row["job_id"] is None else str(row["job_state"] or "requested")
    actual = suggestions.actual(body, analyses[made]) if made is not None and made in analyses \
        else None
    return body | {"id": str(row["id"]), "message_id": str(row["message_id"]),
                   "asset_id": str(row["asset_id"]) if row["asset_id"] else None,
                   "state": state, "job_id": str(row["job_id"]) if row["job_id"] else None,
                   "mesh_id": made, "actual": actual}


@contract(response=SUGGESTION)
@guard(Access(Scope.PROJECT, Role.VIEWER))
async def get_suggestion(request: Request) -> Response:
    reads = _reads(resources(request))
    row = await _suggestion_row(request, reads)
    return Json(_suggestion_body(row, await reads.made_analyses([row])))


async def _suggestion_row(request: Request, reads: AssistantReads) -> dict[str, Any]:
    """The suggestion's row; one just answered may not be projected yet, so a miss waits
    (briefly, only while the read model is behind) and looks again."""
    sid = request.path_params["suggestion_id"]
    project_id = request.state.project_id
    row = await reads.suggestion(project_id, sid) if re.fullmatch(_UUID, sid) else None
    if row is None and re.fullmatch(_UUID, sid):
        await resources(request).read_models.caught_up(names=[ASSISTANT_MODEL])
        row = await reads.suggestion(project_id, sid)
    if row is None:
        raise NotFound(f"suggestion {sid} not found in project {request.state.project_id}")
    return row


@contract(body=ApplyTo, body_optional=True, query=WAIT, status=202,
          response={"type": "object", "required": ["job_id", "state"]},
          answers={200: {"type": "object", "required": ["job_id", "state"]}})
@guard(Access(Scope.PROJECT, Role.EDITOR))
async def apply_suggestion(request: Request) -> Response:
    """Run a suggestion as the mesh job it names, exactly as the mesh routes run one (same
    checks, limits, quotas; undoable with ``POST /jobs/{id}/undo``); the job and the record
    that the suggestion was applied are written in one transaction."""
    res = resources(request)
    raw = await read_limited(request, MAX_JSON_BYTES)
    to = validated(ApplyTo, json_object(raw)) if raw.strip() else ApplyTo()
    row = await _suggestion_row(request, _reads(res))
    body = row["body"]
    asset = await res.read_models.asset(row["asset_id"]) if row["asset_id"] else None
    if asset is None or asset["project_id"] != request.state.project_id:
        raise NotFound(f"the mesh suggestion {row['id']} is about no longer exists")
    operation = str(body.get("operation"))
    if operation not in suggestions.OPERATIONS:
        raise InvalidInput(f"suggestion {row['id']} names no operation the studio runs")

    joined = await asyncio.to_thread(res.studio.running_application, row["message_id"],
                                     str(row["id"]))
    if joined is not None:
        return await _joined(request, res, joined, str(row["id"]))

    def record(project_id: UUID, kind: str, inputs: dict[str, Any], params: dict[str, Any],
               actor: str) -> UUID:
        return res.studio.request_suggested_job(row["message_id"], str(row["id"]), kind,
                                                inputs, params, actor)

    params = dict(body.get("params") or {})
    if to.object_id is not None:  # checked by the operation's own parameters, as on its route
        params["object_id"] = to.object_id
    response = await queue_mesh_job(request, asset, suggestions.kind_of(operation), params,
                                    record)
    response.headers["X-Suggestion-Id"] = str(row["id"])
    return response


async def _joined(request: Request, res: Resources, job_id: UUID,
                  suggestion_id: str) -> Response:
    """The answer applying gives, for the job still running from an earlier click: nothing is
    recorded and no quota spent, since no new job runs."""
    wait_s = _wait_seconds(request)
    headers = {"Location": f"/api/v1/jobs/{job_id}", "X-Suggestion-Id": suggestion_id}
    if wait_s is None:
        return Json({"job_id": job_id, "state": "requested", "job_url": f"/api/v1/jobs/{job_id}",
                     "events_url": f"/api/v1/jobs/{job_id}/events"},
                    status_code=HTTPStatus.ACCEPTED, headers=headers)
    job = await wait_for_job(res, job_id, wait_s)
    finished = job["state"] in ("succeeded", "failed", "cancelled")
    return Json(job_body(job) | {"job_id": job_id, "mesh_id": _made_mesh(job)},
                status_code=HTTPStatus.OK if finished else HTTPStatus.ACCEPTED,
                headers=headers)

