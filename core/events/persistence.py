"""The Studio application's persistence: how it reaches PostgreSQL and how a command saves.

Everything here is plumbing the commands share and none of them decide: the eventsourcing
library's settings for one database URL, the transcodings of the studio's value objects, the
recorder and repository (scenes resume from their compactions, see :mod:`core.events.store`),
and load-apply-save with optimistic concurrency. A concurrent writer that saved the same
aggregate first makes the save fail on the aggregate version, so the command is retried on
fresh state a bounded number of times; the library's errors leave here as the studio's own
(:class:`~core.errors.NotFound`, :class:`~core.errors.EventStoreError`,
:class:`~core.errors.Conflict`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from copy import deepcopy
from dataclasses import asdict
from typing import Any, Self, TypeVar, cast
from uuid import UUID

import psycopg
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    PersistenceError,
    Transcoding,
)
from eventsourcing.utils import strtobool
from psycopg.conninfo import conninfo_to_dict
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from core.errors import ConfigurationError, Conflict, EventStoreError, NotFound
from core.events.assistant import Exchange
from core.events.job import Job
from core.events.project import Asset, Project, Version
from core.events.scene import Scene
from core.events.schema_lock import conninfo_of, schema_lock
from core.events.store import (
    COMPACTION_INDEX,
    POSITION_INDEX,
    StudioRecorder,
    StudioRepository,
)

A = TypeVar("A", Project, Job, Scene, Exchange)


class VersionClash(Exception):
    """Another writer saved the aggregate between our load and our save."""


def eventstore_env(database_url: str, **extra: str) -> dict[str, str]:
    """The eventsourcing library's PostgreSQL settings for one database URL."""
    try:  # libpq's own parser: a host may also come as ``?host=/socket/folder``
        parts = conninfo_to_dict(database_url)
    except psycopg.ProgrammingError as e:
        reason = str(e).strip()
        raise ConfigurationError(f"not a PostgreSQL URL: {database_url!r} ({reason})") from None
    if not database_url.startswith(("postgresql://", "postgres://")) or not parts.get("host"):
        raise ConfigurationError(f"not a PostgreSQL URL: {database_url!r}")
    env = {
        # The library's PostgreSQL persistence, failing fast while the server is down.
        "PERSISTENCE_MODULE": "core.events.store:StudioFactory",
        "POSTGRES_DBNAME": str(parts.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(parts["host"]),
        "POSTGRES_PORT": str(parts.get("port") or 5432),
        "POSTGRES_USER": str(parts.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(parts.get("password") or ""),
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_MAX_OVERFLOW": "4",
        # Seconds to wait for a pooled connection (the library's default is 30): a request
        # that needs a database that is down answers 503 within the 2 s its client may wait.
        "POSTGRES_CONNECT_TIMEOUT": "1",
        "IS_SNAPSHOTTING_ENABLED": "y",
        # Aggregates stay in memory and are fast-forwarded with newer events on each load
        # (one query instead of snapshot plus tail); commands get deep copies, so a refused
        # command never corrupts the cache.
        "AGGREGATE_CACHE_MAXSIZE": "500",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
    }
    return env | extra


class BytesAsBase64(Transcoding):
    type = bytes
    name = "b64"

    def encode(self, obj: bytes) -> str:
        return base64.b64encode(obj).decode()

    def decode(self, data: str) -> bytes:
        return base64.b64decode(data)


class AssetAsDict(Transcoding):
    type = Asset
    name = "orfeas_asset"

    def encode(self, obj: Asset) -> dict[str, Any]:
        return asdict(obj)

    def decode(self, data: dict[str, Any]) -> Asset:
        return Asset(**data)


class VersionAsDict(Transcoding):
    type = Version
    name = "orfeas_version"

    def encode(self, obj: Version) -> dict[str, Any]:
        return asdict(obj)

    def decode(self, data: dict[str, Any]) -> Version:
        return Version(**data)


class StudioStore(Application[UUID]):
    """The Studio application's event store: settings, recorder, repository, and the load and
    save every command goes through. :class:`core.events.studio.Studio` is the class to use."""

    # Scenes are absent: their compactions are their snapshots (see core.events.store).
    snapshotting_intervals = {Project: 50, Job: 20}  # type: ignore[dict-item]
    resume_scenes = True  # False replays scenes from version 1 (the benchmark's peer does)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        for transcoding in (BytesAsBase64(), AssetAsDict(), VersionAsDict()):
            transcoder.register(transcoding)

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        if env is None or "POSTGRES_DBNAME" not in env:
            raise ConfigurationError("Studio needs eventstore_env(database_url)")
        with schema_lock(conninfo_of(env)):  # the library creates its tables and functions here
            super().__init__(env)
            self._create_indexes()

    @classmethod
    def connect(cls, database_url: str) -> Self:
        return cls(env=eventstore_env(database_url))

    def construct_recorder(self) -> StudioRecorder:
        factory: Any = self.factory  # a PostgresFactory: __init__ insists on POSTGRES_* settings
        table = f"{self.name.lower()}_events"
        recorder = StudioRecorder(factory.datastore, events_table_name=table)
        if factory.env_create_table():
            recorder.create_table()
        return recorder

    def construct_repository(self) -> StudioRepository:
        """The library's repository as its settings describe it, with scenes resuming from
        their compactions."""
        maxsize = self.env.get(self.AGGREGATE_CACHE_MAXSIZE)
        return StudioRepository(
            self.events, snapshot_store=self.snapshots,
            cache_maxsize=int(maxsize) if maxsize else None,
            fastforward=strtobool(self.env.get(self.AGGREGATE_CACHE_FASTFORWARD, "y")),
            fastforward_skipping=strtobool(
                self.env.get(self.AGGREGATE_CACHE_FASTFORWARD_SKIPPING, "n")),
            deepcopy_from_cache=strtobool(self.env.get(self.DEEPCOPY_FROM_AGGREGATE_CACHE, "y")),
            resume_scenes=self.resume_scenes)

    def _create_indexes(self) -> None:
        datastore = self.recorder.datastore  # type: ignore[attr-defined]
        with datastore.transaction(commit=True) as curs:
            curs.execute(POSITION_INDEX)
            curs.execute(COMPACTION_INDEX)

    # -- plumbing ---------------------------------------------------------------------------

    def max_position(self) -> int:
        """The newest notification id in the log (0 when empty)."""
        return self.recorder.max_notification_id() or 0

    def _command(self, aggregate_id: UUID, cls: type[A], apply: Callable[[A], None]) -> int:
        @retrying
        def attempt() -> int:
            aggregate = self._load(aggregate_id, cls)
            apply(aggregate)
            return self._save(aggregate)

        return attempt()

    def _load(self, aggregate_id: UUID, cls: type[A], version: int | None = None) -> A:
        try:
            aggregate: object = self.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            raise NotFound(f"{cls.__name__.lower()} {aggregate_id} not found") from None
        except PersistenceError as e:
            raise EventStoreError(f"could not load {aggregate_id}: {e}") from e
        if not isinstance(aggregate, cls):
            raise NotFound(f"{cls.__name__.lower()} {aggregate_id} not found")
        return aggregate

    def _load_version(self, aggregate_id: UUID, cls: type[A], version: int) -> A:
        """The aggregate at ``version``: the cached one where it is exactly there (an
        aggregate at a version is the same whenever it is read), else from the store."""
        cache = self.repository.cache
        try:
            cached = cache.get(aggregate_id) if cache is not None else None
        except KeyError:
            cached = None
        if isinstance(cached, cls) and cached.version == version:
            return cast(A, deepcopy(cached))
        return self._load(aggregate_id, cls, version=version)

    def _cached(self, aggregate_id: UUID, cls: type[A]) -> A:
        """A copy of the cached aggregate as its last save here left it, without asking the
        database for newer events; loaded as usual when nothing is cached."""
        cache = self.repository.cache
        try:
            cached = cache.get(aggregate_id) if cache is not None else None
        except KeyError:
            cached = None
        if not isinstance(cached, cls):
            return self._load(aggregate_id, cls)
        return deepcopy(cached)

    def _save(self, *aggregates: Project | Job | Scene | Exchange) -> int:
        """Save pending events in one transaction; returns the last one's position (0 if none).

        The saved aggregates then replace older cached copies, so the next command on them
        starts from what was just written instead of reading it back.
        """
        try:
            recordings = self.save(*aggregates)  # type: ignore[arg-type]
        except IntegrityError as e:
            raise VersionClash(str(e)) from e
        except PersistenceError as e:
            raise EventStoreError(f"could not save {[a.id for a in aggregates]}: {e}") from e
        self._remember(aggregates)
        last = recordings[-1].notification.id if recordings else None
        return last or 0

    def _remember(self, aggregates: Sequence[Project | Job | Scene | Exchange]) -> None:
        """Cache copies of saved aggregates that are newer than the cached ones.

        Copies, because loads fast-forward the cached object in place, which the command that
        saved it must not see; and an older copy left by a racing writer is only fast-forwarded
        on the next load, so the cache never holds anything but stored states."""
        cache = self.repository.cache
        if cache is None:
            return
        for aggregate in aggregates:
            try:
                cached = cache.get(aggregate.id)
            except KeyError:
                cached = None
            if cached is None or cached.version < aggregate.version:
                cache.put(aggregate.id, deepcopy(aggregate))

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Snapshot the saved aggregates as they are in memory, where the library would read
        them back from the store first: they are exactly the state their last event left."""
        if self.snapshots is None:
            return
        for aggregate in processing_event.aggregates.values():
            interval = self.snapshotting_intervals.get(type(aggregate))
            if interval is None:
                continue
            saved = [e.originator_version for e in processing_event.events
                     if e.originator_id == aggregate.id]
            if saved and any(v % interval == 0 for v in saved):
                snapshot_class = getattr(type(aggregate), "Snapshot", None) or Snapshot
                self.snapshots.put([snapshot_class.take(aggregate)])


def retrying(command: Callable[[], int]) -> Callable[[], int]:
    """Retry a load-apply-save command on fresh state when another writer saved first."""
    with_retries = retry(
        retry=retry_if_exception_type(VersionClash),
        stop=stop_after_attempt(8),
        wait=wait_random_exponential(multiplier=0.005, max=0.2),
        reraise=True,
    )(command)

    def run() -> int:
        try:
            return with_retries()
        except VersionClash:
            raise Conflict("the project is changing too fast; retry") from None

    return run


def distinct(aggregates: Sequence[Project | Job | Scene]) -> list[Project | Job | Scene]:
    """Each aggregate once, in first-seen order (several joiners may share a project)."""
    return list({aggregate.id: aggregate for aggregate in aggregates}.values())

