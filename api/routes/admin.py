"""Site administration of the read models: the events they quarantined."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.auth import Access, Scope, guard
from api.jsonbody import Json
from api.openapi import Query, contract
from api.resources import resources
from core.errors import InvalidInput
from core.projections.registry import READ_MODEL_NAMES

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

_QUARANTINED: dict[str, Any] = {
    "type": "object",
    "required": ["model", "position", "originator_id", "originator_version", "topic", "error",
                 "quarantined_at", "attempts", "last_tried_at"],
    "properties": {
        "model": {"type": "string"}, "position": {"type": "integer"},
        "originator_id": {"type": ["string", "null"], "format": "uuid"},
        "originator_version": {"type": ["integer", "null"]},
        "topic": {"type": "string"}, "error": {"type": "string"},
        "quarantined_at": {"type": "string", "format": "date-time"},
        "attempts": {"type": "integer"},
        "last_tried_at": {"type": "string", "format": "date-time"},
    },
}
QUARANTINE: dict[str, Any] = {
    "type": "object", "required": ["total", "by_model", "events"],
    "properties": {
        "total": {"type": "integer"},
        "by_model": {"type": "object", "additionalProperties": {"type": "integer"}},
        "events": {"type": "array", "items": _QUARANTINED},
    },
}


@contract(query=(
    Query("model", {"type": "string", "enum": list(READ_MODEL_NAMES)},
          "Only this read model's events."),
    Query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                    "default": DEFAULT_LIMIT}, "How many events, newest first."),
), response=QUARANTINE)
@guard(Access(Scope.ADMIN))
async def quarantine(request: Request) -> Response:
    """The events read models quarantined, newest first, with the count per model.

    A read model that fails on a stored event skips it and records it here with the error it
    gave; ``orfeas projections retry`` applies such events again after a fix."""
    model = request.query_params.get("model")
    if model is not None and model not in READ_MODEL_NAMES:
        raise InvalidInput(f"model must be one of {', '.join(READ_MODEL_NAMES)}")
    limit = _limit(request.query_params.get("limit"))
    models = resources(request).read_models
    counts = await models.quarantined_counts()
    events = await models.quarantined(limit, model)
    return Json({"total": sum(counts.values()), "by_model": counts, "events": events})


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer between 1 and {MAX_LIMIT}")
    return int(raw)
