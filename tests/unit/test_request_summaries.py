"""Requests are counted per route and minute in memory, and a minute becomes one event only
once it is over (or when the process stops)."""

from __future__ import annotations

from typing import Any, cast

from starlette.routing import Mount, Route

from api.activity import UNMATCHED, ActivityRecorder, route_name
from core.events.activity import LATENCY_BOUNDS_MS, Activity, histogram_percentile
from core.events.studio import Studio


def _recorder() -> ActivityRecorder:
    return ActivityRecorder(cast(Studio, None), "node-1")  # nothing is stored here


def _events(facts: list[Any]) -> list[Activity.RequestsSummarised]:
    assert all(isinstance(e, Activity.RequestsSummarised) for e in facts)
    return facts


def test_a_minute_is_summarised_once_it_is_over() -> None:
    recorder = _recorder()
    recorder.note_request("GET /api/v1/me", 200, 3.0, now=60.5)
    recorder.note_request("GET /api/v1/me", 404, 40.0, now=61.0)
    recorder.note_request("POST /api/v1/projects", 503, 2.0, now=119.9)
    recorder.note_request("GET /api/v1/me", 200, 1.0, now=121.0)
    assert recorder.due(now=119.9) == []  # minute 1 is still running
    [summary] = _events(recorder.due(now=125.0))
    assert summary.minute == "1970-01-01T00:01:00+00:00" and summary.node == "node-1"
    by_route = {r["route"]: r for r in summary.routes}
    me = by_route["GET /api/v1/me"]
    assert (me["count"], me["client_errors"], me["server_errors"]) == (2, 1, 0)
    assert sum(me["histogram"]) == 2 and me["p50_ms"] == 3.0 and me["p95_ms"] == 50.0
    assert by_route["POST /api/v1/projects"]["server_errors"] == 1
    assert recorder.due(now=125.0) == []  # taken once
    [last] = _events(recorder.due(now=125.0, everything=True))  # the process is stopping
    assert last.minute == "1970-01-01T00:02:00+00:00" and last.routes[0]["count"] == 1


def test_percentiles_are_bucket_bounds() -> None:
    histogram = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    assert histogram_percentile(histogram, 50) is None
    histogram[0], histogram[5], histogram[-1] = 50, 45, 5
    assert histogram_percentile(histogram, 50) == LATENCY_BOUNDS_MS[0]
    assert histogram_percentile(histogram, 95) == LATENCY_BOUNDS_MS[5]
    assert histogram_percentile(histogram, 100) == LATENCY_BOUNDS_MS[-1]  # "slower than all"


def test_routes_are_named_by_their_template() -> None:
    route = Route("/api/v1/projects/{project_id}", lambda r: None, methods=["GET"])
    assert route_name({"route": route, "method": "GET"}) == "GET /api/v1/projects/{project_id}"
    assert route_name({"method": "GET"}) == UNMATCHED
    assert route_name({"route": Mount("/", routes=[]), "method": "GET"}) is None  # the workspace
