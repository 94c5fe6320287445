"""Analytics over a chosen period: a user's own figures, any user's for admins, and the
platform's (admins). Every figure comes from the analytics read models, which follow the log
(:mod:`core.projections.analytics_users`, :mod:`core.projections.analytics_platform`)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response

from api.auth import Access, Scope, current_user, guard
from api.jsonbody import Json
from api.openapi import Query, contract
from api.resources import resources
from core.errors import InvalidInput
from core.projections.analytics_queries import Bucket, platform_analytics, user_analytics

DEFAULT_DAYS = 30
MAX_DAYS = 366
MAX_HOURLY_DAYS = 31
BUCKETS = ("hour", "day")
MODELS = ("analytics_users", "analytics_platform")

_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
_SECONDS: dict[str, Any] = {"type": "number", "minimum": 0}
_RATE: dict[str, Any] = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
_DAY: dict[str, Any] = {"type": "string", "format": "date"}
_USES: dict[str, Any] = {"type": "array", "items": {
    "type": "object", "required": ["name", "uses"],
    "properties": {"name": {"type": "string"}, "uses": _COUNT}}}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties}


USER_ANALYTICS = _object({
    "user_id": {"type": "string"}, "username": {"type": "string"}, "from": _DAY, "to": _DAY,
    "projects_created": _COUNT, "generations": _COUNT, "generations_succeeded": _COUNT,
    "generations_failed": _COUNT, "success_rate": _RATE,
    "average_generation_s": {"type": ["number", "null"], "minimum": 0},
    "favourite": _object({"generator": {"type": ["string", "null"]},
                          "face_budget": {"type": ["integer", "null"]},
                          "style": {"type": ["string", "null"]}}),
    "generators": _USES, "face_budgets": _USES, "styles": _USES, "materials": _USES,
    "exports": _COUNT, "exports_by_format": _USES, "shared_projects": _COUNT,
    "active_s": _SECONDS, "sessions": _COUNT, "sign_ins": _COUNT,
    "days": {"type": "array", "items": _object({
        "day": _DAY, "projects_created": _COUNT, "generations": _COUNT,
        "generations_succeeded": _COUNT, "generations_failed": _COUNT, "exports": _COUNT,
        "active_s": _SECONDS, "sign_ins": _COUNT})},
})
_SERIES_COUNTS = ("active_users", "sign_ins", "failed_sign_ins", "projects_created",
                  "generations", "generations_succeeded", "generations_failed", "mesh_jobs",
                  "mesh_jobs_succeeded", "mesh_jobs_failed", "requests", "client_errors",
                  "server_errors", "cache_hits", "single_flight_joins", "exports", "sessions")
PLATFORM_ANALYTICS = _object({
    "from": _DAY, "to": _DAY, "bucket": {"enum": list(BUCKETS)},
    "series": {"type": "array", "items": _object(
        {"start": {"type": "string", "format": "date-time"}, "gpu_s": _SECONDS,
         "active_s": _SECONDS} | {name: _COUNT for name in _SERIES_COUNTS})},
    "active_users": _object({k: _COUNT for k in ("daily", "weekly", "monthly", "period")}),
    "totals": {"type": "object", "required": ["generations", "success_rate", "gpu_s"],
               "additionalProperties": {"type": ["number", "null"]}},
    "response_times": {"type": "array", "items": _object({
        "group": {"type": "string"}, "requests": _COUNT,
        "p50_ms": {"type": ["number", "null"]}, "p95_ms": {"type": ["number", "null"]}})},
    "routes": {"type": "array", "items": _object({
        "route": {"type": "string"}, "group": {"type": "string"}, "requests": _COUNT,
        "client_errors": _COUNT, "server_errors": _COUNT})},
    "gpu": _object({"seconds": _SECONDS, "reports": _COUNT, "by_device": {
        "type": "array", "items": _object({"device": {"type": "string"}, "seconds": _SECONDS,
                                           "reports": _COUNT})}}),
    "top_generators": _USES, "top_materials": _USES, "exports_by_format": _USES,
    "trending_styles": {"type": "array", "items": _object({
        "name": {"type": "string"}, "uses": _COUNT, "previous": _COUNT,
        "change": {"type": "integer"}})},
    "dedup": _object({"requests": _COUNT, "hits": _COUNT, "joins": _COUNT,
                      "hit_rate": {"type": "number"}, "saved_gpu_s": _SECONDS}),
    "tiers": {"type": "array", "items": _object({"tier": {"type": "string"},
                                                 "users": _COUNT})},
})
# Daily buckets only (routes are counted by day): the routes with most errors, per day with one.
PLATFORM_ANALYTICS["properties"]["route_errors"] = {"type": "array", "items": _object({
    "start": {"type": "string", "format": "date-time"}, "route": {"type": "string"},
    "client_errors": _COUNT, "server_errors": _COUNT})}
_PERIOD = (
    Query("from", {"type": "string", "format": "date"},
          f"First UTC day, included (default: {DEFAULT_DAYS - 1} days before `to`)."),
    Query("to", {"type": "string", "format": "date"}, "Last UTC day, included (default: today)."),
)


@contract(query=_PERIOD, response=USER_ANALYTICS)
@guard(Access(Scope.USER))
async def my_analytics(request: Request) -> Response:
    """Your own use of the studio over a period: what you made, generated and downloaded, how
    your generations went, what you chose most, and your time in project rooms."""
    user = current_user(request)
    return await _user(request, user.key, user.username)


@contract(query=_PERIOD, response=USER_ANALYTICS, errors=(404,))
@guard(Access(Scope.ADMIN))
async def user_analytics_of(request: Request) -> Response:
    """A user's figures over a period (as ``GET /me/analytics`` shows them to the user)."""
    user = await resources(request).accounts.find(request.path_params["username"])
    return await _user(request, user.key, user.username)


async def _user(request: Request, user_id: str, username: str) -> Response:
    first, last = period(request, MAX_DAYS)
    res = resources(request)
    await res.read_models.caught_up(names=MODELS)
    async with res.pool.connection() as conn:
        figures = await user_analytics(conn, user_id, first, last)
    return Json({"user_id": user_id, "username": username} | figures)


@contract(query=(*_PERIOD, Query("bucket", {"enum": list(BUCKETS), "default": "day"},
                                 f"The series' step (hour: a period of at most"
                                 f" {MAX_HOURLY_DAYS} days).")),
          response=PLATFORM_ANALYTICS)
@guard(Access(Scope.ADMIN))
async def platform(request: Request) -> Response:
    """The platform over a period: active users, generations and mesh jobs, response times
    and errors by route, GPU use, top generators, trending styles, the dedup cache's savings
    and the users per tier."""
    given = query_value(request, "bucket")
    bucket = "day" if given is None else given
    if bucket not in BUCKETS:
        raise InvalidInput(f"bucket must be one of {', '.join(BUCKETS)}")
    first, last = period(request, MAX_HOURLY_DAYS if bucket == "hour" else MAX_DAYS)
    res = resources(request)
    await res.read_models.caught_up(names=MODELS)
    async with res.pool.connection() as conn:
        figures = await platform_analytics(conn, first, last, cast(Bucket, bucket))
    return Json(figures)


def period(request: Request, max_days: int) -> tuple[date, date]:
    """``from`` and ``to`` as days, checked: dates, in order, at most ``max_days`` long."""
    last = _day(request, "to") or datetime.now(UTC).date()
    first = _day(request, "from") or max(FIRST_DAY, last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise InvalidInput(f"from ({first}) is after to ({last})")
    if (last - first).days + 1 > max_days:
        raise InvalidInput(f"the period is {(last - first).days + 1} days; at most {max_days}")
    return first, last


FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)
"""The days a period may name: the studio's log holds none before, and the ends of the
calendar would overflow the period's arithmetic (the day after, the period before)."""
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def query_value(request: Request, name: str) -> str | None:
    """A query parameter given at most once: a repeated one is refused, not read as its
    last value."""
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise InvalidInput(f"{name} is given {len(values)} times; give it once")
    return values[0] if values else None


def _day(request: Request, name: str) -> date | None:
    raw = query_value(request, name)
    if raw is None:
        return None
    try:
        if not _DATE.fullmatch(raw):  # ISO week and ordinal dates read too, and are not days
            raise ValueError(raw)
        day = date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a date as YYYY-MM-DD, got {raw[:40]!r}") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise InvalidInput(f"{name} must be between {FIRST_DAY} and {LAST_DAY}, got {day}")
    return day
