"""Usage facts on their way to the log, kept off the requests' path.

A request, a sign-in, a download or a socket session only adds to memory here (a counter, a
list); a task of the API process stores what gathered every second, all of it in one
transaction (:class:`ActivityRecorder`). HTTP requests are not one event each, which would
flood the log: they are counted per route and minute (count, 4xx, 5xx, a latency histogram)
and stored as one ``Activity.RequestsSummarised`` per node and minute once the minute is over.

What a crash loses: the facts of its last second, and the summary of the minute it was in
(at most one minute of request counts). A database that is away keeps them in memory, up to
:data:`MAX_BACKLOG` facts, and they are stored when it is back; the oldest beyond that are
dropped, said once in the log.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
from anyio.abc import TaskStatus
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.events import activity
from core.events.activity import LATENCY_BOUNDS_MS, Activity, histogram_percentile
from core.events.studio import Studio

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 1.0
MAX_BACKLOG = 10_000
UNMATCHED = "unmatched"  # requests no route answered (404s of unknown paths)


@dataclass
class RouteCounts:
    count: int = 0
    client_errors: int = 0
    server_errors: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))

    def add(self, status: int, milliseconds: float) -> None:
        self.count += 1
        if 400 <= status < 500:
            self.client_errors += 1
        elif status >= 500:
            self.server_errors += 1
        self.histogram[bisect.bisect_left(LATENCY_BOUNDS_MS, milliseconds)] += 1

    def summary(self, route: str) -> dict[str, Any]:
        return {"route": route, "count": self.count, "client_errors": self.client_errors,
                "server_errors": self.server_errors,
                "p50_ms": histogram_percentile(self.histogram, 50),
                "p95_ms": histogram_percentile(self.histogram, 95),
                "histogram": list(self.histogram)}


class ActivityRecorder:
    """Gathers usage facts in memory; :meth:`run` stores them (see the module's docstring)."""

    def __init__(self, studio: Studio, node: str) -> None:
        self._studio = studio
        self.node = node
        # The facts' events, not the aggregates: a save takes an aggregate's pending events
        # before it writes them, so a failed save would leave nothing to try again.
        self._facts: deque[Any] = deque()
        self._minutes: dict[int, dict[str, RouteCounts]] = {}
        self._dropped = 0

    def add(self, fact: Activity) -> None:
        self._facts.extend(fact.collect_events())
        while len(self._facts) > MAX_BACKLOG:
            self._facts.popleft()
            self._dropped += 1
            if self._dropped == 1:
                log.warning("usage facts are being dropped: the database has been away long")

    def note_request(self, route: str, status: int, milliseconds: float,
                     now: float | None = None) -> None:
        minute = int((time.time() if now is None else now) // 60)
        routes = self._minutes.setdefault(minute, {})
        counts = routes.get(route)
        if counts is None:
            counts = routes[route] = RouteCounts()
        counts.add(status, milliseconds)

    def due(self, now: float | None = None, *, everything: bool = False) -> list[Any]:
        """Take what is ready to store: every fact, and the summaries of minutes that are
        over (with ``everything``, the current one too: the process is stopping); as the
        events to store."""
        current = int((time.time() if now is None else now) // 60)
        for minute in sorted(m for m in self._minutes if everything or m < current):
            routes = self._minutes.pop(minute)
            start = datetime.fromtimestamp(minute * 60, UTC).isoformat()
            self.add(activity.requests_summarised(
                self.node, start, [c.summary(r) for r, c in sorted(routes.items())]))
        taken = list(self._facts)
        self._facts.clear()
        return taken

    def store(self, facts: list[Any]) -> None:
        """Save ``facts`` in one transaction; on failure they go back to wait for the next."""
        if not facts:
            return
        try:
            self._studio.save(*facts)
        except Exception:
            log.warning("could not store %d usage facts; keeping them for the next try",
                        len(facts), exc_info=True)
            self._facts.extendleft(reversed(facts))
            while len(self._facts) > MAX_BACKLOG:
                self._facts.popleft()
                self._dropped += 1

    async def flush(self, *, everything: bool = False) -> None:
        facts = self.due(everything=everything)
        if facts:
            await asyncio.to_thread(self.store, facts)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                await anyio.sleep(FLUSH_EVERY_S)
                await self.flush()
        finally:
            with anyio.CancelScope(shield=True):
                await self.flush(everything=True)


def route_name(scope: Scope) -> str | None:
    """``"GET /api/v1/projects/{project_id}"`` for a routed request, :data:`UNMATCHED` for
    one no route took, None for the workspace's static files (not the API's use)."""
    route = scope.get("route")
    if isinstance(route, Route):
        return f"{scope.get('method', 'GET')} {route.path}"
    if route is None:
        return UNMATCHED
    return None


class RequestSummaries:
    """Times every HTTP request and counts it for its route's minute (an in-memory add)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what an exception that escapes every handler becomes

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            recorder = recorder_of(scope)
            name = route_name(scope)
            if recorder is not None and name is not None:
                recorder.note_request(name, status, (time.perf_counter() - started) * 1e3)


def recorder_of(scope: Scope) -> ActivityRecorder | None:
    app = scope.get("app")
    resources = getattr(getattr(app, "state", None), "resources", None)
    recorder = getattr(resources, "activity", None)
    return recorder if isinstance(recorder, ActivityRecorder) else None


def record_usage(scope: Scope, fact: Activity) -> None:
    """Add a usage fact for the process's recorder to store (nothing where none runs)."""
    recorder = recorder_of(scope)
    if recorder is not None:
        recorder.add(fact)
