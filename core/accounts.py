"""User accounts, passwords and tokens.

Accounts are not project history, so they live in plain tables rather than in the event log.
Passwords are hashed with Argon2id; API and session tokens are 256-bit random strings of which
only the SHA-256 is stored (a leaked table reveals no usable token, and a lookup stays a
primary-key probe, which a slow password hash would not allow).

Argon2 runs in an executor of its own with a bounded queue (:class:`PasswordHashing`), and wrong
passwords are throttled (:mod:`core.login_throttle`): on the shared default thread pool, 20
concurrent wrong sign-ins took ``GET /projects/{id}`` from 10 ms to 12.9 s and the API's memory
up by 385 MiB (6 workers x 64 MiB of Argon2 memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar
from uuid import UUID, uuid4

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from core.errors import Conflict, Forbidden, InvalidInput, NotFound, Overloaded, Unauthenticated
from core.limits import Limits
from core.login_throttle import SCHEMA as THROTTLE_SCHEMA
from core.login_throttle import LoginPolicy, LoginThrottle

TokenKind = Literal["api", "session"]
TOKEN_PREFIX = "orf_"  # noqa: S105 (a marker, not a secret)
SESSION_TTL = timedelta(days=14)
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MIN_PASSWORD = 8
_hasher = PasswordHasher()
# Verified against when the user does not exist, so both failures cost the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS accounts_users ("
    " id uuid PRIMARY KEY, username text NOT NULL UNIQUE, email text UNIQUE,"
    " password_hash text NOT NULL, is_admin boolean NOT NULL DEFAULT false,"
    " created_at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE IF NOT EXISTS accounts_tokens ("
    " token_hash bytea PRIMARY KEY,"
    " user_id uuid NOT NULL REFERENCES accounts_users (id) ON DELETE CASCADE,"
    " kind text NOT NULL CHECK (kind IN ('api', 'session')), name text NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now(), expires_at timestamptz,"
    " last_used_at timestamptz)",
    "CREATE INDEX IF NOT EXISTS accounts_tokens_user ON accounts_tokens (user_id)",
    # a disabled account signs in no more and its tokens stop working (kept, not deleted, so
    # that enabling it again gives back its API tokens and its name stays taken)
    "ALTER TABLE accounts_users ADD COLUMN IF NOT EXISTS disabled boolean NOT NULL DEFAULT false",
    *THROTTLE_SCHEMA,
)
# One Argon2 run takes ~160 ms of CPU on 4 lanes and 64 MiB here: one worker keeps a flood to
# one run at a time (64 MiB, and CPU left over for everything else), and 8 waiting sign-ins are
# about 1.3 s of queue. Past that a sign-in is answered 429 at once instead of queueing.
HASHING_WORKERS = 1
HASHING_QUEUE = 8
# Argon2's lanes run as threads of the worker, and on 2 cores they left the event loop a fifth
# of the CPU (GET /projects/{id} 14x slower under a flood that reached Argon2). At nice 10 a
# lane weighs a tenth of the event loop's thread, so the loop gets the CPU it asks for first.
HASHING_NICE = 10
# After each run the worker rests as long as the run took, so that Argon2 holds at most half of
# one core's time however hard sign-ins flood in: at nice 10 alone a flood of new names still
# made GET /projects/{id} 2.7x slower at p50 on 2 cores (its 64 MiB per run also evict the
# caches the API works in). The answer is sent before the rest; only the next run waits.
HASHING_REST_RATIO = 1.0
_T = TypeVar("_T")


class PasswordHashing:
    """Argon2 off the event loop in a bounded pool of its own, not the default pool that every
    ``asyncio.to_thread`` shares (where a flood of sign-ins starved all other work)."""

    def __init__(self, workers: int = HASHING_WORKERS, queue: int = HASHING_QUEUE) -> None:
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="argon2",
                                            initializer=_lower_priority)
        self._capacity = workers + queue
        self._pending = 0
        self._lock = threading.Lock()  # apps in several threads' loops share one pool

    def refuse_if_full(self) -> None:
        """Refuse before any other work for a sign-in that would find no room (a flood's
        attempts then cost no database query either)."""
        if self._pending >= self._capacity:
            raise Overloaded("too many sign-ins are being checked; try again in a second", 1)

    async def run(self, call: Callable[..., _T], *args: Any) -> _T:
        with self._lock:
            self.refuse_if_full()
            self._pending += 1
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[_T] = loop.create_future()

        def work() -> None:
            started = time.perf_counter()
            try:
                outcome: tuple[Any, BaseException | None] = (call(*args), None)
            except BaseException as e:  # handed to the caller, whatever it is
                outcome = (None, e)
            with contextlib.suppress(RuntimeError):  # the caller's loop has closed meanwhile
                loop.call_soon_threadsafe(_settle, answer, *outcome)
            time.sleep((time.perf_counter() - started) * HASHING_REST_RATIO)

        future = self._executor.submit(work)
        future.add_done_callback(self._release)  # also when cancelled: counts what still runs
        return await answer

    def _release(self, _: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1


def _settle(answer: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if answer.done():  # the caller went away (cancelled)
        return
    if error is None:
        answer.set_result(result)
    else:
        answer.set_exception(error)


def _lower_priority() -> None:
    """Lower this thread's priority, and that of the threads it starts (Linux keeps nice per
    thread, and a new thread inherits its creator's)."""
    if sys.platform == "linux":
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICE)


_hashing = PasswordHashing()


@dataclass(frozen=True)
class User:
    id: UUID
    username: str
    email: str | None
    is_admin: bool

    @property
    def key(self) -> str:
        """The id as events and role tables record it."""
        return str(self.id)

    def public(self) -> dict[str, Any]:
        return {"id": self.key, "username": self.username, "is_admin": self.is_admin}


def _token_hash(raw: str) -> bytes:
    return hashlib.sha256(raw.encode()).digest()


def _user(row: dict[str, Any]) -> User:
    return User(row["id"], row["username"], row["email"], row["is_admin"])


def check_credentials(username: Any, password: Any) -> tuple[str, str]:
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise InvalidInput(
            "a username is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if not isinstance(password, str) or len(password) < _MIN_PASSWORD:
        raise InvalidInput(f"a password has at least {_MIN_PASSWORD} characters")
    return username, password


class AccountStore:
    def __init__(self, pool: AsyncConnectionPool, policy: LoginPolicy | None = None) -> None:
        self._pool = pool
        self._throttle = LoginThrottle(pool, policy or LoginPolicy())

    async def ensure_schema(self) -> None:
        async with self._pool.connection() as conn:
            for statement in SCHEMA:
                await conn.execute(statement)  # type: ignore[arg-type]
        await Limits(self._pool).ensure_schema()  # the tiers' limits, seeded with defaults

    async def create_user(
        self, username: str, password: str, *, is_admin: bool = False, email: str | None = None
    ) -> User:
        username, password = check_credentials(username, password)
        password_hash = await _hashing.run(_hasher.hash, password)
        try:
            async with self._pool.connection() as conn:
                cur = conn.cursor(row_factory=dict_row)
                await cur.execute(
                    "INSERT INTO accounts_users (id, username, email, password_hash, is_admin)"
                    " VALUES (%s, %s, %s, %s, %s) RETURNING *",
                    (uuid4(), username, email, password_hash, is_admin),
                )
                row = await cur.fetchone()
        except psycopg.errors.UniqueViolation:
            raise Conflict(f"user {username!r} already exists") from None
        assert row is not None
        return _user(row)

    async def authenticate(self, username: Any, password: Any, address: str) -> User:
        """The user whose password this is; ``address`` is the client's, for the throttle."""
        if not isinstance(username, str) or not isinstance(password, str):
            raise InvalidInput('send JSON {"username": ..., "password": ...}')
        # what this node knows costs nothing, so a flood is refused before any query
        self._throttle.check_remembered(username, address)
        _hashing.refuse_if_full()
        await self._throttle.check(username, address)
        row = await self._one("SELECT * FROM accounts_users WHERE username = %s", username)
        stored = row["password_hash"] if row else _DUMMY_HASH
        try:
            await _hashing.run(_hasher.verify, stored, password)
        except (VerificationError, InvalidHashError):
            row = None
        if row is None:
            await self._throttle.record_failure(username, address)
            raise Unauthenticated("wrong username or password")
        await self._throttle.record_success(username)
        if row["disabled"]:  # said only to whoever knows the password
            raise Forbidden(f"the account {username!r} is disabled; ask an administrator")
        return _user(row)

    async def issue_token(
        self, user: User, kind: TokenKind, name: str, ttl: timedelta | None = None
    ) -> str:
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + ttl if ttl else None
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO accounts_tokens (token_hash, user_id, kind, name, expires_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (_token_hash(raw), user.id, kind, name, expires),
            )
        return raw

    async def user_for_token(self, raw: str) -> User | None:
        if not raw.startswith(TOKEN_PREFIX) or len(raw) > 128:
            return None
        row = await self._one(
            "UPDATE accounts_tokens t SET last_used_at = now() FROM accounts_users u"
            " WHERE t.token_hash = %s AND u.id = t.user_id AND NOT u.disabled"
            " AND (t.expires_at IS NULL OR t.expires_at > now())"
            " RETURNING u.*",
            _token_hash(raw),
        )
        return _user(row) if row else None

    async def revoke_token(self, raw: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "DELETE FROM accounts_tokens WHERE token_hash = %s", (_token_hash(raw),)
            )

    async def get(self, user_id: str) -> User:
        try:
            uid = UUID(user_id)
        except ValueError:
            raise NotFound(f"no user {user_id!r}") from None
        row = await self._one("SELECT * FROM accounts_users WHERE id = %s", uid)
        if row is None:
            raise NotFound(f"no user {user_id!r}")
        return _user(row)

    async def set_disabled(self, user: User, disabled: bool) -> None:
        async with self._pool.connection() as conn:
            await conn.execute("UPDATE accounts_users SET disabled = %s WHERE id = %s",
                               (disabled, user.id))

    async def find(self, name_or_email: str) -> User:
        row = await self._one(
            "SELECT * FROM accounts_users WHERE username = %s OR email = %s",
            name_or_email, name_or_email,
        )
        if row is None:
            raise NotFound(f"no user {name_or_email!r}")
        return _user(row)

    async def usernames(self, ids: list[str]) -> dict[str, str]:
        uuids = []
        for i in ids:
            try:
                uuids.append(UUID(i))
            except ValueError:
                continue
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, username FROM accounts_users WHERE id = ANY(%s)", (uuids,)
            )
            return {str(r[0]): r[1] for r in await cur.fetchall()}

    async def with_tiers(self) -> list[dict[str, Any]]:
        """Every user with their tier as the log says (free where it says nothing)."""
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT u.id, u.username, u.is_admin, u.disabled, u.created_at,"
                " coalesce(t.tier, 'free') AS tier FROM accounts_users u"
                " LEFT JOIN rm_user_tiers t ON t.user_id = u.id::text ORDER BY u.username")
            return [{"id": str(r["id"]), "username": r["username"], "is_admin": r["is_admin"],
                     "disabled": r["disabled"], "tier": r["tier"],
                     "created_at": r["created_at"].isoformat()}
                    for r in await cur.fetchall()]

    async def _one(self, sql: str, *params: Any) -> dict[str, Any] | None:
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(sql, params)  # type: ignore[arg-type]
            return await cur.fetchone()
