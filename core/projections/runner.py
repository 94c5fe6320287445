"""Follows the event log and keeps every read model up to date, in batches, exactly once.

For each read model, one transaction per batch: take the model's advisory lock, read its
position, turn up to ``batch_size`` following events into SQL, run it, and move the position
— all or nothing. Because the writer serialises appends with a table lock, notification ids
become visible in order, so "every id after my position" never skips a concurrent write.

The advisory lock makes it safe to run several runners (for availability: one works, the others
wait) and lets ``rebuild`` drop and replay a model while a runner is live. Reading the position
inside the transaction, instead of keeping it in memory, is what lets a runner carry on
correctly after someone else moved it.
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Iterable, Sequence
from itertools import groupby
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from core.errors import NotFound
from core.events.scene import Scene
from core.events.schema_lock import schema_lock
from core.events.studio import Studio, eventstore_env
from core.projections.readmodel import ReadModel, Statement
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
        model.forget()
        return self.catch_up(names=[name])

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
        return [(n.id, self._studio.mapper.to_domain_event(n)) for n in notifications]

    def _step_one(self, model: ReadModel, batch: list[tuple[int, Any]]) -> int:
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
                statements: list[Statement] = []
                for notification_id, event in events:
                    statements.extend(model.statements(event, notification_id))
                self._execute([s for s in statements if s[0] not in model.appends])
                self._execute([s for s in statements if s[0] in model.appends])
                self._conn.execute(
                    sql.SQL("UPDATE {} SET position = %s WHERE name = %s").format(
                        sql.Identifier(TRACKING_TABLE)),
                    (events[-1][0], model.name),
                )
                return len(events)
        except BaseException:
            model.forget()  # its in-memory state may be ahead of the rolled-back tables
            raise

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
                cur.executemany(query, [params for _, params in group])  # type: ignore[arg-type]

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

