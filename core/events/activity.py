"""Facts about how the studio is used, for analytics: sign-ins, downloads, time in rooms, and
per-minute request summaries.

Each fact is the creation event of an ``Activity`` aggregate of its own (a random id, one
event): nothing ever loads or changes one, so facts from many API nodes never contend for an
aggregate version, and one transaction can store a node's whole backlog. They hold no secret:
a failed sign-in names neither the user nor what was typed (a password typed into the name
field must not land in the log).
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate

SIGN_IN_METHODS = ("token", "session")


class Activity(Aggregate):
    class SignedIn(Aggregate.Created):
        user_id: str
        method: str  # one of SIGN_IN_METHODS

    class SignInFailed(Aggregate.Created):
        method: str

    class Exported(Aggregate.Created):
        """A mesh downloaded in ``format`` (``original``: as stored)."""

        user_id: str
        asset_id: str
        format: str

    class SessionEnded(Aggregate.Created):
        """A socket left a project room after ``seconds`` in it (the user's active time)."""

        user_id: str
        project_id: str
        seconds: float
        node: str

    class RequestsSummarised(Aggregate.Created):
        """One node's HTTP requests of one minute (``minute``: ISO 8601, UTC, on the minute),
        by route: ``{"route", "count", "client_errors", "server_errors", "p50_ms",
        "p95_ms", "histogram"}``, the histogram counting requests per latency bucket of
        :data:`LATENCY_BOUNDS_MS` (the last one: slower than every bound)."""

        node: str
        minute: str
        routes: list[dict[str, Any]]


LATENCY_BOUNDS_MS: tuple[float, ...] = (
    1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000,
    3000, 5000, 10000, 30000)
"""Upper bounds of the latency histogram's buckets (ms): summaries of many minutes and nodes
merge by adding counts, which percentiles alone cannot."""


def histogram_percentile(histogram: list[int], percent: float) -> float | None:
    """The upper bound of the bucket holding the ``percent``-th request (nearest rank); the
    last bucket, slower than every bound, answers its lower bound. None when empty."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = max(1, -(-total * percent // 100))
    seen = 0
    for index, n in enumerate(histogram):
        seen += n
        if seen >= rank:
            return float(LATENCY_BOUNDS_MS[min(index, len(LATENCY_BOUNDS_MS) - 1)])
    return float(LATENCY_BOUNDS_MS[-1])


def signed_in(user_id: str, method: str) -> Activity:
    return Activity._create(Activity.SignedIn, user_id=user_id, method=method)


def sign_in_failed(method: str) -> Activity:
    return Activity._create(Activity.SignInFailed, method=method)


def exported(user_id: str, asset_id: str, fmt: str) -> Activity:
    return Activity._create(Activity.Exported, user_id=user_id, asset_id=asset_id, format=fmt)


def session_ended(user_id: str, project_id: str, seconds: float, node: str) -> Activity:
    return Activity._create(Activity.SessionEnded, user_id=user_id, project_id=project_id,
                            seconds=seconds, node=node)


def requests_summarised(node: str, minute: str, routes: list[dict[str, Any]]) -> Activity:
    return Activity._create(Activity.RequestsSummarised, node=node, minute=minute,
                            routes=routes)
