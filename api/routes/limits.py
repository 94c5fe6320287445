"""Tiers and their limits: what a user may use and has used, and the admins' controls.

A tier change is an ``Account.TierChanged`` event; the answer waits until the tiers' read
model has it, so the limiter (which reads that model in every decision) applies it from the
next request on, on every node. The tiers' limits are rows of ``limits_tiers``, read by every
decision too: a ``PUT`` holds at once, without a restart.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import Response

from api.auth import Access, Scope, current_user, guard
from api.jsonbody import Json, parse_body
from api.openapi import contract
from api.ratelimit import note
from api.resources import resources
from api.schemas import (
    LIMITS_TABLE,
    TIER_LIMITS,
    USAGE,
    USER_TIER,
    USER_TIERS,
    TierChange,
    TierLimitsBody,
)
from core.errors import EventStoreError
from core.events.account import set_tier
from core.limits import Decision, Limits, Policy, check_limits, check_tier

TIER_CATCH_UP_S = 10.0


@contract(response=USAGE)
@guard(Access(Scope.USER))
async def usage(request: Request) -> Response:
    """Your tier, its limits, and what you have used: billable jobs and requests in their
    windows, jobs queued or running now, and the bytes of your uploads."""
    user = current_user(request).key
    limits = Limits(resources(request).pool)
    tier, allowed = await limits.tier_of(user)
    billable = await limits.peek(user, Policy.BILLABLE)
    note(request, billable)
    requests = await limits.peek(user, Policy.REQUESTS)
    return Json({
        "tier": tier, "limits": asdict(allowed),
        "billable": _rate(billable), "requests": _rate(requests),
        "jobs": {"running": await limits.active_jobs(user), "limit": allowed.concurrent_jobs},
        "storage": {"used_bytes": await limits.storage_used(user),
                    "limit_bytes": allowed.storage_bytes},
    })


def _rate(decision: Decision) -> dict[str, int]:
    return {"limit": decision.limit, "window_s": decision.window_s, "used": decision.used,
            "remaining": decision.remaining, "reset_s": decision.reset_s}


@contract(response=USER_TIERS)
@guard(Access(Scope.ADMIN))
async def users(request: Request) -> Response:
    """Every user with their tier."""
    return Json({"users": await resources(request).accounts.with_tiers()})


@contract(body=TierChange, response=USER_TIER)
@guard(Access(Scope.ADMIN))
async def set_user_tier(request: Request) -> Response:
    """Put a user on a tier (an event in the log); it holds from the answer on."""
    res = resources(request)
    body = await parse_body(request, TierChange)
    tier = check_tier(body.tier)
    user = await res.accounts.find(request.path_params["username"])
    await asyncio.to_thread(set_tier, res.studio, user.key, user.username, tier.value,
                            current_user(request).key)
    if not await res.read_models.caught_up(TIER_CATCH_UP_S, names=("user_tiers",)):
        raise EventStoreError("the tier is recorded but not applied yet (the projection "
                              "runner is behind); it holds once it catches up")
    return Json(user.public() | {"tier": tier.value})


@contract(response=LIMITS_TABLE)
@guard(Access(Scope.ADMIN))
async def tier_limits(request: Request) -> Response:
    """Every tier's limits, as the limiter applies them now."""
    table = await Limits(resources(request).pool).all()
    return Json({"tiers": {tier: asdict(limits) for tier, limits in table.items()}})


@contract(body=TierLimitsBody, response=TIER_LIMITS)
@guard(Access(Scope.ADMIN))
async def set_tier_limits(request: Request) -> Response:
    """Replace one tier's limits; every node applies them from the next request on."""
    tier = check_tier(request.path_params["tier"])
    body = await parse_body(request, TierLimitsBody)
    limits = check_limits(body.model_dump())
    await Limits(resources(request).pool).set(tier, limits, current_user(request).key)
    return Json(asdict(limits))
