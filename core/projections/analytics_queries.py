"""Reads of the analytics read models: a user's figures over a period, the platform's, and
the recent trends the design assistant suggests from.

Each answer is a handful of index range scans over rows already summed per day or hour
(:mod:`core.projections.analytics_users`, :mod:`core.projections.analytics_platform`),
so its cost follows the period's length, not the log's.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from psycopg import AsyncConnection, Connection

from core.events.activity import LATENCY_BOUNDS_MS, histogram_percentile
from core.limits import Tier
from core.projections.analytics_platform import HOURS, route_group
from core.projections.analytics_users import CHOICE_KINDS, COUNTS

Bucket = Literal["hour", "day"]
TOP = 10
TOP_ROUTES = 50
DAY_COUNTERS = tuple(c for c in COUNTS.columns if c not in ("generation_ms", "sessions"))


async def user_analytics(conn: AsyncConnection[Any], user_id: str, first: date,
                         last: date) -> dict[str, Any]:
    """A user's figures over the days ``first`` to ``last`` (UTC, both included)."""
    columns = ", ".join(COUNTS.columns)
    period = (user_id, first, last)
    days, choices, shares = await _together(conn, [
        (f"SELECT day, {columns} FROM rm_au_counts WHERE user_id = %s"
         " AND day BETWEEN %s AND %s ORDER BY day", period),
        ("SELECT kind, value, sum(uses) FROM rm_au_choices WHERE user_id = %s"
         " AND day BETWEEN %s AND %s GROUP BY kind, value", period),
        ("SELECT count(DISTINCT project_id) FROM rm_au_shares WHERE user_id = %s"
         " AND day BETWEEN %s AND %s", period)])
    shared = shares[0] if shares else None
    totals = {c: 0 for c in COUNTS.columns}
    for row in days:
        for column, value in zip(COUNTS.columns, row[1:], strict=True):
            totals[column] += int(value)
    ranked = _ranked(choices)
    succeeded, failed = totals["generations_succeeded"], totals["generations_failed"]
    budget = ranked["face_budget"][0]["name"] if ranked["face_budget"] else None
    return {
        "from": first.isoformat(), "to": last.isoformat(),
        "projects_created": totals["projects_created"],
        "generations": totals["generations"],
        "generations_succeeded": succeeded, "generations_failed": failed,
        "success_rate": _rate(succeeded, succeeded + failed),
        "average_generation_s": (round(totals["generation_ms"] / succeeded / 1000, 3)
                                 if succeeded else None),
        "favourite": {
            "generator": ranked["generator"][0]["name"] if ranked["generator"] else None,
            "face_budget": int(budget) if budget is not None and budget.isdigit() else None,
            "style": ranked["style"][0]["name"] if ranked["style"] else None},
        "generators": ranked["generator"], "face_budgets": ranked["face_budget"],
        "styles": ranked["style"], "materials": ranked["material"],
        "exports": totals["exports"], "exports_by_format": ranked["export_format"],
        "shared_projects": int(shared[0]) if shared else 0,
        "active_s": round(totals["active_ms"] / 1000, 3), "sessions": totals["sessions"],
        "sign_ins": totals["sign_ins"],
        "days": [_day(row) for row in days],
    }


def _day(row: tuple[Any, ...]) -> dict[str, Any]:
    values = dict(zip(COUNTS.columns, row[1:], strict=True))
    out: dict[str, Any] = {"day": row[0].isoformat()}
    for column in DAY_COUNTERS:
        if column == "active_ms":
            out["active_s"] = round(values[column] / 1000, 3)
        else:
            out[column] = int(values[column])
    return out


def _ranked(rows: list[tuple[Any, ...]]) -> dict[str, list[dict[str, Any]]]:
    """Choices per kind, most used first (ties by name), at most :data:`TOP` each."""
    kinds: dict[str, list[dict[str, Any]]] = {kind: [] for kind in CHOICE_KINDS}
    for kind, value, uses in rows:
        kinds.setdefault(kind, []).append({"name": value, "uses": int(uses)})
    return {kind: sorted(items, key=lambda i: (-i["uses"], i["name"]))[:TOP]
            for kind, items in kinds.items()}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# -- the platform ----------------------------------------------------------------------------


async def platform_analytics(conn: AsyncConnection[Any], first: date, last: date,
                             bucket: Bucket) -> dict[str, Any]:
    """The platform's figures over the days ``first`` to ``last``, its series per ``bucket``."""
    start, end = _midnight(first), _midnight(last + timedelta(days=1))
    params = {"bucket": bucket, "start": start, "end": end, "first": first, "last": last,
              "hours": 1 if bucket == "hour" else 24}  # hours, not days: exact in any zone
    # The series is built as JSON by the server: every bucket (the empty ones too: a
    # chart's x axis is time) in one pass, where making 744 hourly points in Python cost
    # more than every query of the answer together.
    params["before"] = first - (last - first) - timedelta(days=1)
    series_rows, sums, keyed_rows, active, accounts, route_days = await _together(conn, [
        (SERIES_SQL, params), (SUMS_SQL, params), (KEYED_SQL, params),
        (ACTIVE_USERS_SQL, params),
        ("SELECT to_regclass('accounts_users') IS NOT NULL"
         " AND to_regclass('rm_user_tiers') IS NOT NULL", None),
        (ROUTE_ERRORS_SQL, params)])
    series = series_rows[0][0] if series_rows else []
    values = [int(v) for v in sums[0]] if sums else [0] * (len(HOURS.columns) + 1)
    totals = dict(zip(HOURS.columns, values, strict=False))
    saved_ms = values[-1]
    keyed: dict[str, dict[str, int]] = defaultdict(dict)
    for metric, key, n in keyed_rows:
        keyed[metric][key] = int(n)
    daily, weekly, monthly, period = (int(v) for v in active[0]) if active else (0, 0, 0, 0)
    hits, joins = totals["cache_hits"], totals["single_flight_joins"]
    generations = totals["generations"]
    succeeded, failed = totals["generations_succeeded"], totals["generations_failed"]
    summary: dict[str, Any] = {}
    for column in HOURS.columns:
        if column not in ("active_ms", "sessions", "cache_hits", "single_flight_joins"):
            summary.update(_figure(column, totals[column]))
    summary["success_rate"] = _rate(succeeded, succeeded + failed)
    return {
        "from": first.isoformat(), "to": last.isoformat(), "bucket": bucket,
        "series": series,
        "active_users": {"daily": daily, "weekly": weekly, "monthly": monthly,
                         "period": period},
        "totals": summary,
        "response_times": _response_times(keyed),
        "routes": _routes(keyed),
        **({"route_errors": _route_errors(route_days)} if bucket == "day" else {}),
        "gpu": _gpu(keyed, totals["gpu_ms"]),
        "top_generators": _top(keyed.get("generator", {})),
        "trending_styles": _trending(keyed.get("style", {}), keyed.get("style_before", {})),
        "top_materials": _top(keyed.get("material", {})),
        "exports_by_format": _top(keyed.get("export_format", {})),
        "dedup": {"requests": generations, "hits": hits, "joins": joins,
                  "hit_rate": _rate(hits + joins, generations) or 0.0,
                  "saved_gpu_s": round(saved_ms / 1000, 3)},
        "tiers": await _tiers(conn) if accounts and accounts[0][0] else _tier_counts([]),
    }


def _name(column: str) -> str:
    """A counter's name in the answer: milliseconds are given as seconds."""
    return column[:-3] + "_s" if column.endswith("_ms") else column


def _figure(column: str, n: int) -> dict[str, Any]:
    """A counter as the answer names it: milliseconds as seconds."""
    if column.endswith("_ms"):
        return {_name(column): round(n / 1000, 3)}
    return {column: n}


def _point(column: str) -> str:
    """A counter of a bucket as JSON fields of :data:`SERIES_SQL` (milliseconds as seconds)."""
    if column.endswith("_ms"):
        return f"'{_name(column)}', round(coalesce(h.{column}, 0) / 1000.0, 3)"
    return f"'{column}', coalesce(h.{column}, 0)"


SERIES_SQL = (
    "SELECT coalesce(json_agg(json_build_object("
    " 'start', to_char(s.start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"'),"
    " 'active_users', CASE WHEN %(bucket)s = 'day' THEN coalesce(d.active_users, 0)"
    " ELSE coalesce(h.active_users, 0) END, "
    + ", ".join(_point(c) for c in HOURS.columns) +
    ") ORDER BY s.start), '[]'::json)"
    " FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz"
    " - make_interval(hours => %(hours)s), make_interval(hours => %(hours)s)) AS s(start)"
    " LEFT JOIN (SELECT date_trunc(%(bucket)s, hour, 'UTC') AS start, "
    + ", ".join(f"sum({c}) AS {c}" for c in (*HOURS.columns, "active_users")) +
    " FROM rm_ap_hours WHERE hour >= %(start)s AND hour < %(end)s GROUP BY 1) AS h"
    " USING (start)"
    " LEFT JOIN rm_ap_days d ON d.day = (s.start AT TIME ZONE 'UTC')::date"
    " AND d.day BETWEEN %(first)s AND %(last)s")


# Errors per day of the routes with most errors over the period (only days with an error).
# Routes are counted by day (``rm_ap_keys``), so these come with daily buckets only: spread
# over hourly ones they would pile a day's errors on its midnight.
ROUTE_ERRORS_SQL = (
    "WITH e AS (SELECT day, key, sum(n) FILTER (WHERE metric = 'route_client_errors') AS c,"
    " sum(n) FILTER (WHERE metric = 'route_server_errors') AS s FROM rm_ap_keys"
    " WHERE metric IN ('route_client_errors', 'route_server_errors')"
    " AND day BETWEEN %(first)s AND %(last)s GROUP BY day, key),"
    " top AS (SELECT key FROM e GROUP BY key ORDER BY sum(coalesce(c, 0) + coalesce(s, 0)) DESC,"
    f" key LIMIT {TOP})"
    " SELECT day, key, coalesce(c, 0), coalesce(s, 0) FROM e JOIN top USING (key)"
    " WHERE coalesce(c, 0) + coalesce(s, 0) > 0 ORDER BY day, key")


def _route_errors(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [{"start": _midnight(day).isoformat(), "route": route,
             "client_errors": int(client), "server_errors": int(server)}
            for day, route, client, server in rows]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


# The per-day counters by key summed over the period; the styles of the period just before
# too (``style_before``), for the trend.
KEYED_SQL = (
    "SELECT CASE WHEN day < %(first)s THEN 'style_before' ELSE metric END, key, sum(n)"
    " FROM rm_ap_keys WHERE (day BETWEEN %(first)s AND %(last)s)"
    " OR (metric = 'style' AND day BETWEEN %(before)s AND %(first)s - 1)"
    " GROUP BY 1, 2")


def _top(counts: dict[str, int], limit: int = TOP) -> list[dict[str, Any]]:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [{"name": name, "uses": uses} for name, uses in ranked]


def _trending(now: dict[str, int], before: dict[str, int]) -> list[dict[str, Any]]:
    names = set(now) | set(before)
    ranked = sorted(names, key=lambda n: (before.get(n, 0) - now.get(n, 0), -now.get(n, 0), n))
    return [{"name": n, "uses": now.get(n, 0), "previous": before.get(n, 0),
             "change": now.get(n, 0) - before.get(n, 0)} for n in ranked[:TOP]]


def _response_times(keyed: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    histograms: dict[str, list[int]] = {}
    for key, n in keyed.get("latency", {}).items():
        group, _, index = key.rpartition("|")
        if not index.isdigit() or int(index) > len(LATENCY_BOUNDS_MS):
            continue
        histograms.setdefault(group, [0] * (len(LATENCY_BOUNDS_MS) + 1))[int(index)] += n
    answer = [{"group": group, "requests": sum(h), "p50_ms": histogram_percentile(h, 50),
               "p95_ms": histogram_percentile(h, 95)} for group, h in histograms.items()]
    return sorted(answer, key=lambda g: (-g["requests"], g["group"]))


def _routes(keyed: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    requests = keyed.get("route_requests", {})
    client, server = keyed.get("route_client_errors", {}), keyed.get("route_server_errors", {})
    ranked = sorted(requests.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_ROUTES]
    return [{"route": route, "group": route_group(route), "requests": n,
             "client_errors": client.get(route, 0), "server_errors": server.get(route, 0)}
            for route, n in ranked]


def _gpu(keyed: dict[str, dict[str, int]], gpu_ms: int) -> dict[str, Any]:
    milliseconds, reports = keyed.get("gpu_ms_by_device", {}), keyed.get(
        "gpu_reports_by_device", {})
    devices = sorted(milliseconds, key=lambda d: (-milliseconds[d], d))
    return {"seconds": round(gpu_ms / 1000, 3), "reports": sum(reports.values()),
            "by_device": [{"device": d, "seconds": round(milliseconds[d] / 1000, 3),
                           "reports": reports.get(d, 0)} for d in devices]}


# Each user once (their latest day, and whether any day is in the period): one hash aggregate,
# where four DISTINCT counts sorted the rows four times.
ACTIVE_USERS_SQL = (
    "SELECT count(*) FILTER (WHERE latest = %(last)s),"
    " count(*) FILTER (WHERE latest > %(last)s - 7),"
    " count(*) FILTER (WHERE latest > %(last)s - 30), count(*) FILTER (WHERE in_period)"
    " FROM (SELECT user_id, max(day) AS latest, bool_or(day >= %(first)s) AS in_period"
    "  FROM rm_ap_active_days WHERE day >= least(%(first)s, %(last)s - 29)"
    "  AND day <= %(last)s GROUP BY user_id) AS u")
SUMS_SQL = (
    f"SELECT {', '.join(f'coalesce(sum({c}), 0)' for c in HOURS.columns)},"
    " coalesce(sum(saved_gpu_ms), 0) FROM rm_ap_hours"
    " WHERE hour >= %(start)s AND hour < %(end)s")


async def _together(conn: AsyncConnection[Any], queries: list[tuple[str, Any]]
                    ) -> list[list[tuple[Any, ...]]]:
    """The rows of each query, all sent in one pipeline: one round trip for the answer
    (on a busy machine every round trip waits for the server and the API to be scheduled)."""
    async with conn.pipeline():
        cursors = [await conn.execute(query, params) for query, params in queries]
    return [await cursor.fetchall() for cursor in cursors]


async def _tiers(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
    """Every account's current tier (one the log holds no tier for is on the free tier)."""
    rows = await (await conn.execute(
        "SELECT coalesce(t.tier, %s), count(*) FROM accounts_users u"
        " LEFT JOIN rm_user_tiers t ON t.user_id = u.id::text GROUP BY 1",
        (Tier.FREE.value,))).fetchall()
    return _tier_counts(rows)


def _tier_counts(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Users per tier, every tier named (none where there are no accounts yet: a database
    only the projection runner has seen)."""
    found = {tier: int(n) for tier, n in rows}
    return [{"tier": tier.value, "users": found.get(tier.value, 0)} for tier in Tier]


# -- trends, for the design assistant --------------------------------------------------------


TRENDS_SQL = (
    "SELECT metric, key, sum(n) FROM rm_ap_keys WHERE day >= %s"
    " AND metric IN ('style', 'material', 'generator') GROUP BY metric, key")


def trends(conn: Connection[Any], *, weeks: int = 4, limit: int = TOP) -> dict[str, Any]:
    """The styles, materials and generators most used across the platform over the last
    ``weeks`` weeks (UTC days), most used first: ``{"since", "styles", "materials",
    "generators"}``, each a list of ``(name, uses)``."""
    since = datetime.now(UTC).date() - timedelta(weeks=weeks)
    return _trends(conn.execute(TRENDS_SQL, (since,)).fetchall(), since, limit)


async def trends_async(conn: AsyncConnection[Any], *, weeks: int = 4,
                       limit: int = TOP) -> dict[str, Any]:
    """:func:`trends` on an async connection."""
    since = datetime.now(UTC).date() - timedelta(weeks=weeks)
    return _trends(await (await conn.execute(TRENDS_SQL, (since,))).fetchall(), since, limit)


def _trends(rows: list[tuple[Any, ...]], since: date, limit: int) -> dict[str, Any]:
    kinds: dict[str, dict[str, int]] = defaultdict(dict)
    for metric, key, n in rows:
        kinds[metric][key] = int(n)

    def ranked(metric: str) -> list[tuple[str, int]]:
        return sorted(kinds[metric].items(), key=lambda kv: (-kv[1], kv[0]))[:limit]

    return {"since": since.isoformat(), "styles": ranked("style"),
            "materials": ranked("material"), "generators": ranked("generator")}
