"""A read model is a set of PostgreSQL tables plus a tracking row, written in one transaction.

Each view extends the library's tracking recorder: its handlers return SQL statements, and
:meth:`ReadModelView.apply` runs them together with the tracking insert, so an event changes a
read model exactly once even when the runner is killed between two events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg.sql import SQL, Composable, Composed, Identifier

Statement = tuple[str, dict[str, Any]]


class ReadModelView(PostgresTrackingRecorder):
    """Tables named in :attr:`tables` are created from :attr:`create_sql` and dropped on rebuild."""

    tables: tuple[str, ...] = ()
    create_sql: tuple[str, ...] = ()

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.sql_create_statements.extend(Composed([SQL(s)]) for s in self.create_sql)

    def apply(self, tracking: Tracking, statements: Sequence[Statement]) -> None:
        with self.datastore.transaction(commit=True) as curs:
            for sql, params in statements:
                curs.execute(SQL(sql), params)  # type: ignore[arg-type]
            self._insert_tracking(curs, tracking)

    def drop(self) -> None:
        """Drop the read-model tables and forget the position, so the next run replays all."""
        with self.datastore.transaction(commit=True) as curs:
            for table in self.tables:
                curs.execute(SQL("DROP TABLE IF EXISTS {} CASCADE").format(Identifier(table)))
            curs.execute(
                SQL("DELETE FROM {}").format(Identifier(self.tracking_table_name)),
            )

    def position(self, application_name: str) -> int:
        return self.max_tracking_id(application_name) or 0


def tracking_table_query(table: str) -> Composable:
    return SQL("SELECT notification_id FROM {} WHERE application_name = %s").format(
        Identifier(table)
    )
