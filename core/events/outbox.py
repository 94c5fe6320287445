"""The outbox dispatcher: the only path by which a command reaches NATS.

It follows the notification log (the library's LISTEN/NOTIFY subscription, gap-free and in
order) for ``Job.Requested`` events and publishes each to the command stream with
``Nats-Msg-Id`` set to the event's id (``<job id>/<version>``). Its position is a tracking row
written only after JetStream acknowledged the publish; after a crash it resumes from there and
re-publishes at most the last few commands, which the stream's duplicate window discards.

Fairness: the dispatcher, not the stream, is the queue. It publishes a command for a worker
pool only while that pool's consumer has fewer than :data:`LOOKAHEAD` commands not yet
delivered (busy workers leave them undelivered); the rest wait here, per requester, and are
published to the requester served longest ago (:class:`FairQueue`) as workers take what is in the
stream. So one user's burst of twenty jobs puts at most a few of them ahead of another user's
job that comes after it, however long the burst is, and also when it came while the workers
were busy or away. (Before a pool's first worker has made its consumer nobody takes commands,
so they are published as they come, still round-robin within what is pending together.)

The tracking row moves only past commands that are all in the stream: a command waiting here
keeps the position before it, so a crash re-publishes the commands published after it, which
the stream's duplicate window (ten minutes) drops, and a worker acks a command for a job that
already has its outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import ApplicationSubscription
from eventsourcing.utils import Environment
from nats.errors import Error as NatsError
from nats.js.api import ConsumerInfo

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
# The dispatcher takes what the log reader hands over within GATHER_S of the first, up to
# BATCH, before it publishes (a burst arrives together and is ordered fairly at once).
GATHER_S = 0.02
BATCH = 256
LOOKAHEAD = 2  # commands a pool's consumer may hold undelivered: workers never wait for one
POLL_S = 0.1  # while commands wait, how often the consumers are asked whether one has room
MAX_HELD = 10_000  # commands waiting here beyond which the log is read no further for now
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


class FairQueue:
    """Commands waiting to be published, in one queue per requester (each in log order),
    handed out to the user served longest ago (one never served first, then the order they
    came in): a user who comes while another's burst waits is next. A command whose pool
    has no room (``fits`` says no) stays where it is and the next user's turn comes."""

    def __init__(self) -> None:
        self._users: dict[str, deque[Pending]] = {}
        self._served: dict[str, int] = {}  # user -> the turn they were last served in
        self._turn = 0

    def __len__(self) -> int:
        return sum(len(q) for q in self._users.values())

    def add(self, item: Pending) -> None:
        self._users.setdefault(item[0].actor, deque()).append(item)

    def oldest(self) -> int | None:
        """The smallest log position waiting here (the tracking row stays below it)."""
        return min((item[1].notification_id for q in self._users.values() for item in q),
                   default=None)

    def take(self, fits: Callable[[str], bool]) -> Pending | None:
        for user in sorted(self._users, key=lambda u: self._served.get(u, -1)):
            queue = self._users[user]
            for n, item in enumerate(queue):
                if fits(_subject(item[0])):
                    del queue[n]
                    if not queue:
                        del self._users[user]
                    self._served[user] = self._turn
                    self._turn += 1
                    return item
        return None


def _subject(event: Job.Requested) -> str:
    return command_subject(event.kind)


def fair_order(batch: list[Pending | None]) -> list[Pending]:
    """The batch's commands in the order :class:`FairQueue` hands them out when every pool
    has room: each user's first, then each one's second, and so on."""
    queue = FairQueue()
    for item in batch:
        if item is not None:
            queue.add(item)
    return [item for item in iter(lambda: queue.take(lambda _: True), None)]


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one token, a final ``>`` one or more."""
    words, parts = pattern.split("."), subject.split(".")
    for n, word in enumerate(words):
        if word == ">":
            return len(parts) > n
        if n >= len(parts) or word not in ("*", parts[n]):
            return False
    return len(words) == len(parts)


class Room:
    """Which pools can take a command now: each consumer's undelivered commands against
    :data:`LOOKAHEAD`, counted up as this round publishes to it."""

    def __init__(self, consumers: list[ConsumerInfo], stream: CommandStream) -> None:
        self._stream = stream
        self._pending: list[tuple[list[str], int]] = []
        for info in consumers:
            config = info.config
            filters = config.filter_subjects or ([config.filter_subject]
                                                 if config.filter_subject else [">"])
            self._pending.append((filters, info.num_pending or 0))

    def _consumer(self, relative: str) -> int | None:
        subject = self._stream.subject(relative)
        return next((n for n, (filters, _) in enumerate(self._pending)
                     if any(subject_matches(f, subject) for f in filters)), None)

    def fits(self, relative: str) -> bool:
        n = self._consumer(relative)
        return n is None or self._pending[n][1] < LOOKAHEAD

    def took(self, relative: str) -> None:
        n = self._consumer(relative)
        if n is not None:
            filters, pending = self._pending[n]
            self._pending[n] = (filters, pending + 1)

async def _next(queue: asyncio.Queue[Pending | None], waiter: asyncio.Task[Any],
                timeout: float | None) -> list[Pending | None] | None:
    """What the log reader hands over next (:func:`_gather`): empty after ``timeout`` with
    nothing new, ``None`` once the dispatcher is asked to stop."""
    getter = asyncio.create_task(queue.get())
    done, _ = await asyncio.wait({getter, waiter}, timeout=timeout,
                                 return_when=asyncio.FIRST_COMPLETED)
    if waiter in done or getter not in done:
        getter.cancel()
        return None if waiter in done else []
    return await _gather(queue, getter.result())


async def _stopped(waiter: asyncio.Task[Any], timeout: float) -> bool:
    done, _ = await asyncio.wait({waiter}, timeout=timeout)
    return bool(done)


class OutboxDispatcher:
    def __init__(self, settings: Settings) -> None:
        database_url, self._nats_url, _ = settings.require_services()
        self._stream = CommandStream.of(settings)
        self._blind = False  # the consumers could not be read last time (said once)
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
            held = FairQueue()
            published: list[Tracking] = []
            try:
                while True:
                    if len(held) < MAX_HELD:
                        batch = await _next(queue, waiter, POLL_S if len(held) else None)
                    else:  # enough waits here: leave the rest in the log for now
                        batch = [] if not await _stopped(waiter, POLL_S) else None
                    if batch is None:
                        break
                    for item in batch:
                        if item is not None:
                            held.add(item)
                    if held:
                        await self._publish_what_fits(js, stop, held, published)
                    await self._advance(held, published)
                    if batch and batch[-1] is None:
                        raise MessagingError("the event log subscription ended")
            finally:
                waiter.cancel()
                subscription.stop()
                await asyncio.to_thread(reader.join, 5)
        finally:
            await nc.close()

    async def _publish_what_fits(self, js: Any, stop: asyncio.Event, held: FairQueue,
                                 published: list[Tracking]) -> None:
        """Publish waiting commands, fairly, while their pools have room."""
        try:
            room = Room(await js.consumers_info(self._stream.name), self._stream)
        except NatsError as e:  # NATS away: the commands wait, the next round asks again
            if not self._blind:
                log.warning("outbox: cannot read the consumers (%s); commands wait", e)
            self._blind = True
            with contextlib.suppress(MessagingError):  # a server that lost its data lost
                await ensure_stream(js, self._stream)  # the stream too
            return
        self._blind = False
        while (item := held.take(room.fits)) is not None:
            await self._publish_until_done(js, stop, item[0])
            room.took(_subject(item[0]))
            published.append(item[1])

    async def _advance(self, held: FairQueue, published: list[Tracking]) -> None:
        """Move the tracking row to the last published command below every waiting one."""
        floor = held.oldest()
        below = [t for t in published if floor is None or t.notification_id < floor]
        if below:
            last = max(below, key=lambda t: t.notification_id)
            await asyncio.to_thread(self._tracking.insert_tracking, last)
            published[:] = [t for t in published if t.notification_id > last.notification_id]

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
