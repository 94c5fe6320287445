"""Sign-in throttling, shared by every API node through PostgreSQL.

Wrong passwords are counted per account and per client address, each in a row of
``accounts_login_failures``; a key with too many failures inside the window is blocked for a
while, and every further block of the same key (without a long quiet spell between) lasts twice
as long, up to a cap. A blocked attempt is refused before its password is hashed, so a flood
costs one indexed read per request, not an Argon2 run (160 ms of CPU and 64 MiB each here).

The per-account block is what stops a guesser who spreads over many addresses; it also lets
anyone delay a real user's sign-in. That is why its blocks are short and capped (at most
``max_block_s``, 15 minutes by default): an attacker can keep an account waiting, never lock it
for good, and an address that keeps failing is blocked on its own. A successful sign-in clears
the account's row.
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NoReturn

from psycopg_pool import AsyncConnectionPool

from core.errors import Throttled

if TYPE_CHECKING:
    from core.settings import Settings

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS accounts_login_failures ("
    " key text PRIMARY KEY, failures integer NOT NULL DEFAULT 0,"
    " window_start timestamptz NOT NULL DEFAULT now(), strikes integer NOT NULL DEFAULT 0,"
    " blocked_until timestamptz)",
)
# Rows are pruned every this many recorded failures (per process): a row quiet for a window
# plus the longest block behaves exactly like a missing one.
_PRUNE_EVERY = 256
# Blocks this node has seen, kept in memory so that a flood of blocked attempts costs no query
# at all (a block is never lifted early, so the copy cannot be wrong); at most this many.
_REMEMBERED_BLOCKS = 10_000


@dataclass(frozen=True)
class LoginPolicy:
    """How many wrong passwords a key may have per window, and how long blocks last."""

    account_failures: int = 5
    address_failures: int = 50
    window_s: float = 300.0
    max_block_s: float = 900.0

    @classmethod
    def of(cls, settings: Settings) -> LoginPolicy:
        return cls(settings.login_account_failures, settings.login_address_failures,
                   settings.login_window_s, settings.login_max_block_s)

    def block_s(self, strikes: int) -> float:
        """The n-th block in a row lasts a window, then twice that, and so on, up to the cap."""
        return min(self.window_s * 2.0 ** min(strikes - 1, 32), self.max_block_s)


@dataclass(frozen=True)
class FailureCount:
    """One key's row: failures in the current window and the blocks it has earned."""

    failures: int
    window_start: datetime
    strikes: int
    blocked_until: datetime | None

    def after_failure(self, now: datetime, limit: int, policy: LoginPolicy) -> FailureCount:
        strikes = self.strikes
        if self.blocked_until and (now - self.blocked_until).total_seconds() > policy.max_block_s:
            strikes = 0  # quiet for longer than the longest block since the last one: forgiven
        failures, start = self.failures, self.window_start
        if (now - start).total_seconds() >= policy.window_s:
            failures, start = 0, now
        failures += 1
        if failures < limit:
            return FailureCount(failures, start, strikes, self.blocked_until)
        strikes += 1
        return FailureCount(0, now, strikes, now + timedelta(seconds=policy.block_s(strikes)))


def account_key(username: str) -> str:
    return f"account:{username[:64]}"  # no username is longer; longer ones merge


def address_key(address: str) -> str:
    """An IPv4 address as it is; an IPv6 one by its /64, which one subscriber usually holds
    whole (counting single IPv6 addresses would give an attacker 2^64 fresh ones)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"address:{address[:64]}"  # a test client's or a Unix socket's name
    if ip.version == 6:
        return f"address:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"address:{ip}"


class LoginThrottle:
    """Reads and updates the failure rows; every node sees the same rows."""

    def __init__(self, pool: AsyncConnectionPool, policy: LoginPolicy) -> None:
        self._pool = pool
        self.policy = policy
        self._recorded = 0
        self._blocked: dict[str, float] = {}  # key -> time.monotonic() when its block ends

    def check_remembered(self, username: str, address: str) -> None:
        """Refuse (:class:`Throttled`) a key this node already knows to be blocked: no query."""
        now = time.monotonic()
        for key in (account_key(username), address_key(address)):
            if self._blocked.get(key, 0.0) > now:
                _refuse(key, self._blocked[key] - now)

    async def check(self, username: str, address: str) -> None:
        """Refuse (:class:`Throttled`) while the account or the address is blocked."""
        self.check_remembered(username, address)
        keys = [account_key(username), address_key(address)]
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT key, extract(epoch FROM blocked_until - now())"
                " FROM accounts_login_failures WHERE key = ANY(%s) AND blocked_until > now()",
                (keys,),
            )
            blocked = await cur.fetchall()
        if blocked:
            for key, seconds in blocked:
                self._remember(key, float(seconds))
            key, seconds = max(blocked, key=lambda row: row[1])
            _refuse(key, float(seconds))

    async def record_failure(self, username: str, address: str) -> None:
        keys = sorted([(account_key(username), self.policy.account_failures),
                       (address_key(address), self.policy.address_failures)])
        async with self._pool.connection() as conn, conn.transaction():
            for key, limit in keys:  # in key order, so two nodes never wait on each other
                await conn.execute(
                    "INSERT INTO accounts_login_failures (key) VALUES (%s)"
                    " ON CONFLICT (key) DO NOTHING", (key,))
                cur = await conn.execute(
                    "SELECT failures, window_start, strikes, blocked_until, now()"
                    " FROM accounts_login_failures WHERE key = %s FOR UPDATE", (key,))
                row = await cur.fetchone()
                assert row is not None  # inserted above, and only pruned when long quiet
                count = FailureCount(*row[:4]).after_failure(row[4], limit, self.policy)
                await conn.execute(
                    "UPDATE accounts_login_failures SET failures = %s, window_start = %s,"
                    " strikes = %s, blocked_until = %s WHERE key = %s",
                    (count.failures, count.window_start, count.strikes, count.blocked_until,
                     key))
                if count.blocked_until is not None and count.blocked_until > row[4]:
                    self._remember(key, (count.blocked_until - row[4]).total_seconds())
        self._recorded += 1
        if self._recorded % _PRUNE_EVERY == 0:
            await self._prune()

    def _remember(self, key: str, seconds: float) -> None:
        now = time.monotonic()
        if len(self._blocked) >= _REMEMBERED_BLOCKS:
            self._blocked = {k: end for k, end in self._blocked.items() if end > now}
        if len(self._blocked) < _REMEMBERED_BLOCKS:
            self._blocked[key] = now + seconds

    async def record_success(self, username: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute("DELETE FROM accounts_login_failures WHERE key = %s",
                               (account_key(username),))

    async def _prune(self) -> None:
        quiet = timedelta(seconds=self.policy.window_s + self.policy.max_block_s)
        async with self._pool.connection() as conn:
            await conn.execute(
                "DELETE FROM accounts_login_failures WHERE window_start < now() - %s"
                " AND coalesce(blocked_until, '-infinity') < now() - %s",
                (quiet, timedelta(seconds=self.policy.max_block_s)))


def _refuse(key: str, seconds: float) -> NoReturn:
    who = "this account" if key.startswith("account:") else "your address"
    wait = max(1, math.ceil(seconds))
    raise Throttled(f"too many failed sign-ins for {who}; try again in {wait} s", wait)
