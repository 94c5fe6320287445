"""PostgreSQL connections that fail fast, and say so, while the server is gone.

psycopg_pool waits 30 s by default for a connection, and a request that needed the database
then ended in a 500 naming a driver class. While PostgreSQL is down (a supervisor restarts it
within seconds) a caller should learn that at once and in the studio's own terms: the pool
waits at most :data:`POOL_TIMEOUT_S`, and a failure to reach the server, or a connection lost
under a query, becomes an :class:`~core.errors.EventStoreError` (503 with ``Retry-After``).
Errors the server reports about a statement (a constraint, a lock timeout, a cancelled query)
are left as they are: they say nothing about the server being gone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from core.errors import EventStoreError

# Long enough for a busy pool to hand over a connection, short enough that a request to a
# studio whose database is down answers within the 2 s the operator's clients may wait.
POOL_TIMEOUT_S = 1.0
# libpq's own limit for one connection attempt (its minimum is 2 s): a server that accepts
# TCP but never answers does not hold a pool worker for long.
CONNECT_TIMEOUT_S = 2
# Server-side codes that mean the server is going away or not yet up: admin_shutdown,
# crash_shutdown, cannot_connect_now (starting, recovering). Class 08 is connection failures.
_GONE = frozenset({"57P01", "57P02", "57P03"})


def unreachable(error: BaseException | None) -> bool:
    """Whether ``error`` means "no working connection to PostgreSQL", not "a statement failed"."""
    if isinstance(error, PoolTimeout):
        return True
    if not isinstance(error, psycopg.OperationalError):
        return False
    state = error.sqlstate
    return state is None or state.startswith("08") or state in _GONE


def unavailable(error: BaseException) -> EventStoreError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return EventStoreError(f"PostgreSQL is unavailable ({reason})")


class DatabasePool(AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]]):
    """An autocommit connection pool whose lost-server errors are :class:`EventStoreError`."""

    def __init__(self, conninfo: str, *, min_size: int = 1, max_size: int = 10,
                 timeout: float = POOL_TIMEOUT_S) -> None:
        super().__init__(conninfo, min_size=min_size, max_size=max_size, open=False,
                         timeout=timeout,
                         kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S})

    @asynccontextmanager
    async def connection(self, timeout: float | None = None
                         ) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
        try:
            async with super().connection(timeout) as conn:
                yield conn
        except psycopg.Error as e:
            if unreachable(e):
                raise unavailable(e) from e
            raise

    async def getconn(self, timeout: float | None = None) -> psycopg.AsyncConnection[TupleRow]:
        try:
            return await super().getconn(timeout)
        except PoolTimeout as e:
            raise unavailable(e) from e
