"""Job progress pings on core NATS (``progress.<job>``).

A ping says only "this job has new events"; whoever listens reads the job from the event
store, which stays the one source of truth. Lost pings therefore cost latency, never
correctness: listeners also re-read on a timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg


class JobProgress:
    def __init__(self, nc: NATS, namespace: str) -> None:
        self._nc = nc
        self._prefix = f"{namespace}." if namespace else ""

    def _subject(self, job_id: UUID) -> str:
        return f"{self._prefix}progress.{job_id}"

    async def announce(self, job_id: UUID) -> None:
        await self._nc.publish(self._subject(job_id), b"")

    @asynccontextmanager
    async def watch(self, job_id: UUID) -> AsyncIterator[asyncio.Event]:
        """An event set on every ping (the caller clears it after reading the job)."""
        pinged = asyncio.Event()

        async def on_ping(msg: Msg) -> None:
            pinged.set()

        subscription = await self._nc.subscribe(self._subject(job_id), cb=on_ping)
        try:
            yield pinged
        finally:
            await subscription.unsubscribe()
