"""Site administration of the read models: the events they quarantined."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.auth import Access, Scope, guard
from api.jsonbody import Json
from api.resources import resources
from core.errors import InvalidInput
from core.projections.registry import READ_MODEL_NAMES

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@guard(Access(Scope.ADMIN))
async def quarantine(request: Request) -> Response:
    """The events read models skipped because they failed on them, newest first, with the
    error each gave; ``orfeas projections retry`` applies them again after a fix."""
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
