"""Follows the event log and keeps every read model up to date, in batches, exactly once.

One transaction per batch for all the read models: take each model's advisory lock and read
its position (one statement), read up to ``batch_size`` following events, turn them into each
model's SQL, run it and move the positions (one pipeline), commit — all or nothing, so
following a live scene costs a few round trips per step, not a transaction per model.
Because the writer serialises appends with a table lock, notification ids become visible in
order, so "every id after my position" never skips a concurrent write.

The advisory lock makes it safe to run several runners (for availability: one works, the others
wait) and lets ``rebuild`` drop and replay a model while a runner is live. Reading the position
inside the transaction, instead of keeping it in memory, is what lets a runner carry on
correctly after someone else moved it.

Nothing stops on one bad record: when a batch fails because of an event (its SQL is refused,
the model's code raises on it, or it cannot even be decoded), the batch is rolled back, each
model takes it again in a transaction of its own, and a model that fails again applies it one
event at a time, each in a savepoint; an event that fails on its own is
quarantined for that model (core.projections.quarantine) in the transaction that moves the
model past it, and the other events, and the other models, carry on. Failures of the database
itself (a lost connection, a deadlock, a shutdown) are not the event's fault: they stop the
step as before, and the next step tries again.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing import persistence
from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import resolve_topic
from psycopg import sql

from core.errors import NotFound
from core.events.scene import Scene
from core.events.schema_lock import schema_lock
from core.events.studio import Studio, eventstore_env
from core.projections import quarantine
from core.projections.quarantine import Quarantined, Undecodable
from core.projections.readmodel import ReadModel, Statement, storable
from core.projections.registry import (
    EVENTS_TABLE,
    READ_MODEL_NAMES,
    TRACKING_TABLE,
    build_read_models,
)

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
IDLE_WAIT_S = 1.0
FOLLOW_INTERVAL_S = 0.05  # a step's fixed cost, shared by the edits of 50 ms (lag goal: 1 s)
_ADVANCE = (
    f"UPDATE {TRACKING_TABLE} t SET position = m.position FROM unnest(%(names)s::text[],"
    " %(positions)s::bigint[]) AS m(name, position) WHERE t.name = m.name"
)
_LOCK_NAMESPACE = 0x0F_EA_5  # first key of pg_advisory_xact_lock(int, int)
# SQLSTATE classes of failures that are the database's, not an event's: connection lost (08),
# transaction state (25), no such database or schema (3D, 3F), deadlock or serialisation (40),
# out of resources (53), lock not available (55), shut down or cancelled (57), system and
# internal errors (58, XX). Program limits (54: a value nested too deep, say) are the event's.
_TRANSIENT_CLASSES = frozenset({"08", "25", "3D", "3F", "40", "53", "55", "57", "58", "XX"})
# And single states of a damaged schema (a table or column dropped by hand, a lost grant): every
# event would fail alike, so none is quarantined; the runner stops as for an outage.
_SCHEMA_STATES = frozenset({"42P01", "42703", "42501"})


@dataclass(frozen=True)
class RetryOutcome:
    """One quarantined event re-applied by :meth:`ProjectionRunner.retry`."""

    model: str
    position: int
    error: str | None  # None: applied and released from the quarantine
    later_events: int  # events of the same originator after it, applied without it


class ProjectionRunner:
    def __init__(self, database_url: str, *, batch_size: int = BATCH_SIZE,
                 names: Sequence[str] = READ_MODEL_NAMES) -> None:
        unknown = set(names) - set(READ_MODEL_NAMES)
        if unknown:
            raise NotFound(f"no read model named {', '.join(sorted(unknown))}; "
                           f"known: {', '.join(READ_MODEL_NAMES)}")
        self._url = database_url
        self._batch_size = batch_size
        self._studio = Studio(env=eventstore_env(database_url))
        recorder = self._studio.recorder
        assert isinstance(recorder, PostgresApplicationRecorder)
        self._select = sql.SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {}"
            " WHERE notification_id >= %s ORDER BY notification_id LIMIT %s").format(
                sql.Identifier(recorder.datastore.schema, recorder.events_table_name))
        models = build_read_models(self._scene_at)
        self.models = {name: models[name] for name in names}
        self._conn = psycopg.connect(database_url)
        # Read models are the log's derivatives: a commit the server loses in a crash (at most
        # its last few hundred milliseconds, never a torn one) loses its rows and its position
        # together, and the runner replays those events. So its commits do not wait for the
        # WAL's flush, which on a live scene was one fsync per edit.
        with self._conn.transaction():
            self._conn.execute("SET synchronous_commit TO off")
        with schema_lock(database_url):
            self.create_tables()

    def close(self) -> None:
        self._conn.close()
        self._studio.close()

    # -- set-up -----------------------------------------------------------------------------

    def create_tables(self) -> None:
        with self._conn.transaction():
            self._conn.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY,"
                        " position bigint NOT NULL)").format(sql.Identifier(TRACKING_TABLE))
            )
            for statement in quarantine.CREATE_SQL:
                self._conn.execute(statement)  # type: ignore[arg-type]
            for model in self.models.values():
                self._lock(model.name, wait=True)
                for statement in model.create_sql:
                    self._conn.execute(statement)  # type: ignore[arg-type]
                self._conn.execute(
                    sql.SQL("INSERT INTO {} (name, position) VALUES (%s, 0)"
                            " ON CONFLICT DO NOTHING").format(sql.Identifier(TRACKING_TABLE)),
                    (model.name,),
                )

    def rebuild(self, name: str) -> int:
        """Drop a model's tables and replay the whole log into it; returns the events replayed."""
        model = self.models.get(name)
        if model is None:
            raise NotFound(f"no read model named {name!r}")
        with self._conn.transaction():
            self._lock(name, wait=True)
            for table in model.tables:
                self._conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(table)))
            for statement in model.create_sql:
                self._conn.execute(statement)  # type: ignore[arg-type]
            self._conn.execute(
                sql.SQL("UPDATE {} SET position = 0 WHERE name = %s").format(
                    sql.Identifier(TRACKING_TABLE)), (name,))
            quarantine.clear(self._conn, name)  # the replay quarantines what still fails
        model.forget()
        return self.catch_up(names=[name])

    def retry(self, name: str) -> list[RetryOutcome]:
        """Apply a model's quarantined events again, oldest first, each on its own: those
        that now succeed leave the quarantine, the others stay with their new error.

        The model's position does not move: a retried event is applied after the events that
        followed it. That is right for statements that set a row from the event alone (the
        upserts of most models); where a later event of the same originator changed a row
        the quarantined one should have made first, ``later_events`` says so and a rebuild
        of the model is the answer.
        """
        model = self.models.get(name)
        if model is None:
            raise NotFound(f"no read model named {name!r}")
        outcomes: list[RetryOutcome] = []
        try:
            with self._conn.transaction():
                self._lock(name, wait=True)
                model.forget()
                for position in quarantine.positions(self._conn, name):
                    event = self._stored(position)
                    try:
                        with self._conn.transaction():
                            self._apply(model, [(position, event)])
                    except Exception as error:
                        self._reraise_if_no_event_is_to_blame(error)
                        model.forget()
                        quarantine.record(self._conn, name, position, event, error)
                        outcomes.append(RetryOutcome(name, position, quarantine.describe(error),
                                                     self._later_events(event, position)))
                    else:
                        quarantine.release(self._conn, name, position)
                        outcomes.append(RetryOutcome(name, position, None,
                                                     self._later_events(event, position)))
        finally:
            model.forget()  # its cached state follows the retried events, not the log
        return outcomes

    # -- following the log ----------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Process batches until ``stop`` is set, sleeping on LISTEN/NOTIFY when idle.

        A batch shorter than ``batch_size`` reached the head, so the runner goes back to the
        listener rather than asking again: a notification sent meanwhile waits in its socket
        and wakes the next ``select`` at once, so nothing committed is left behind. Steps
        following a live scene start at least ``FOLLOW_INTERVAL_S`` apart, so a burst of
        edits is taken in one step rather than one step per edit (the first edit after a
        quiet spell is taken at once).
        """
        with psycopg.connect(self._url, autocommit=True) as listener:
            listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(EVENTS_TABLE)))
            while not stop.is_set():
                started = time.monotonic()
                if self.step() < self._batch_size:
                    select.select([listener.fileno()], [], [], IDLE_WAIT_S)
                    stop.wait(started + FOLLOW_INTERVAL_S - time.monotonic())
                    for _ in listener.notifies(timeout=0):
                        pass  # drain: one wake-up covers every notification so far

    def catch_up(self, names: Iterable[str] | None = None) -> int:
        """Process until every named model has reached the log's head as it is now."""
        total = 0
        while (done := self.step(names)) > 0:
            total += done
        return total

    def step(self, names: Iterable[str] | None = None) -> int:
        """One batch for each model; returns how many events were processed in all.

        The batch is read and decoded once for all models, from the position of the one
        furthest behind; each model then takes the events past its own position. Every model
        takes it in one transaction (one lock statement, one position update, one commit:
        following a live scene costs a few round trips per event, not a transaction per
        model); when that fails because of an event, it is rolled back and every model takes
        the batch again in a transaction of its own, as :meth:`_step_one` does.
        """
        chosen = [self.models[name] for name in (names or self.models)]
        try:
            return self._step_together(chosen)
        except NotFound:
            for model in chosen:
                model.forget()
            raise  # a model without its tracking row: no event is to blame
        except Exception as error:
            for model in chosen:
                model.forget()  # its in-memory state may be ahead of the rolled-back tables
            self._reraise_if_no_event_is_to_blame(error)
            log.warning("read models %s failed on a batch together (%s); taking it one model"
                        " at a time", ", ".join(m.name for m in chosen),
                        quarantine.describe(error))
        except BaseException:
            for model in chosen:
                model.forget()
            raise
        with self._conn.transaction():
            tracked = self._tracked([m.name for m in chosen])
            batch = self._read(min(tracked.get(m.name, 0) for m in chosen) + 1)
        return sum(self._step_one(model, batch) for model in chosen)

    def _step_together(self, chosen: list[ReadModel]) -> int:
        with self._conn.transaction():
            positions = self._claim([m.name for m in chosen])
            if not positions:
                return 0  # other runners or rebuilds hold every one
            batch = self._read(min(positions.values()) + 1)
            moved: dict[str, int] = {}
            statements: list[Statement] = []
            done = 0
            for model in chosen:
                if model.name not in positions:
                    continue
                events = [(i, e) for i, e in batch if i > positions[model.name]]
                if events:
                    statements.extend(self._statements(model, events))
                    moved[model.name] = events[-1][0]
                    done += len(events)
            if moved:
                statements.append((_ADVANCE, {"names": list(moved),
                                              "positions": list(moved.values())}))
                self._execute(statements)
            return done

    def _claim(self, names: list[str]) -> dict[str, int]:
        """Take the advisory lock of each named model that no one else holds, and its
        position (locked for update), in one statement: the positions of those taken."""
        rows = self._conn.execute(
            sql.SQL("WITH mine AS MATERIALIZED (SELECT name FROM unnest(%s::text[]) AS n(name)"
                    " WHERE pg_try_advisory_xact_lock(%s, hashtext(name)))"
                    " SELECT t.name, t.position FROM {} t JOIN mine USING (name)"
                    " FOR UPDATE OF t").format(sql.Identifier(TRACKING_TABLE)),
            (names, _LOCK_NAMESPACE)).fetchall()
        positions: dict[str, int] = dict(rows)
        if len(positions) < len(names):  # held elsewhere, or no tracking row at all
            known = self._tracked(names)
            for name in names:
                if name not in known:
                    raise NotFound(f"read model {name!r} has no tracking row;"
                                   " run create_tables()")
        return positions

    def _read(self, start: int, limit: int | None = None) -> list[tuple[int, Any]]:
        """Up to ``batch_size`` stored events from log position ``start`` on, decoded. Read
        in the runner's transaction (always within one), on its own connection: a step's
        read costs one round trip, not a pooled connection's three."""
        rows = self._conn.execute(self._select, (start, limit or self._batch_size)).fetchall()
        return [(row[0], self._decode(Notification(
            id=row[0], originator_id=row[1], originator_version=row[2], topic=row[3],
            state=bytes(row[4])))) for row in rows]

    def _decode(self, notification: Any) -> Any:
        """The domain event, or an :class:`Undecodable` that the models which handle its
        class quarantine (one unreadable record must not stop the read of a batch)."""
        try:
            return self._studio.mapper.to_domain_event(notification)
        except Exception as error:
            try:
                event_class: type | None = resolve_topic(notification.topic)
            except Exception:
                event_class = None
            log.warning("stored event %s (%s) cannot be decoded: %s", notification.id,
                        notification.topic, error)
            return Undecodable(notification.topic, notification.originator_id,
                               notification.originator_version, error, event_class)

    def _stored(self, position: int) -> Any:
        found = self._read(position, limit=1)
        if not found or found[0][0] != position:
            raise NotFound(f"no stored event at log position {position}")
        return found[0][1]

    def _step_one(self, model: ReadModel, batch: list[tuple[int, Any]]) -> int:
        """Apply the model's events of ``batch`` in one transaction; where that fails because
        of an event, apply them again one by one and quarantine the ones that fail alone."""
        try:
            with self._conn.transaction():
                if not self._lock(model.name, wait=False):
                    return 0  # another runner or a rebuild holds it
                position = self._position(model.name)
                if not batch or batch[0][0] > position + 1:
                    batch = self._read(position + 1)  # moved back meanwhile (a rebuild)
                events = [(i, e) for i, e in batch if i > position]
                if not events:
                    return 0
                self._apply(model, events)
                self._advance(model.name, events[-1][0])
                return len(events)
        except Exception as error:
            model.forget()  # its in-memory state may be ahead of the rolled-back tables
            self._reraise_if_no_event_is_to_blame(error)
            log.warning("read model %s failed on a batch (%s); applying it event by event",
                        model.name, quarantine.describe(error))
        except BaseException:
            model.forget()
            raise
        return self._isolate(model, batch)

    def _isolate(self, model: ReadModel, batch: list[tuple[int, Any]]) -> int:
        """The batch again, each event in a savepoint: a failing event is quarantined in the
        transaction that moves the model past it, so it is skipped exactly once."""
        try:
            with self._conn.transaction():
                if not self._lock(model.name, wait=False):
                    return 0
                position = self._position(model.name)
                if not batch or batch[0][0] > position + 1:
                    batch = self._read(position + 1)
                events = [(i, e) for i, e in batch if i > position]
                if not events:
                    return 0
                for notification_id, event in events:
                    try:
                        with self._conn.transaction():
                            self._apply(model, [(notification_id, event)])
                    except Exception as error:
                        self._reraise_if_no_event_is_to_blame(error)
                        model.forget()  # it may have taken the event in before it failed
                        self._quarantined(quarantine.record(
                            self._conn, model.name, notification_id, event, error))
                self._advance(model.name, events[-1][0])
                return len(events)
        except BaseException:
            model.forget()
            raise

    def _apply(self, model: ReadModel, events: list[tuple[int, Any]]) -> None:
        self._execute(self._statements(model, events))

    @staticmethod
    def _statements(model: ReadModel, events: list[tuple[int, Any]]) -> list[Statement]:
        """The model's SQL for ``events`` (``ReadModel.batch_statements``); an undecodable
        event fails the batch for the models that handle its class."""
        decoded: list[tuple[int, Any]] = []
        for notification_id, event in events:
            if isinstance(event, Undecodable):
                if event.event_class is None or model.handles(event.event_class):
                    raise event.error
                continue
            decoded.append((notification_id, event))
        return model.batch_statements(decoded)

    def _advance(self, name: str, position: int) -> None:
        self._conn.execute(
            sql.SQL("UPDATE {} SET position = %s WHERE name = %s").format(
                sql.Identifier(TRACKING_TABLE)), (position, name))

    def _reraise_if_no_event_is_to_blame(self, error: Exception) -> None:
        """Re-raise a failure of the database, of the connection to it or of the schema: no
        event is to blame, so none is quarantined and the step is tried again later."""
        if self._conn.broken or isinstance(error, (psycopg.InterfaceError,
                                                   persistence.InterfaceError,
                                                   persistence.OperationalError)):
            raise error
        state = error.sqlstate if isinstance(error, psycopg.Error) else None
        if state is None:
            if isinstance(error, psycopg.OperationalError):
                raise error
        elif state[:2] in _TRANSIENT_CLASSES or state in _SCHEMA_STATES:
            raise error

    @staticmethod
    def _quarantined(entry: Quarantined) -> None:
        log.error("read model %s quarantined the event at position %s (%s): %s", entry.model,
                  entry.position, entry.topic, entry.error)

    def _later_events(self, event: Any, position: int) -> int:
        origin = getattr(event, "originator_id", None)
        if origin is None:
            return 0
        row = self._conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE originator_id = %s"
                    " AND notification_id > %s").format(sql.Identifier(EVENTS_TABLE)),
            (origin, position)).fetchone()
        return int(row[0]) if row else 0

    def _tracked(self, names: list[str]) -> dict[str, int]:
        """The positions of those of the models that have a tracking row."""
        return dict(self._conn.execute(
            sql.SQL("SELECT name, position FROM {} WHERE name = ANY(%s)").format(
                sql.Identifier(TRACKING_TABLE)), (names,)).fetchall())

    def _execute(self, statements: list[Statement]) -> None:
        """Run in order, pipelined: one round trip for all of them."""
        if not statements:
            return
        with self._conn.pipeline(), self._conn.cursor() as cur:
            for query, params in statements:
                cur.execute(query, storable(params))  # type: ignore[arg-type]

    def _position(self, name: str) -> int:
        row = self._conn.execute(
            sql.SQL("SELECT position FROM {} WHERE name = %s FOR UPDATE").format(
                sql.Identifier(TRACKING_TABLE)), (name,)).fetchone()
        if row is None:
            raise NotFound(f"read model {name!r} has no tracking row; run create_tables()")
        position: int = row[0]
        return position

    def _lock(self, name: str, *, wait: bool) -> bool:
        function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
        row = self._conn.execute(
            sql.SQL("SELECT {}(%s, hashtext(%s))").format(sql.Identifier(function)),
            (_LOCK_NAMESPACE, name)).fetchone()
        return wait or bool(row and row[0])

    def _scene_at(self, scene_id: UUID, version: int) -> tuple[str, bytes]:
        scene: Scene = self._studio.repository.get(scene_id, version=version)
        return scene.project_id, scene.state

