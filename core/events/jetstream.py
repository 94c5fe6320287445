"""The command stream on NATS JetStream, shared by the outbox dispatcher and the workers.

One work-queue stream holds every command; each worker pool has one durable pull consumer on a
non-overlapping subject filter, so a command is delivered to exactly one worker at a time and is
removed once acknowledged. The stream's duplicate window makes the dispatcher's publish
idempotent: a command re-published after a crash carries the same ``Nats-Msg-Id`` and is dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError

from core.errors import MessagingError
from core.settings import Settings

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_S = 600.0
MAX_DELIVER = 5
DEAD_LETTER_DAYS = 14
STREAM_NAME_IN_USE = 10058  # JetStream: same name, different configuration


@dataclass(frozen=True)
class CommandStream:
    """Names on the NATS server for one studio namespace (empty in production)."""

    namespace: str = ""
    replicas: int = 1
    ack_wait_s: float = 30.0

    @classmethod
    def of(cls, settings: Settings) -> CommandStream:
        return cls(settings.namespace, settings.nats_replicas, settings.job_ack_wait_s)

    @property
    def name(self) -> str:
        stem = self.namespace.upper().replace("-", "_")
        return f"{stem}_COMMANDS" if stem else "COMMANDS"

    @property
    def dead_letters(self) -> str:
        return f"{self.name}_DEAD"

    def subject(self, relative: str) -> str:
        return f"{self.namespace}.{relative}" if self.namespace else relative

    def durable(self, pool: str) -> str:
        return f"{self.namespace}_{pool}" if self.namespace else pool


async def connect(url: str, name: str) -> NATS:
    """A client that reconnects forever, also on its first connection: a server being
    restarted (``orfeas up`` brings a dead one back on the same port, with its JetStream
    data) is waited for, and subscriptions and pull consumers carry on once it is back.
    Publishes made meanwhile wait in the client's buffer; requests time out and are retried
    by their callers. Connection errors at start-up are translated."""
    nc = NATS()

    async def disconnected() -> None:
        if not nc.is_closed:  # not our own close()
            log.warning("%s: NATS connection lost; reconnecting to %s", name, url)

    async def reconnected() -> None:
        log.warning("%s: NATS reconnected to %s", name, url)

    try:
        await nc.connect(
            servers=url.split(","),
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,  # type: ignore[arg-type]  # a float works; the hint is int
            connect_timeout=2,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
        )
    except (NatsError, OSError) as e:
        raise MessagingError(f"NATS at {url} unreachable: {e}") from e
    return nc


async def ensure_stream(js: JetStreamContext, stream: CommandStream) -> None:
    """The command work queue, and beside it the dead letters: commands given up on after
    ``MAX_DELIVER`` attempts, kept (for ``DEAD_LETTER_DAYS``) for someone to inspect."""
    await _ensure(js, StreamConfig(
        name=stream.name,
        subjects=[stream.subject("cmd.>")],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_S,
        num_replicas=stream.replicas,
    ))
    await _ensure(js, StreamConfig(
        name=stream.dead_letters,
        subjects=[stream.subject("dead.>")],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=DEAD_LETTER_DAYS * 86400.0,
        num_replicas=stream.replicas,
    ))


async def _ensure(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.add_stream(config)  # idempotent when the stream exists with this config
    except BadRequestError as e:
        if e.err_code != STREAM_NAME_IN_USE:
            raise MessagingError(f"cannot create stream {config.name}: {e}") from e
        await js.update_stream(config)
    except NatsError as e:
        raise MessagingError(f"stream {config.name}: {e}") from e


def consumer_config(stream: CommandStream, pool: str, filter_subject: str) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=stream.durable(pool),
        filter_subject=stream.subject(filter_subject),
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=stream.ack_wait_s,
        max_deliver=MAX_DELIVER,
        max_ack_pending=64,
    )
