"""What the API process holds open while it runs, built and torn down by one lifespan."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from nats.aio.client import Client as NATS
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from api.activity import ActivityRecorder
from core.accounts import AccountStore
from core.collab.fanout import Fanout
from core.collab.rooms import SceneRooms
from core.collab.scene_log import SceneLogFollower
from core.database import DatabasePool
from core.events.blobs import BlobStore
from core.events.jetstream import connect
from core.events.progress import JobProgress
from core.events.studio import Studio
from core.login_throttle import LoginPolicy
from core.projections.queries import ReadModels
from core.settings import Settings
from core.upload_check import UploadChecker

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 512 * 1024 * 1024


@dataclass
class Resources:
    settings: Settings
    pool: AsyncConnectionPool
    studio: Studio
    blobs: BlobStore
    nats: NATS
    accounts: AccountStore
    read_models: ReadModels
    fanout: Fanout
    rooms: SceneRooms
    progress: JobProgress
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    upload_checker: UploadChecker = field(default_factory=UploadChecker)
    activity: ActivityRecorder | None = None  # usage facts for analytics (api.activity)

    @property
    def database_url(self) -> str:
        url = self.settings.database_url
        assert url is not None  # the lifespan refuses to start without one
        return url


def resources(conn: HTTPConnection) -> Resources:
    res: Resources = conn.app.state.resources
    return res


def _freeze_startup_objects() -> None:
    """Keep what start-up built (modules, route tables, connection pools: ~120k objects) out
    of every later garbage collection. A full collection walks all tracked objects, ~65 ms
    here, and stalls every live scene broadcast for as long; after the freeze it walks only
    what the running server made since."""
    gc.collect()
    gc.freeze()


def lifespan_for(settings: Settings):  # type: ignore[no-untyped-def]
    database_url, nats_url, s3 = settings.require_services()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = DatabasePool(database_url, min_size=1, max_size=10)
        await pool.open(wait=True, timeout=30)
        studio = await asyncio.to_thread(Studio.connect, database_url)
        blobs = BlobStore(s3)
        await asyncio.to_thread(blobs.ensure_bucket)
        nc = await connect(nats_url, "orfeas-api")
        accounts = AccountStore(pool, LoginPolicy.of(settings))
        await accounts.ensure_schema()
        fanout = Fanout(nc, settings.namespace, node=f"{socket.gethostname()}:{os.getpid()}")
        try:
            async with anyio.create_task_group() as rooms_tg, \
                    anyio.create_task_group() as log_tg:
                rooms = SceneRooms(studio, pool, fanout, rooms_tg)
                await log_tg.start(SceneLogFollower(database_url, rooms).run)
                recorder = ActivityRecorder(studio, fanout.node)
                await log_tg.start(recorder.run)
                app.state.resources = Resources(
                    settings, pool, studio, blobs, nc, accounts, ReadModels(pool), fanout, rooms,
                    JobProgress(nc, settings.namespace), activity=recorder,
                )
                _freeze_startup_objects()
                try:
                    yield
                finally:
                    log_tg.cancel_scope.cancel()  # the log follower, which never ends alone
                    rooms.stop_all()  # each room stores what it has pending, then ends
        finally:
            if not nc.is_closed:  # NATS may have given up reconnecting long before
                await nc.drain()
            studio.close()
            await pool.close()

    return lifespan
