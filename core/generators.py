"""Which generators the GPU workers offer, as they report it, and who may start how many jobs
(requests the dedup cache answers get jobs of their own: ``Studio.reuse_job``).

Workers write their backends' availability here when they start and again every
:data:`HEARTBEAT_S` while they run (``workers.gpu.heartbeat``), so the API can list generators
with the real reason one is unavailable without importing torch itself. A report counts while it
is younger than :data:`MISSED_BEATS` intervals: written once at start and trusted for 10 minutes,
it made the menu say "no worker" of a worker that was generating.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from core.events.job_kinds import GENERATOR_VERSIONS
from core.limits import Decision, Limits, Policy

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS gpu_generators ("
    " name text NOT NULL, worker text NOT NULL, version text NOT NULL,"
    " available boolean NOT NULL, reason text NOT NULL, device text NOT NULL,"
    " capabilities jsonb NOT NULL, seen_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (name, worker))"
)
HEARTBEAT_S = 30.0  # how often a running GPU worker writes its report again
MISSED_BEATS = 3  # a report older than this many intervals no longer counts


@dataclass(frozen=True)
class GeneratorReport:
    name: str
    version: str
    available: bool
    reason: str
    device: str
    capabilities: dict[str, Any]


def report_generators(database_url: str, worker: str, reports: list[GeneratorReport]) -> None:
    """Called by a GPU worker: what it can run, and why not where it cannot."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SCHEMA)  # type: ignore[arg-type]
        for r in reports:
            conn.execute(
                "INSERT INTO gpu_generators (name, worker, version, available, reason, device,"
                " capabilities) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (name, worker) DO UPDATE SET version = EXCLUDED.version,"
                " available = EXCLUDED.available, reason = EXCLUDED.reason,"
                " device = EXCLUDED.device, capabilities = EXCLUDED.capabilities,"
                " seen_at = now()",
                (r.name, worker, r.version, r.available, r.reason, r.device,
                 Jsonb(r.capabilities)),
            )


async def list_generators(pool: AsyncConnectionPool,
                          fresh_for_s: float = MISSED_BEATS * HEARTBEAT_S
                          ) -> list[dict[str, Any]]:
    """Every known generator with the best current report of any worker (one younger than
    ``fresh_for_s``); one whose workers all went quiet says since when."""
    async with pool.connection() as conn:
        await conn.execute(SCHEMA)  # type: ignore[arg-type]
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "SELECT DISTINCT ON (name) *, seen_at > now() - make_interval(secs => %s) AS fresh,"
            " extract(epoch FROM now() - seen_at)::float8 AS age_s FROM gpu_generators"
            " ORDER BY name, fresh DESC, available DESC, seen_at DESC", (fresh_for_s,))
        reported = {row["name"]: row for row in await cur.fetchall()}
    return [_listed(name, version, reported.get(name))
            for name, version in sorted(GENERATOR_VERSIONS.items())]


def _listed(name: str, version: str, row: dict[str, Any] | None) -> dict[str, Any]:
    listed = {"name": name, "version": version, "available": False, "device": None,
              "capabilities": {}}
    if row is None:
        return listed | {"reason": "no GPU worker has reported this generator"}
    if not row["fresh"]:
        return listed | {"reason": f"no GPU worker has reported it for {_ago(row['age_s'])}"}
    return listed | {"available": row["available"], "reason": row["reason"],
                     "device": row["device"], "capabilities": row["capabilities"]}


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.0f} h"


async def check_job_quota(pool: AsyncConnectionPool, user_id: str) -> Decision:
    """The one place that decides whether a user may start another job: at most their tier's
    jobs at once (:meth:`core.limits.Limits.check_jobs`, which says where the queue stands),
    then one of the tier's billable requests per window (spent only when the job is let
    through; answers from the generation cache never reach here)."""
    limits = Limits(pool)
    await limits.check_jobs(user_id)
    return await limits.take(user_id, Policy.BILLABLE, "billable job")
