"""How the studio's aggregates come back from PostgreSQL where the library's defaults cost more
than they must.

A scene resumes from its latest compaction: ``Scene.Compacted`` holds the whole document, so a
load reads the creation event, that compaction and the updates after it, in one query, and never
the history before. Scenes therefore need no snapshot table: their compactions are their
snapshots, and a long-lived document is stored once per compaction rather than again in every
snapshot (a Yjs document keeps a tombstone per overwritten value, so it grows with its history).
Other aggregates use the library's snapshots.

Events are written as the library writes them, in one transaction that takes the table lock so
that notification order is commit order for readers, but as one statement (a function the
recorder creates with the tables) rather than two round trips, and as four binary arrays rather
than an array of composites in text form, whose per-row escaping of ``bytea`` cost more than
the rest of a batched append together.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from copy import deepcopy
from typing import Any, cast
from uuid import UUID

import psycopg
from eventsourcing.application import ProjectorFunction, Repository, project_aggregate
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    InterfaceError,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore, PostgresFactory
from eventsourcing.utils import Environment, EnvType, get_topic, retry
from psycopg import sql
from psycopg.rows import DictRow, tuple_row
from psycopg_pool import PoolTimeout

from core.database import CONNECT_TIMEOUT_S, unavailable, unreachable
from core.errors import EventStoreError
from core.events.scene import Scene

LATEST = 2**62  # a version past any aggregate's end
# Where every committed scene event is announced by the log itself (see ``_scene_notice``).
SCENE_CHANNEL = "studio_scene_events"
# Each of some scenes' latest version: what a listener that was away reads to catch up.
SCENE_HEADS = (
    "SELECT originator_id, max(originator_version) FROM studio_events"
    " WHERE originator_id = ANY(%s) GROUP BY originator_id"
)

# Time travel asks "the last version of this aggregate at or before position p"; this index
# answers it with one index probe instead of a scan of the aggregate.
POSITION_INDEX = (
    "CREATE INDEX IF NOT EXISTS studio_events_by_position"
    " ON studio_events (originator_id, notification_id)"
)
# A scene's latest compaction at or before a version, in one probe of a small index. The topic
# is written out (not a parameter) so that the planner can match the index's predicate.
COMPACTION_INDEX = sql.SQL(
    "CREATE INDEX IF NOT EXISTS studio_events_compactions"
    " ON studio_events (originator_id, originator_version) WHERE topic = {}"
).format(sql.Literal(get_topic(Scene.Compacted)))
RESUME_SCENE = sql.SQL(
    "SELECT originator_id, originator_version, topic, state FROM studio_events"
    " WHERE originator_id = %(id)s AND originator_version <= %(upto)s"
    " AND (originator_version = 1 OR originator_version >= coalesce(("
    "  SELECT originator_version FROM studio_events"
    "  WHERE originator_id = %(id)s AND originator_version <= %(upto)s AND topic = {}"
    "  ORDER BY originator_version DESC LIMIT 1), 1))"
    " ORDER BY originator_version"
).format(sql.Literal(get_topic(Scene.Compacted)))
# The events a scene cached at version ``after`` lacks, from the latest compaction among them
# where there is one: what came before it is in it.
SCENE_SINCE = sql.SQL(
    "SELECT originator_id, originator_version, topic, state FROM studio_events"
    " WHERE originator_id = %(id)s AND originator_version > %(after)s"
    " AND originator_version >= coalesce(("
    "  SELECT originator_version FROM studio_events"
    "  WHERE originator_id = %(id)s AND originator_version > %(after)s AND topic = {}"
    "  ORDER BY originator_version DESC LIMIT 1), 0)"
    " ORDER BY originator_version"
).format(sql.Literal(get_topic(Scene.Compacted)))


class StudioRepository(Repository[UUID]):
    """The library's repository, but scenes resume from their latest compaction."""

    def __init__(self, *args: Any, resume_scenes: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resume_scenes = resume_scenes

    def _reconstruct_aggregate(self, aggregate_id: UUID, version: int | None,
                               projector_func: ProjectorFunction[Any, Any]) -> Any:
        if (self.resume_scenes and projector_func is project_aggregate
                and Scene.may_be_scene_id(aggregate_id)):
            scene = self._resume_scene(aggregate_id, version)
            if scene is not None:
                return scene
        return super()._reconstruct_aggregate(aggregate_id, version, projector_func)

    def get(self, aggregate_id: UUID, *, version: int | None = None,
            projector_func: ProjectorFunction[Any, Any] = project_aggregate,
            fastforward_skipping: bool = False, deepcopy_from_cache: bool = True) -> Any:
        """As the library's, but a cached scene catches up from the latest compaction after
        it rather than through every update since: an API node whose copy is old (another
        node served the room meanwhile) otherwise replayed the whole gap, 2 s for 100,000
        updates, before a room could load."""
        if (version is None and self.cache is not None and self.fastforward
                and self.resume_scenes and projector_func is project_aggregate
                and Scene.may_be_scene_id(aggregate_id)):
            try:
                cached = self.cache.get(aggregate_id)
            except KeyError:
                cached = None
            if isinstance(cached, Scene):
                return self._fast_forward_scene(cached)
        return super().get(aggregate_id, version=version, projector_func=projector_func,
                           fastforward_skipping=fastforward_skipping,
                           deepcopy_from_cache=deepcopy_from_cache)

    def _fast_forward_scene(self, cached: Scene) -> Scene:
        """A copy of the cached scene brought up to date; the cache keeps the newer copy."""
        scene = deepcopy(cached)
        events = self._scene_events(SCENE_SINCE, {"id": scene.id, "after": scene.version})
        if events:
            if isinstance(events[0], Scene.Compacted):
                scene.version = events[0].originator_version - 1
            for event in events:
                event.mutate(scene)
            assert self.cache is not None
            try:
                current = self.cache.get(scene.id)
            except KeyError:
                current = None
            if not isinstance(current, Scene) or current.version < scene.version:
                self.cache.put(scene.id, deepcopy(scene))
        return scene

    def _resume_scene(self, scene_id: UUID, version: int | None) -> Scene | None:
        """The scene from its latest compaction at or before ``version``; None where the id
        names no scene, so that the library's path raises its usual errors."""
        upto = LATEST if version is None else version
        events = self._scene_events(RESUME_SCENE, {"id": scene_id, "upto": upto})
        if not events or not isinstance(events[0], Scene.Created):
            return None
        return Scene.resumed(events)

    def _scene_events(self, query: sql.Composed, params: dict[str, Any]
                      ) -> list[Aggregate.Event]:
        recorder: Any = self.event_store.recorder
        # One statement on an autocommit connection: one round trip, one consistent read.
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, params, prepare=True,
                         binary=True)  # bytea as is, not hex: half the bytes to send
            rows = curs.fetchall()
        mapper = self.event_store.mapper
        return cast(list[Aggregate.Event], [mapper.to_domain_event(StoredEvent(
            originator_id=row["originator_id"], originator_version=row["originator_version"],
            topic=row["topic"], state=bytes(row["state"]))) for row in rows])


class StudioRecorder(PostgresApplicationRecorder):
    """The library's recorder, with a save that is one statement: one round trip, one wake-up
    of the server and one of the caller."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        names = {"timeout": sql.Literal(f"{datastore.lock_timeout}s"),
                 "schema": sql.Identifier(datastore.schema),
                 "table": sql.Identifier(events_table_name),
                 "channel": sql.Identifier(self.channel_name)}
        many = sql.Identifier(datastore.schema, f"{events_table_name}_append")
        one = sql.Identifier(datastore.schema, f"{events_table_name}_append_one")
        # A batch goes as four arrays; a single event, a live room's usual save, goes as four
        # plain values: encoding the arrays and unnesting them cost it 0.1 ms of its ~1.1 ms
        # (20 ms apart, fsync on, on the 2-core machine of the issue-4 benchmark).
        self.sql_create_statements += [
            _append_function(many, "ids uuid[], versions int8[], topics text[], states bytea[]",
                             "SELECT * FROM unnest(ids, versions, topics, states)", names),
            _append_function(one, "id uuid, version int8, topic text, state bytea",
                             "VALUES (id, version, topic, state)", names),
            *_scene_notice(datastore.schema, events_table_name),
        ]
        self._append = sql.SQL(
            "SELECT * FROM {function}(%b::uuid[], %b::int8[], %b::text[], %b::bytea[])"
        ).format(function=many)
        self._append_one = sql.SQL(
            "SELECT * FROM {function}(%b::uuid, %b::int8, %b::text, %b::bytea)"
        ).format(function=one)

    def _statement(self, stored_events: Sequence[StoredEvent]
                   ) -> tuple[sql.Composed, Sequence[Any]]:
        if len(stored_events) == 1:
            e = stored_events[0]
            return self._append_one, (e.originator_id, e.originator_version, e.topic, e.state)
        return self._append, _columns(stored_events)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                      ) -> Sequence[int] | None:
        """Lock the table, notify and insert in one statement, its own transaction.

        The library sends the lock, the insert and the commit as separate statements, and
        commits in a second round trip, so the table lock, which every writer queues for, was
        held across round trips and whatever this process did in between (with writer
        threads sharing the GIL, that can be milliseconds); as a pipeline of statements it
        still woke the server once per packet. Here the lock lives only as long as the
        server's own work. Nothing is acknowledged before the commit has succeeded.
        """
        if not stored_events:
            return []
        with self.datastore.get_connection() as conn, \
                conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(*self._statement(stored_events), prepare=True)
            return [row[0] for row in curs.fetchall()]

    async def insert_events_on(self, conn: psycopg.AsyncConnection[Any],
                               stored_events: Sequence[StoredEvent]) -> list[int]:
        """:meth:`insert_events` on an asynchronous connection in autocommit mode, for
        writers that live on an event loop (scene rooms): no thread hand-off each way.

        Raises psycopg's errors as they are (``UniqueViolation`` when another writer took
        the version first), not the library's wrappers.
        """
        if not stored_events:
            return []
        async with conn.cursor(row_factory=tuple_row) as curs:
            await curs.execute(*self._statement(stored_events), prepare=True)
            return [row[0] for row in await curs.fetchall()]


def _append_function(function: sql.Identifier, parameters: str, rows: str,
                     names: dict[str, sql.Composable]) -> sql.Composed:
    """Lock the table, notify and insert, in the server's own work: the table lock, which
    every writer queues for, is never held across a round trip."""
    return sql.SQL(
        "CREATE OR REPLACE FUNCTION {function}(" + parameters + ")"
        " RETURNS SETOF int8 LANGUAGE plpgsql AS $body$"
        " BEGIN"
        "  SET LOCAL lock_timeout = {timeout};"
        "  LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE;"
        "  NOTIFY {channel};"
        "  RETURN QUERY INSERT INTO {schema}.{table}"
        "   (originator_id, originator_version, topic, state)"
        "   " + rows + " RETURNING notification_id;"
        " END $body$"
    ).format(function=function, **names)


def _scene_notice(schema: str, table: str) -> list[sql.Composed]:
    """A trigger that tells the listeners of :data:`SCENE_CHANNEL`, at commit, which scenes
    moved on and to what version (``<scene id>:<version>``, one notice per scene and insert).

    PostgreSQL delivers a notification only when its transaction commits, so every writer
    (a room, a route, a worker killed right after its commit) tells the API nodes with no
    code of its own and nothing a crash can skip; notifications stay within one database.
    """
    function = sql.Identifier(schema, f"{table}_scene_notice")
    scene_topics = get_topic(Scene) + "."  # every Scene event's topic starts so
    return [
        sql.SQL(
            "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $body$"
            " BEGIN"
            "  PERFORM pg_notify({channel}, originator_id::text || ':' || max(originator_version))"
            "   FROM inserted WHERE starts_with(topic, {topics}) GROUP BY originator_id;"
            "  RETURN NULL;"
            " END $body$"
        ).format(function=function, channel=sql.Literal(SCENE_CHANNEL),
                 topics=sql.Literal(scene_topics)),
        sql.SQL(
            "CREATE OR REPLACE TRIGGER {trigger} AFTER INSERT ON {table}"
            " REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        ).format(trigger=sql.Identifier(f"{table}_scene_notice"),
                 table=sql.Identifier(schema, table), function=function),
    ]


def parse_scene_notice(payload: str) -> tuple[UUID, int] | None:
    """The scene id and version of one :data:`SCENE_CHANNEL` notification (None for anything
    else on the channel)."""
    scene_id, _, version = payload.partition(":")
    try:
        return UUID(scene_id), int(version)
    except ValueError:
        return None


def _columns(stored_events: Sequence[StoredEvent]) -> tuple[list[Any], ...]:
    return (
        [e.originator_id for e in stored_events],
        [e.originator_version for e in stored_events],
        [e.topic for e in stored_events],
        [e.state for e in stored_events],
    )



class DatabaseUnreachable(PersistenceError, EventStoreError):
    """No connection to PostgreSQL within the pool's wait. Deliberately not one of the
    library's ``OperationalError``: its recorders retry those ten times, 0.2 s apart, each
    retry waiting for a connection again, which turned a down server into a 30 s hang. A
    broken connection is still retried (the next one from the pool may well work)."""


class StudioDatastore(PostgresDatastore):
    """The library's datastore, failing at once with :class:`DatabaseUnreachable` when the
    pool cannot hand out a connection."""

    @contextmanager
    def get_connection(self) -> Iterator[psycopg.Connection[DictRow]]:
        try:
            with super().get_connection() as conn:
                yield conn
        except OperationalError as e:
            if isinstance(e.__cause__, PoolTimeout):
                raise DatabaseUnreachable(str(unavailable(e.__cause__))) from e
            if unreachable(e.__cause__):
                # The server went away: every idle connection is as broken as this one, and
                # the library's retries would meet them one by one, 0.2 s apart. Dropped
                # here, the next retry waits for a new connection (or fails fast) instead.
                with suppress(psycopg.Error):  # a pool closed meanwhile: nothing to drop
                    self.pool.check()
            raise


class StudioFactory(PostgresFactory):
    """The library's PostgreSQL factory (``PERSISTENCE_MODULE`` names it) with a
    :class:`StudioDatastore` and a bounded connection attempt."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        # The library builds its datastore itself, with no hook for the class; this one only
        # overrides a method and adds no state, so the built instance is re-classed.
        self.datastore.__class__ = StudioDatastore
        kwargs = self.datastore.pool.kwargs
        assert isinstance(kwargs, dict)
        kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
