"""One lock for every process that creates tables, functions or indexes at start-up.

``CREATE ... IF NOT EXISTS`` and ``CREATE OR REPLACE FUNCTION`` are not safe to run at the
same moment from several sessions (PostgreSQL answers "tuple concurrently updated" or a unique
violation in its catalogue), and an API node, the workers and the projection runner all start
together. A session-level advisory lock makes them take turns; it costs one short connection
per process start.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import make_conninfo

SCHEMA_LOCK = 0x0F_EA_55


@contextmanager
def schema_lock(conninfo: str) -> Iterator[None]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))


def conninfo_of(env: Mapping[str, str]) -> str:
    """The connection string of an eventsourcing ``POSTGRES_*`` environment."""
    return make_conninfo(
        dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"], password=env.get("POSTGRES_PASSWORD") or None,
    )
