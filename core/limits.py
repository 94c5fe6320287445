"""Tiers, their limits, and the rate limiter every API node shares through PostgreSQL.

The limits of each tier are rows of ``limits_tiers`` (seeded with the plan's defaults, changed
by site admins through ``PUT /admin/limits/{tier}``); every decision reads them in the same
statement that decides, so a change holds on every node from the next request, without a
restart or a cache to expire. A user's tier comes from the log (``Account.TierChanged``, read
model ``rm_user_tiers``); a user the log has no tier for is ``free``.

Rates are a GCRA (generic cell rate algorithm): one row per (user, policy) holding the
theoretical arrival time (TAT) of the next request. A policy of ``q`` requests per ``w``
seconds lets ``q`` through at once and then one every ``w / q`` seconds. A decision is one
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` on that row, so two nodes deciding at once
are serialised by the row lock and never both take the last slot; the clock is the database's,
so nodes with skewed clocks still agree.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from core.errors import InvalidInput, QuotaExceeded, StorageQuotaExceeded


class Tier(StrEnum):
    FREE = "free"
    PRO = "pro"
    ENTERPRISE = "enterprise"


class Policy(StrEnum):
    """The rate policies, by the name the RateLimit headers give them."""

    BILLABLE = "billable"  # generation and mesh jobs that run (cache answers do not count)
    REQUESTS = "requests"  # every signed-in request, on every route


@dataclass(frozen=True)
class TierLimits:
    """One tier's allowances. The windows are settable so that tests (and operators) can use
    short ones; the plan's are an hour for billable work and a minute for requests."""

    billable_per_window: int
    billable_window_s: int
    concurrent_jobs: int
    storage_bytes: int
    requests_per_window: int
    requests_window_s: int

    def rate(self, policy: Policy) -> tuple[int, int]:
        if policy is Policy.BILLABLE:
            return self.billable_per_window, self.billable_window_s
        return self.requests_per_window, self.requests_window_s


GIB = 1024**3
DEFAULTS: dict[Tier, TierLimits] = {
    Tier.FREE: TierLimits(10, 3600, 1, 1 * GIB, 600, 60),
    Tier.PRO: TierLimits(1_000, 3600, 5, 50 * GIB, 3_000, 60),
    Tier.ENTERPRISE: TierLimits(10_000, 3600, 20, 1024 * GIB, 12_000, 60),
}
# Bounds a limit must lie in (inclusive): beyond them it is a typo, not a plan.
BOUNDS: dict[str, tuple[int, int]] = {
    "billable_per_window": (1, 10_000_000),
    "billable_window_s": (1, 31 * 86400),
    "concurrent_jobs": (1, 10_000),
    "storage_bytes": (1024**2, 1024**5),
    "requests_per_window": (1, 10_000_000),
    "requests_window_s": (1, 86400),
}
_COLUMNS = tuple(BOUNDS)
DEFAULT_JOB_S = 60.0  # a job's expected duration until some have finished

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS limits_tiers ("
    " tier text PRIMARY KEY, billable_per_window integer NOT NULL,"
    " billable_window_s integer NOT NULL, concurrent_jobs integer NOT NULL,"
    " storage_bytes bigint NOT NULL, requests_per_window integer NOT NULL,"
    " requests_window_s integer NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),"
    " updated_by text NOT NULL DEFAULT 'defaults')",
    # Unlogged: a decision writes no WAL, so its commit waits for no disk flush (7 ms p50
    # on a durable server here, against 1 ms for a SELECT 1). After a server crash the table
    # is empty and everyone starts with a full quota: a limiter may forget, it must not stall.
    "CREATE UNLOGGED TABLE IF NOT EXISTS limits_gcra ("
    " user_id text NOT NULL, policy text NOT NULL, tat double precision NOT NULL,"
    " allowed boolean NOT NULL, PRIMARY KEY (user_id, policy))",
    # Bytes of uploads on their way into the store, counted against their user's storage
    # until the catalogue lists them (see Limits.hold_storage); unlogged like the rates.
    "CREATE UNLOGGED TABLE IF NOT EXISTS limits_storage_holds ("
    " hold_id uuid PRIMARY KEY, user_id text NOT NULL, bytes bigint NOT NULL,"
    " asset_id uuid, held_at timestamptz NOT NULL DEFAULT now())",
)
STORAGE_HOLD_S = 900
"""A hold older than this belongs to an upload that died on its way (a crashed node) and no
longer counts."""
# The read model of users' tiers (core.projections.user_tiers owns it; created here too so
# that the limiter works before the projection runner first started).
USER_TIERS_SQL = (
    "CREATE TABLE IF NOT EXISTS rm_user_tiers ("
    " user_id text PRIMARY KEY, username text NOT NULL, tier text NOT NULL,"
    " changed_at timestamptz NOT NULL, changed_by text NOT NULL)",
)

_TIER_OF = ("coalesce((SELECT tier FROM rm_user_tiers WHERE user_id = %(user)s),"
            f" '{Tier.FREE.value}')")

# One statement decides: the user's tier and its limit, then the GCRA step on the row.
# new TAT = max(TAT, now) + w/q, allowed while new TAT - now <= w; a refusal keeps the TAT.
_DECIDE = (
    "WITH lim AS (SELECT tier, {q}::float8 AS q, {w}::float8 AS w FROM limits_tiers"
    f" WHERE tier = {_TIER_OF}),"
    " clock AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS now)"
    " INSERT INTO limits_gcra AS g (user_id, policy, tat, allowed)"
    " SELECT %(user)s, %(policy)s, clock.now + lim.w / lim.q, true FROM lim, clock"
    " ON CONFLICT (user_id, policy) DO UPDATE SET"
    " allowed = greatest(g.tat + (SELECT w / q FROM lim), EXCLUDED.tat)"
    "   <= (SELECT now + w FROM lim, clock),"
    " tat = CASE WHEN greatest(g.tat + (SELECT w / q FROM lim), EXCLUDED.tat)"
    "   <= (SELECT now + w FROM lim, clock)"
    "   THEN greatest(g.tat + (SELECT w / q FROM lim), EXCLUDED.tat) ELSE g.tat END"
    " RETURNING g.allowed, g.tat, (SELECT now FROM clock) AS now,"
    " (SELECT q FROM lim) AS q, (SELECT w FROM lim) AS w, (SELECT tier FROM lim) AS tier"
)
_PEEK = (
    "SELECT l.tier, l.{q}::float8 AS q, l.{w}::float8 AS w,"
    " extract(epoch FROM clock_timestamp())::float8 AS now,"
    " (SELECT tat FROM limits_gcra WHERE user_id = %(user)s AND policy = %(policy)s) AS tat"
    f" FROM limits_tiers l WHERE l.tier = {_TIER_OF}"
)
_COLUMNS_OF = {Policy.BILLABLE: ("billable_per_window", "billable_window_s"),
               Policy.REQUESTS: ("requests_per_window", "requests_window_s")}
DECIDE = {p: _DECIDE.format(q=q, w=w) for p, (q, w) in _COLUMNS_OF.items()}
PEEK = {p: _PEEK.format(q=q, w=w) for p, (q, w) in _COLUMNS_OF.items()}


@dataclass(frozen=True)
class Decision:
    """One policy's state after a request: what the RateLimit headers say."""

    policy: Policy
    allowed: bool
    limit: int
    window_s: int
    remaining: int
    reset_s: int  # until the whole quota is free again
    retry_after_s: int  # until the next request would pass (0 when it would now)
    tier: str

    @classmethod
    def of(cls, policy: Policy, row: dict[str, Any], allowed: bool) -> Decision:
        q, w, now = row["q"], row["w"], row["now"]
        interval = w / q
        tat = max(row["tat"] if row["tat"] is not None else now, now)
        # slots in use are the TAT's lead over now in intervals; a little float slack
        used = min(q, max(0.0, math.ceil((tat - now) / interval - 1e-9)))
        wait = max(0.0, tat + interval - w - now)  # until one more fits
        return cls(policy, allowed, int(q), int(w), int(q - used), math.ceil(tat - now),
                   0 if wait <= 0 else max(1, math.ceil(wait)), row["tier"])

    @property
    def used(self) -> int:
        return self.limit - self.remaining


class RateLimited(QuotaExceeded):
    """A rate policy refused the request; the decision says when to come back."""

    def __init__(self, decision: Decision, what: str) -> None:
        super().__init__(
            f"{what}: the {decision.tier} tier allows {decision.limit} per "
            f"{_duration(decision.window_s)}; try again in {decision.retry_after_s} s")
        self.decision = decision
        self.retry_after_s = decision.retry_after_s
        self.problem_extra = {"tier": decision.tier, "policy": decision.policy.value,
                              "limit": decision.limit, "window_s": decision.window_s,
                              "retry_after_s": decision.retry_after_s}


class TooManyJobs(QuotaExceeded):
    """The user's jobs at once are at their tier's limit; says where the queue stands."""

    def __init__(self, tier: str, active: int, limit: int, queue_position: int,
                 slot_expected_s: int) -> None:
        super().__init__(
            f"you have {active} job{'' if active == 1 else 's'} queued or running; the {tier}"
            f" tier allows {limit} at "
            f"once. Your next job is at position {queue_position} in the queue; a slot is "
            f"expected in about {slot_expected_s} s")
        self.retry_after_s = slot_expected_s
        self.problem_extra = {"tier": tier, "active_jobs": active, "limit": limit,
                              "queue_position": queue_position,
                              "slot_expected_in_s": slot_expected_s}


class StorageFull(StorageQuotaExceeded):
    """An upload that would take its user past the tier's storage; the figures say by how
    much, so that a client can say what to delete."""

    def __init__(self, tier: str, used: int, upload: int, limit: int) -> None:
        super().__init__(
            f"this upload ({human_bytes(upload)}) would take your files to "
            f"{human_bytes(used + upload)}; the {tier} tier allows {human_bytes(limit)} and "
            f"you use {human_bytes(used)}. Delete files or ask an admin for a larger tier")
        self.problem_extra = {
            "type": "https://orfeas.studio/problems/storage-quota", "title": "Storage quota",
            "tier": tier, "used_bytes": used, "upload_bytes": upload, "limit_bytes": limit,
            "available_bytes": max(0, limit - used)}


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return "hour" if seconds == 3600 else f"{seconds // 3600} hours"
    if seconds % 60 == 0:
        return "minute" if seconds == 60 else f"{seconds // 60} minutes"
    return f"{seconds} s"


def check_tier(raw: Any) -> Tier:
    try:
        return Tier(raw)
    except ValueError:
        raise InvalidInput(f"unknown tier {raw!r}; tiers are "
                           f"{', '.join(t.value for t in Tier)}") from None


def check_limits(values: dict[str, Any]) -> TierLimits:
    """Every limit present, an integer, and within :data:`BOUNDS` (else nothing changes)."""
    missing = [c for c in _COLUMNS if c not in values]
    if missing:
        raise InvalidInput(f"missing {', '.join(missing)}")
    for name, (low, high) in BOUNDS.items():
        value = values[name]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise InvalidInput(f"{name} must be an integer from {low} to {high}")
    return TierLimits(**{c: values[c] for c in _COLUMNS})


class Limits:
    """Reads and changes the tiers' limits, and decides rate limits and job quotas."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def ensure_schema(self) -> None:
        async with self._pool.connection() as conn:
            for statement in (*SCHEMA, *USER_TIERS_SQL):
                await conn.execute(statement)  # type: ignore[arg-type]
            for tier, limits in DEFAULTS.items():
                await conn.execute(
                    f"INSERT INTO limits_tiers (tier, {', '.join(_COLUMNS)}) VALUES"
                    f" (%s, {', '.join(['%s'] * len(_COLUMNS))}) ON CONFLICT DO NOTHING",
                    (tier.value, *(getattr(limits, c) for c in _COLUMNS)))

    async def all(self) -> dict[str, TierLimits]:
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(f"SELECT tier, {', '.join(_COLUMNS)} FROM limits_tiers")
            rows = await cur.fetchall()
        return {row.pop("tier"): TierLimits(**row) for row in rows}

    async def set(self, tier: Tier, limits: TierLimits, actor: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                f"UPDATE limits_tiers SET ({', '.join(_COLUMNS)}, updated_at, updated_by) ="
                f" ({', '.join(['%s'] * len(_COLUMNS))}, now(), %s) WHERE tier = %s",
                (*(getattr(limits, c) for c in _COLUMNS), actor, tier.value))

    async def tier_of(self, user_id: str) -> tuple[str, TierLimits]:
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(f"SELECT tier, {', '.join(_COLUMNS)} FROM limits_tiers"
                              f" WHERE tier = {_TIER_OF}", {"user": user_id})
            row = await cur.fetchone()
        assert row is not None  # every tier is seeded by ensure_schema
        return row.pop("tier"), TierLimits(**row)

    async def take(self, user_id: str, policy: Policy, what: str) -> Decision:
        """Spend one request of ``policy``, or raise :class:`RateLimited` (spending none)."""
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(DECIDE[policy], {"user": user_id, "policy": policy.value},
                              prepare=True)
            row = await cur.fetchone()
        assert row is not None  # every tier is seeded by ensure_schema
        decision = Decision.of(policy, row, bool(row["allowed"]))
        if not decision.allowed:
            raise RateLimited(decision, what)
        return decision

    async def peek(self, user_id: str, policy: Policy) -> Decision:
        """The policy's state without spending anything (usage, answers the cache gave)."""
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(PEEK[policy], {"user": user_id, "policy": policy.value},
                              prepare=True)
            row = await cur.fetchone()
        assert row is not None
        return Decision.of(policy, row, True)

    async def active_jobs(self, user_id: str) -> int:
        """The user's jobs queued or running that run on a worker (a cache answer or a join
        of an identical run occupies none)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM rm_jobs WHERE requested_by = %s"
                " AND state IN ('requested', 'started') AND cache_key <> ''", (user_id,))
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def queue_estimate(self, user_id: str) -> tuple[int, int]:
        """Where the user's next job stands in the queue (1 + the jobs of any user queued
        before their oldest queued one; 0 when all of theirs run) and the seconds until a slot
        is expected, from the median duration of the last 50 jobs that ran and succeeded."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "WITH mine AS (SELECT min(requested_at) FILTER (WHERE state = 'requested')"
                "  AS queued, min(requested_at) FILTER (WHERE state = 'started') AS running"
                "  FROM rm_jobs WHERE requested_by = %(user)s AND cache_key <> ''"
                "  AND state IN ('requested', 'started')),"
                " recent AS (SELECT extract(epoch FROM updated_at - requested_at) AS s"
                "  FROM rm_jobs WHERE state = 'succeeded' AND cache_key <> ''"
                "  ORDER BY updated_at DESC LIMIT 50)"
                " SELECT (SELECT count(*) FROM rm_jobs, mine WHERE state = 'requested'"
                "  AND cache_key <> '' AND requested_at < mine.queued),"
                " (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) FROM recent),"
                " (SELECT extract(epoch FROM now() - coalesce(running, queued)) FROM mine),"
                " (SELECT queued IS NOT NULL FROM mine)",
                {"user": user_id})
            row = await cur.fetchone()
        assert row is not None
        ahead, age = int(row[0] or 0), float(row[2] or 0.0)
        median = float(row[1]) if row[1] is not None else DEFAULT_JOB_S
        if not row[3]:  # all of theirs run: a slot frees when the oldest ends
            return 0, max(1, math.ceil(median - age))
        return ahead + 1, max(1, math.ceil(median * (ahead + 1) - age))

    async def check_jobs(self, user_id: str) -> None:
        """Refuse (:class:`TooManyJobs`) a job over the tier's jobs-at-once limit."""
        tier, limits = await self.tier_of(user_id)
        active = await self.active_jobs(user_id)
        if active >= limits.concurrent_jobs:
            position, expected = await self.queue_estimate(user_id)
            raise TooManyJobs(tier, active, limits.concurrent_jobs, position, expected)

    async def storage_used(self, user_id: str) -> int:
        """Bytes of the files the user uploaded (meshes jobs made are not theirs to count)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT coalesce(sum(size), 0) FROM rm_assets WHERE uploaded_by = %s",
                (user_id,))
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def hold_storage(self, user_id: str, size: int) -> str:
        """Count ``size`` bytes against the user's storage before they are stored, or refuse
        (:class:`StorageFull`) an upload that would go past the tier's allowance.

        The check and the hold are one transaction under a per-user advisory lock, so two
        uploads at once cannot both take the last bytes. A hold counts until the catalogue
        lists its asset (:meth:`settle_storage` names it), so the read model's lag leaves no
        gap; holds the catalogue has caught up with are cleared here.
        """
        hold = str(uuid.uuid4())
        params = {"user": user_id, "ttl": STORAGE_HOLD_S}
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended("
                               "'orfeas.storage:' || %s, 0))", (user_id,))
            await conn.execute(
                "DELETE FROM limits_storage_holds h WHERE user_id = %(user)s AND"
                " (held_at < now() - make_interval(secs => %(ttl)s) OR EXISTS"
                "  (SELECT 1 FROM rm_assets a WHERE a.asset_id = h.asset_id))", params)
            cur = await conn.execute(
                "SELECT l.tier, l.storage_bytes,"
                " (SELECT coalesce(sum(size), 0) FROM rm_assets WHERE uploaded_by = %(user)s),"
                " (SELECT coalesce(sum(bytes), 0) FROM limits_storage_holds"
                "  WHERE user_id = %(user)s)"
                f" FROM limits_tiers l WHERE l.tier = {_TIER_OF}", params)
            row = await cur.fetchone()
            assert row is not None  # every tier is seeded by ensure_schema
            tier, limit, used = str(row[0]), int(row[1]), int(row[2]) + int(row[3])
            if used + size > limit:
                raise StorageFull(tier, used, size, limit)
            await conn.execute("INSERT INTO limits_storage_holds (hold_id, user_id, bytes)"
                               " VALUES (%s, %s, %s)", (hold, user_id, size))
        return hold

    async def settle_storage(self, hold: str, asset_id: str) -> None:
        """The held upload is recorded as ``asset_id``: the hold counts until the catalogue
        lists that asset, then the catalogue's row counts instead."""
        async with self._pool.connection() as conn:
            await conn.execute("UPDATE limits_storage_holds SET asset_id = %s"
                               " WHERE hold_id = %s", (asset_id, hold))

    async def release_storage(self, hold: str) -> None:
        """End the hold of an upload that was refused or failed: it stores nothing."""
        async with self._pool.connection() as conn:
            await conn.execute("DELETE FROM limits_storage_holds WHERE hold_id = %s", (hold,))
