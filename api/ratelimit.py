"""Rate limits at the HTTP edge: the per-user request rate every signed-in route spends, and
the ``RateLimit-Policy`` / ``RateLimit`` answer headers.

The headers follow draft-ietf-httpapi-ratelimit-headers-10 (the structured-field syntax that
draft -08 introduced): each field is a List of named policies, e.g.
``RateLimit-Policy: "billable";q=10;w=3600`` and ``RateLimit: "billable";r=3;t=1200`` (quota,
window, remaining, seconds until the quota is whole again). The decisions a request made are
kept in its ASGI scope's state and written onto whatever answer it gets, a 429 problem
included, by :class:`RateLimitHeaders`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from psycopg_pool import AsyncConnectionPool
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.generators import check_job_quota
from core.limits import Decision, Limits, Policy, RateLimited, TooManyJobs

STATE_KEY = "rate_limits"


def note(conn: HTTPConnection, decision: Decision) -> None:
    """Keep ``decision`` for the answer's headers (the latest per policy wins)."""
    decisions: dict[str, Decision] = conn.scope.setdefault("state", {}).setdefault(STATE_KEY, {})
    decisions[decision.policy.value] = decision


async def take(conn: HTTPConnection, limits: Limits, user_id: str, policy: Policy,
               what: str) -> Decision:
    """Spend one request of ``policy`` for the user; its state goes on the answer either way."""
    try:
        decision = await limits.take(user_id, policy, what)
    except RateLimited as refused:
        note(conn, refused.decision)
        raise
    note(conn, decision)
    return decision


async def peek(conn: HTTPConnection, limits: Limits, user_id: str, policy: Policy) -> None:
    """Put the policy's state on the answer without spending (a request the cache answered)."""
    note(conn, await limits.peek(user_id, policy))


async def charge_job(conn: HTTPConnection, pool: AsyncConnectionPool, user_id: str) -> None:
    """Let a job that will run through the tier's limits (:func:`check_job_quota`), with the
    billable policy's state on the answer, refused or not."""
    try:
        note(conn, await check_job_quota(pool, user_id))
    except RateLimited as refused:
        note(conn, refused.decision)
        raise
    except TooManyJobs:
        await peek(conn, Limits(pool), user_id, Policy.BILLABLE)
        raise


async def check_job(conn: HTTPConnection, pool: AsyncConnectionPool, user_id: str) -> None:
    """Refuse now, spending nothing, a job that :func:`charge_job` would refuse: for a request
    that has to store something before its job is charged (a generation's new image)."""
    limits = Limits(pool)
    decision = await limits.peek(user_id, Policy.BILLABLE)
    if decision.retry_after_s > 0:  # no slot free now: take would refuse
        decision = replace(decision, allowed=False)
    note(conn, decision)  # on the answer, refused or not
    await limits.check_jobs(user_id)  # TooManyJobs, as charge_job raises it
    if not decision.allowed:
        raise RateLimited(decision, "billable job")


def header_fields(decisions: list[Decision]) -> list[tuple[bytes, bytes]]:
    policies = ", ".join(f'"{d.policy.value}";q={d.limit};w={d.window_s}' for d in decisions)
    states = ", ".join(f'"{d.policy.value}";r={d.remaining};t={d.reset_s}' for d in decisions)
    return [(b"ratelimit-policy", policies.encode()), (b"ratelimit", states.encode())]


class RateLimitHeaders:
    """Adds the RateLimit fields of the decisions the request made to its answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})

        async def with_headers(message: Message) -> None:
            decisions = state.get(STATE_KEY)
            if message["type"] == "http.response.start" and decisions:
                ordered = sorted(decisions.values(), key=lambda d: d.policy.value)
                message["headers"] = [*message.get("headers", []), *header_fields(ordered)]
            await send(message)

        await self.app(scope, receive, with_headers)
