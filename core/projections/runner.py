"""Follows the event log and keeps every read model up to date, in batches, exactly once.

For each read model, one transaction per batch: take the model's advisory lock, read its
position, turn up to ``batch_size`` following events into SQL, run it, and move the position
— all or nothing. Because the writer serialises appends with a table lock, notification ids
become visible in order, so "every id after my position" never skips a concurrent write.

The advisory lock makes it safe to run several runners (for availability: one works, the others
wait) and lets ``rebuild`` drop and replay a model while a runner is live. Reading the position
inside the transaction, instead of keeping it in memory, is what lets a runner carry on
correctly after someone else moved it.

Nothing stops on one bad record: when a batch fails because of an event (its SQL is refused,
the model's code raises on it, or it cannot even be decoded), the batch is rolled back and
applied again one event at a time, each in a savepoint; an event that fails on its own is
quarantined for that model (core.projections.quarantine) in the transaction that moves the
model past it, and the other events, and the other models, carry on. Failures of the database
itself (a lost connection, a deadlock, a shutdown) are not the event's fault: they stop the
step as before, and the next step tries again.
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing import persistence
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
        models = build_read_models(self._scene_at)
        self.models = {name: models[name] for name in names}
        self._conn = psycopg.connect(database_url)
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
        """Process batches until ``stop`` is set, sleeping on LISTEN/NOTIFY when idle."""
        with psycopg.connect(self._url, autocommit=True) as listener:
            listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(EVENTS_TABLE)))
            while not stop.is_set():
                if self.step() == 0:
                    select.select([listener.fileno()], [], [], IDLE_WAIT_S)
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
        furthest behind; each model then takes the events past its own position.
        """
        chosen = [self.models[name] for name in (names or self.models)]
        positions = self._positions([m.name for m in chosen])
        batch = self._read(min(positions.values()) + 1)
        return sum(self._step_one(model, batch) for model in chosen)

    def _read(self, start: int) -> list[tuple[int, Any]]:
        notifications = self._studio.recorder.select_notifications(
            start=start, limit=self._batch_size)
        return [(n.id, self._decode(n)) for n in notifications]

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
        found = self._studio.recorder.select_notifications(start=position, limit=1)
        if not found or found[0].id != position:
            raise NotFound(f"no stored event at log position {position}")
        return self._decode(found[0])

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
        statements: list[Statement] = []
        for notification_id, event in events:
            if isinstance(event, Undecodable):
                if event.event_class is None or model.handles(event.event_class):
                    raise event.error
                continue
            statements.extend(model.statements(event, notification_id))
        self._execute([s for s in statements if s[0] not in model.appends])
        self._execute([s for s in statements if s[0] in model.appends])

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

    def _positions(self, names: list[str]) -> dict[str, int]:
        with self._conn.transaction():
            rows = self._conn.execute(
                sql.SQL("SELECT name, position FROM {} WHERE name = ANY(%s)").format(
                    sql.Identifier(TRACKING_TABLE)), (names,)).fetchall()
        found = {name: position for name, position in rows}
        return {name: found.get(name, 0) for name in names}

    def _execute(self, statements: list[Statement]) -> None:
        """Run in order; consecutive statements with the same SQL go as one pipelined batch."""
        with self._conn.cursor() as cur:
            for query, group in groupby(statements, key=lambda s: s[0]):
                cur.executemany(query,  # type: ignore[arg-type]
                                [storable(params) for _, params in group])

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

