"""Create every table, stream and bucket once, before the processes that use them start.

Each part could create its own on first use, but several processes doing ``CREATE TABLE IF NOT
EXISTS`` at the same moment can collide in PostgreSQL's catalogue; one preparation step in the
supervisor (and in each stand-alone process, which is then the only one starting) avoids that.
"""

from __future__ import annotations

import asyncio

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.utils import Environment
from psycopg_pool import AsyncConnectionPool

from core.accounts import AccountStore
from core.events.blobs import BlobStore
from core.events.jetstream import CommandStream, connect, ensure_stream
from core.events.outbox import TRACKING_NAME
from core.events.schema_lock import schema_lock
from core.events.studio import Studio, eventstore_env
from core.projections.runner import ProjectionRunner
from core.settings import Settings


def prepare_database(database_url: str) -> None:
    env = eventstore_env(database_url)
    Studio(env=env).close()  # the event and snapshot tables
    ProjectionRunner(database_url).close()  # read-model tables and their positions
    factory = InfrastructureFactory.construct(env=Environment(TRACKING_NAME, env))
    with schema_lock(database_url):  # not around the two above: they take it themselves
        outbox = factory.tracking_recorder(PostgresTrackingRecorder)  # the outbox position
        outbox.datastore.close()  # type: ignore[attr-defined]
        asyncio.run(_prepare_accounts(database_url))


async def _prepare_accounts(database_url: str) -> None:
    async with AsyncConnectionPool(database_url, min_size=1, max_size=1, open=False,
                                   kwargs={"autocommit": True}) as pool:
        await AccountStore(pool).ensure_schema()


async def _prepare_stream(settings: Settings) -> None:
    assert settings.nats_url is not None
    nc = await connect(settings.nats_url, "orfeas-prepare")
    try:
        await ensure_stream(nc.jetstream(), CommandStream.of(settings))
    finally:
        await nc.drain()


def prepare(settings: Settings) -> None:
    database_url, _, s3 = settings.require_services()
    prepare_database(database_url)
    asyncio.run(_prepare_stream(settings))
    BlobStore(s3).ensure_bucket()
