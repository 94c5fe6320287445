"""What a read model is: tables, and the SQL each event turns into.

A read model never touches a connection itself. The runner asks it for the statements of a
whole batch of events and executes them with the batch's tracking position in one
transaction, which is what makes a read model exactly-once and cheap to catch up; dropping the
tables and the position rebuilds it from the log.
"""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any, ClassVar

Statement = tuple[str, dict[str, Any]]


class ReadModel:
    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]
    create_sql: ClassVar[tuple[str, ...]]
    # Statements that only add rows which no other statement of the model reads or changes
    # (history rows keyed by position): the runner may run them after the rest of the batch,
    # all in one go, instead of interleaved with it one event at a time.
    appends: ClassVar[frozenset[str]] = frozenset()

    @singledispatchmethod
    def statements(self, event: Any, position: int) -> list[Statement]:
        """The SQL for one event at log ``position``; events a model ignores give none."""
        return []

    def forget(self) -> None:
        """Drop any in-memory state (after a rolled-back batch or a rebuild)."""
