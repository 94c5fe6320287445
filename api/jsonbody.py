"""JSON in and out: parse request bodies strictly, serialise ids and times plainly."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse

from core.errors import InvalidInput, MalformedInput

MAX_JSON_BYTES = 1024 * 1024


def _default(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class Json(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=_default, separators=(",", ":")).encode()


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 problem naming what is wrong."""
    body = await request.body()
    if len(body) > MAX_JSON_BYTES:
        raise MalformedInput(f"JSON body larger than {MAX_JSON_BYTES} bytes")
    try:
        data = json.loads(body) if body else None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MalformedInput(f"malformed JSON body: {e}") from None
    if not isinstance(data, dict):
        raise MalformedInput("the body must be a JSON object")
    return data


def field(data: dict[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidInput(f"field {name!r} is required")
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidInput(f"field {name!r} must be {kind.__name__}")
    return value
