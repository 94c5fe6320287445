"""The loop every worker pool shares: pull a command, run it, record the outcome, then ack.

Guarantees, in order of importance:

- A command is acknowledged only after its outcome event (``Succeeded``/``Failed``) is committed.
  A worker killed mid-job never acks, so JetStream redelivers after ``ack_wait``; the job's state
  in the event store (not the message) decides what is left to do, so a redelivered command for
  a finished job is simply acked and produces no second result.
- While a handler runs, the message is kept alive with in-progress acks.
- A handler error that is the input's fault (:class:`~core.errors.DomainError`) fails the job at
  once; any other error is retried with back-off, and the last allowed delivery fails the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout

from core.errors import DomainError
from core.events.jetstream import (
    MAX_DELIVER,
    CommandStream,
    connect,
    consumer_config,
    ensure_stream,
)
from core.events.job import Job, JobFinished
from core.events.progress import JobProgress
from core.events.studio import Studio
from core.settings import Settings

log = logging.getLogger(__name__)

FETCH_RETRY_S = 0.5

Handler = Callable[[Job], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class WorkerIdentity:
    pool: str
    device: str

    @property
    def name(self) -> str:
        return f"{self.pool}@{socket.gethostname()}:{os.getpid()}"


class CommandConsumer:
    """Pulls from the pool's durable consumer and runs ``handler`` on each job."""

    def __init__(
        self,
        settings: Settings,
        identity: WorkerIdentity,
        filter_subject: str,
        handler: Handler,
        studio: Studio,
        retry_base_s: float = 2.0,
        on_success: Callable[[Job, dict[str, Any]], Awaitable[None]] | None = None,
    ) -> None:
        _, self._nats_url, _ = settings.require_services()
        self._retry_base_s = retry_base_s  # redelivery after base**attempt seconds
        self._stream = CommandStream.of(settings)
        self._identity = identity
        self._filter = filter_subject
        self._handler = handler
        self._studio = studio
        self._on_success = on_success  # e.g. tell the rooms that the job changed the scene

    async def run(self, stop: asyncio.Event) -> None:
        nc = await connect(self._nats_url, f"orfeas-{self._identity.pool}-worker")
        self._progress = JobProgress(nc, self._stream.namespace)
        try:
            js = self._js = nc.jetstream()
            await ensure_stream(js, self._stream)
            config = consumer_config(self._stream, self._identity.pool, self._filter)
            sub = await js.pull_subscribe(
                self._stream.subject(self._filter),
                durable=config.durable_name,
                stream=self._stream.name,
                config=config,
            )
            log.info("%s pulling %s", self._identity.name, config.filter_subject)
            while not stop.is_set():
                try:
                    messages = await sub.fetch(1, timeout=1.0)
                except NatsTimeout:
                    continue
                except NatsError as e:  # NATS restarting: the client reconnects on its own
                    log.warning("%s: fetch failed (%s); retrying", self._identity.name, e)
                    await asyncio.sleep(FETCH_RETRY_S)
                    continue
                for msg in messages:
                    await self._process(msg)
        finally:
            await nc.close()  # unacknowledged messages are redelivered to another worker

    async def _process(self, msg: Msg) -> None:
        try:
            job_id = UUID(json.loads(msg.data)["job_id"])
        except (ValueError, KeyError, TypeError):
            log.error("dropping a malformed command: %r", msg.data[:200])
            await msg.term()
            return
        try:
            job = await asyncio.to_thread(
                self._studio.start_job, job_id, self._identity.name, self._identity.device
            )
        except JobFinished:
            await msg.ack()  # redelivery of a job that already has its outcome
            return
        await self._progress.announce(job_id)
        heartbeat = asyncio.create_task(_keep_alive(msg, self._stream.ack_wait_s / 3))
        try:
            result = await self._handler(job)
        except JobFinished:
            await msg.ack()
        except DomainError as e:
            await self._fail(msg, job_id, str(e), retryable=False)
        except Exception as e:
            log.exception("job %s failed on delivery %s", job_id, msg.metadata.num_delivered)
            if msg.metadata.num_delivered >= MAX_DELIVER:
                await self._bury(msg, str(e))
                await self._fail(msg, job_id, f"gave up after {MAX_DELIVER} attempts: {e}",
                                 retryable=True)
            else:
                await msg.nak(delay=self._retry_base_s ** msg.metadata.num_delivered)
        else:
            try:
                await asyncio.to_thread(self._studio.succeed_job, job_id, result)
            except JobFinished:  # cancelled while running
                await msg.ack()
            except DomainError as e:  # the result itself was refused
                await self._fail(msg, job_id, str(e), retryable=False)
            else:
                await msg.ack()
                if self._on_success is not None:
                    try:
                        await self._on_success(job, result)
                    except Exception:  # the result is stored; only the notice is lost
                        log.exception("job %s: the after-success notice failed", job_id)
        finally:
            heartbeat.cancel()
            await self._progress.announce(job_id)

    async def _bury(self, msg: Msg, reason: str) -> None:
        """Keep the command that could not be run in the dead-letter stream."""
        relative = msg.subject.removeprefix(self._stream.subject(""))
        await self._js.publish(self._stream.subject(f"dead.{relative}"), msg.data, headers={
            "Orfeas-Reason": reason[:500], "Orfeas-Worker": self._identity.name,
            "Orfeas-Deliveries": str(msg.metadata.num_delivered)})

    async def _fail(self, msg: Msg, job_id: UUID, reason: str, retryable: bool) -> None:
        with contextlib.suppress(JobFinished):
            await asyncio.to_thread(
                self._studio.fail_job, job_id, reason, retryable, self._identity.name
            )
        await msg.ack()


async def _keep_alive(msg: Msg, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        await msg.in_progress()
