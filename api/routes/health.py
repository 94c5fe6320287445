"""Liveness (the process answers) and readiness (every backing service answers)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.auth import Access, Scope, guard
from api.jsonbody import Json
from api.openapi import contract
from api.resources import Resources, resources
from api.schemas import READINESS
from core.errors import MessagingError

# A check that has not answered by then counts as failed: a dead service must show at once
# (each client fails fast too: the pool waits 1 s, S3 and NATS requests about as long).
CHECK_TIMEOUT_S = 1.5
LAG_DEGRADED_EVENTS = 1000  # a read model this far behind the log reports the studio degraded
QUARANTINE_SHOWN = 5  # the newest quarantined events that readiness names


@contract(response={"type": "object", "required": ["status"]})
@guard(Access(Scope.PUBLIC))
async def healthz(request: Request) -> Response:
    return Json({"status": "ok"})


@contract(response=READINESS, answers={503: READINESS})
@guard(Access(Scope.PUBLIC))
async def readyz(request: Request) -> Response:
    res = resources(request)
    checks = dict(
        zip(
            ("postgres", "nats", "s3", "projections"),
            await asyncio.gather(
                _check(_postgres, res), _check(_nats, res), _check(_s3, res),
                _check(_projections, res),
            ),
            strict=True,
        )
    )
    ready = all(c["ok"] for c in checks.values())
    # Degraded still serves (every request answers, some read model is behind or skipped an
    # event), so it answers 200: a load balancer must not take a node out for it.
    degraded = any(c.get("degraded") for c in checks.values())
    status = "unavailable" if not ready else "degraded" if degraded else "ready"
    down = [name for name, check in checks.items() if not check["ok"]]  # names what is missing
    return Json({"status": status, "checks": checks, "down": down},
                status_code=200 if ready else 503)


async def _check(probe: Callable[[Resources], Awaitable[dict[str, Any]]],
                 res: Resources) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        details = await asyncio.wait_for(probe(res), CHECK_TIMEOUT_S)
    except Exception as e:  # a readiness probe reports every failure, whatever its type
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1), **details}


async def _postgres(res: Resources) -> dict[str, Any]:
    async with res.pool.connection() as conn:
        cur = await conn.execute("SHOW server_version")
        row = await cur.fetchone()
    assert row is not None
    return {"version": row[0]}


async def _nats(res: Resources) -> dict[str, Any]:
    if not res.nats.is_connected:  # reconnecting: a request would only wait out its timeout
        raise MessagingError("not connected (the client is reconnecting)")
    info = await res.nats.jetstream(timeout=CHECK_TIMEOUT_S).account_info()
    version = res.nats.connected_server_version
    return {"version": f"{version.major}.{version.minor}.{version.patch}",
            "jetstream": {"streams": info.streams, "consumers": info.consumers}}


async def _s3(res: Resources) -> dict[str, Any]:
    return await asyncio.to_thread(res.blobs.server_info)


async def _projections(res: Resources) -> dict[str, Any]:
    """Lag per read model, and the events each quarantined: degraded where a model is more
    than LAG_DEGRADED_EVENTS behind or skipped any event. Anyone may call this, so it names
    the quarantined events (model, position, topic, when) but not their errors; admins read
    those at ``GET /api/v1/admin/quarantine``."""
    models = res.read_models
    positions = await models.positions()
    head = positions.pop("log")
    lag = {k: head - v for k, v in positions.items()}
    counts = await models.quarantined_counts()
    newest = [{"model": row["model"], "position": row["position"], "topic": row["topic"],
               "at": row["quarantined_at"]}
              for row in await models.quarantined(QUARANTINE_SHOWN)] if counts else []
    behind = {k: v for k, v in lag.items() if v > LAG_DEGRADED_EVENTS}
    return {"log_position": head, "lag": lag, "lag_threshold": LAG_DEGRADED_EVENTS,
            "quarantined": counts, "newest_quarantined": newest,
            "degraded": bool(counts or behind)}
