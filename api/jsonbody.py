"""JSON in and out: typed request bodies read within bounds, ids and times written plainly.

A body is refused as soon as it is known to be too large: at once on a ``Content-Length``
over the limit, else while it streams in (a 200 MiB body was once read whole before a 1 MiB
check, +388 MiB of API memory). It is then parsed without NaN or Infinity (Python's parser
accepts them, PostgreSQL's ``jsonb`` does not), without nesting deeper than
:data:`MAX_DEPTH`, and validated against its model before the endpoint sees it.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any, NoReturn, TypeVar
from uuid import UUID

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse

from core.contracts.validation import validated
from core.errors import InvalidInput, MalformedInput, TooLarge

MAX_JSON_BYTES = 1024 * 1024
MAX_DEPTH = 32
"""Deepest nesting of arrays and objects a body may have; the studio's bodies need 3."""

M = TypeVar("M", bound=BaseModel)


def _default(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class Json(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=_default, separators=(",", ":")).encode()


async def parse_body(request: Request, model: type[M]) -> M:
    """The request body as ``model``: 400 if it is not a JSON object, 413 if it is too large,
    422 naming the field if a value is wrong."""
    return validated(model, json_object(await read_limited(request, MAX_JSON_BYTES)))


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, read chunk by chunk and given up on as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise MalformedInput(f"Content-Length {declared[:20]!r} is not a byte count")
        if int(declared) > limit:
            _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            _too_large(limit)
    return bytes(body)


def _too_large(limit: int) -> NoReturn:
    raise TooLarge(f"a JSON body has at most {limit} bytes")


def json_object(raw: bytes) -> dict[str, Any]:
    """Parse strict JSON: an object, finite numbers, bounded nesting."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise InvalidInput(f"the body nests deeper than {MAX_DEPTH} levels") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MalformedInput(f"malformed JSON body: {e}") from None
    if not isinstance(data, dict):
        raise MalformedInput("the body must be a JSON object")
    check_shape(data)
    return data


def check_shape(data: Any) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` and numbers that are not finite: the
    parser turns ``NaN``, ``Infinity`` and ``1e999`` into floats that no ``jsonb`` column
    takes. Iterative, so a deep body costs no recursion."""
    pending: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while pending:
        item, path = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            where = ".".join(path) or "the body"
            raise InvalidInput(f"{where} holds NaN, Infinity or a number past a double's "
                               "range (1e999): JSON has no such number")
        if isinstance(item, dict | list):
            if len(path) >= MAX_DEPTH:
                raise InvalidInput(f"the body nests deeper than {MAX_DEPTH} levels")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            pending.extend((value, (*path, str(key))) for key, value in pairs)
