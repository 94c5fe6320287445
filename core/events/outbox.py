"""The outbox dispatcher: the only path by which a command reaches NATS.

It follows the notification log (the library's LISTEN/NOTIFY subscription, gap-free and in
order) for ``Job.Requested`` events and publishes each to the command stream with
``Nats-Msg-Id`` set to the event's id (``<job id>/<version>``). Its position is a tracking row
written only after JetStream acknowledged the publish; after a crash it resumes from there and
re-publishes at most the last few commands, which the stream's duplicate window discards.

Fairness: commands pending together (a burst, or a backlog after NATS was away) are published
round-robin by requester (:func:`fair_order`), not in log order, so one user's twenty jobs do
not queue another user's one behind them all; the tracking row moves past a batch only once
all of it is in the stream (a crash mid-batch re-publishes the batch within seconds, inside
the duplicate window). Commands already in the stream stay in its order: the dispatcher does
not hold commands back while workers are busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from itertools import zip_longest
from typing import Any, cast

from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import ApplicationSubscription
from eventsourcing.utils import Environment
from nats.errors import Error as NatsError

from core.errors import MessagingError
from core.events.jetstream import CommandStream, connect, ensure_stream
from core.events.job import Job
from core.events.job_kinds import command_subject
from core.events.schema_lock import schema_lock
from core.events.studio import Studio, eventstore_env
from core.settings import Settings

log = logging.getLogger(__name__)

TRACKING_NAME = "outbox"
JOB_REQUESTED_TOPIC = "core.events.job:Job.Requested"
PUBLISH_TIMEOUT_S = 5.0
# Commands pending together are published round-robin by requester (fair_order): the
# dispatcher takes what the log reader hands over within GATHER_S of the first, up to BATCH.
GATHER_S = 0.02
BATCH = 256
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 5.0


def command_message(event: Job.Requested) -> tuple[str, dict[str, str], bytes]:
    """Subject (relative), headers and body of the command for one ``Job.Requested`` event."""
    event_id = f"{event.originator_id}/{event.originator_version}"
    body: dict[str, Any] = {
        "job_id": str(event.originator_id),
        "kind": event.kind,
        "project_id": event.project_id,
        "inputs": event.inputs,
        "params": event.params,
        "requested_by": event.actor,
        "requested_at": event.timestamp.isoformat(),
    }
    return command_subject(event.kind), {"Nats-Msg-Id": event_id}, json.dumps(body).encode()


Pending = tuple[Job.Requested, Tracking]


async def _gather(queue: asyncio.Queue[Pending | None],
                  first: Pending | None) -> list[Pending | None]:
    """The commands pending now: ``first``, and what the log reader hands over within
    :data:`GATHER_S` (a burst is read in well under that), up to :data:`BATCH`. A ``None``
    (the subscription ended) ends the batch."""
    batch: list[Pending | None] = [first]
    deadline = asyncio.get_running_loop().time() + GATHER_S
    while first is not None and len(batch) < BATCH:
        try:
            item = await asyncio.wait_for(queue.get(), max(0.0, deadline -
                                                           asyncio.get_running_loop().time()))
        except TimeoutError:
            break
        batch.append(item)
        if item is None:
            break
    return batch


def fair_order(batch: list[Pending | None]) -> list[Pending]:
    """The batch's commands round-robin by requester: each user's first, then each one's
    second, and so on (users in the order they first appear, each user's own in log order),
    so that one user's burst does not queue every other user's job behind it."""
    by_user: dict[str, list[Pending]] = {}
    for item in batch:
        if item is not None:
            by_user.setdefault(item[0].actor, []).append(item)
    ordered: list[Pending] = []
    for round_ in zip_longest(*by_user.values()):
        ordered += [item for item in round_ if item is not None]
    return ordered


class OutboxDispatcher:
    def __init__(self, settings: Settings) -> None:
        database_url, self._nats_url, _ = settings.require_services()
        self._stream = CommandStream.of(settings)
        env = eventstore_env(database_url)
        self._studio = Studio(env=env)
        factory = InfrastructureFactory.construct(env=Environment(TRACKING_NAME, env))
        with schema_lock(database_url):  # the tracking table may be created here
            self._tracking = cast(
                PostgresTrackingRecorder, factory.tracking_recorder(PostgresTrackingRecorder)
            )

    @property
    def position(self) -> int:
        return self._tracking.max_tracking_id(self._studio.name) or 0

    async def run(self, stop: asyncio.Event) -> None:
        """Publish commands until ``stop`` is set; while NATS is away, wait for it."""
        nc = await connect(self._nats_url, "orfeas-dispatcher")
        try:
            js = nc.jetstream()
            await ensure_stream(js, self._stream)
            queue: asyncio.Queue[Pending | None] = asyncio.Queue(BATCH)
            subscription = ApplicationSubscription(
                self._studio, gt=self.position, topics=[JOB_REQUESTED_TOPIC]
            )
            loop = asyncio.get_running_loop()
            reader = threading.Thread(
                target=self._follow_log, args=(subscription, queue, loop), daemon=True,
                name="outbox-follow",
            )
            reader.start()
            waiter = asyncio.create_task(stop.wait())
            try:
                while True:
                    getter = asyncio.create_task(queue.get())
                    done, _ = await asyncio.wait(
                        {getter, waiter}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getter not in done:
                        getter.cancel()
                        break
                    batch = await _gather(queue, getter.result())
                    ordered = fair_order(batch)
                    for event, _ in ordered:
                        await self._publish_until_done(js, stop, event)
                    if ordered:  # the whole batch is in the stream: move past its last event
                        last = max((tracking for _, tracking in ordered),
                                   key=lambda t: t.notification_id)
                        await asyncio.to_thread(self._tracking.insert_tracking, last)
                    if batch[-1] is None:
                        raise MessagingError("the event log subscription ended")
            finally:
                waiter.cancel()
                subscription.stop()
                await asyncio.to_thread(reader.join, 5)
        finally:
            await nc.close()

    async def _publish_until_done(self, js: Any, stop: asyncio.Event,
                                  event: Job.Requested) -> None:
        """Publish one command, retrying while NATS is away (restarted, reconnecting): the
        dispatcher carries on where it was instead of exiting and starting over. The retry
        carries the same ``Nats-Msg-Id``, so a publish that did land is not duplicated."""
        delay = RETRY_FIRST_S
        while True:
            try:
                await self._publish(js, event)
                return
            except MessagingError as e:
                if stop.is_set():
                    raise
                log.warning("outbox: %s; retrying in %gs", e, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(RETRY_MAX_S, delay * 2)
            try:  # a server that lost its data lost the stream too
                await ensure_stream(js, self._stream)
            except MessagingError as e:
                log.warning("outbox: %s", e)

    async def _publish(self, js: Any, event: Job.Requested) -> None:
        relative, headers, body = command_message(event)
        try:
            ack = await js.publish(self._stream.subject(relative), body, headers=headers,
                                   timeout=PUBLISH_TIMEOUT_S)
        except NatsError as e:
            raise MessagingError(f"publish {headers['Nats-Msg-Id']}: {e}") from e
        log.info("dispatched %s to %s (seq %s%s)", headers["Nats-Msg-Id"], relative, ack.seq,
                 ", duplicate" if ack.duplicate else "")

    @staticmethod
    def _follow_log(
        subscription: ApplicationSubscription[Any],
        queue: asyncio.Queue[tuple[Job.Requested, Tracking] | None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        try:
            for event, tracking in subscription:
                item = (cast(Job.Requested, event), tracking)
                asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()
        except Exception:
            log.exception("outbox: the event log subscription failed")
        finally:
            if not loop.is_closed():
                asyncio.run_coroutine_threadsafe(queue.put(None), loop)

    def close(self) -> None:
        self._studio.close()
        self._tracking.datastore.close()
