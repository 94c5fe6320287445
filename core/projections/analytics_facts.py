"""What the analytics read models share: how an event's values become counters, and the base
that turns a whole batch of events into a few set-based statements.

Counters are whole numbers (durations in milliseconds), so sums do not depend on the order
events are added in: the live projection, which adds a batch at a time, and a rebuild, which
may cut the log into other batches, give equal tables.

A batch becomes: one ``unnest`` insert per table of rows (the jobs the rest joins on), one
update of the job rows it changes, one ``unnest`` upsert per counter table with every
increment of the batch summed per row, then the increments that need a job's row (a job's
end counts on the hour or day it was asked for), joined to it: a handful of statements
whatever the batch's length. Applied to one event alone (the runner's retry of a failing
batch) it is the same code, so a quarantined event is skipped exactly as a batch would have
skipped it.
"""

from __future__ import annotations

import inspect
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import singledispatchmethod
from numbers import Real
from typing import Any, ClassVar

from core.events.job import REUSE_ACTOR
from core.projections.readmodel import ReadModel, Statement

SYSTEM_ACTORS = frozenset({"", "server", REUSE_ACTOR, "worker"})
"""Actors that are the studio itself, not a user: their events count no user as active."""

MAX_KEY_LENGTH = 100  # a counter's key (a style, a route...) as stored: the log may hold longer


@dataclass(frozen=True)
class Count:
    """Add ``n`` to column ``column`` of the counter row ``scope`` (its key columns' values)."""

    table: str
    scope: tuple[Any, ...]
    column: str
    n: int


@dataclass(frozen=True)
class JobCount:
    """Add to ``column`` of the counter row of the job's own scope (its user and day, or its
    hour): ``n``, or, where ``at`` is given, the milliseconds from its request to ``at``."""

    job_id: Any
    column: str
    n: int = 1
    at: datetime | None = None


@dataclass(frozen=True)
class RowTable:
    """A table of rows that are only ever added (a job's request, a share): a batch's rows go
    in as one ``unnest`` insert; a row already there (or twice in the batch) is kept."""

    name: str
    columns: tuple[tuple[str, str], ...]

    def insert(self, rows: list[tuple[Any, ...]]) -> Statement:
        names = ", ".join(name for name, _ in self.columns)
        arrays = ", ".join(f"%(c{i})b::{kind}[]" for i, (_, kind) in enumerate(self.columns))
        params = {f"c{i}": [row[i] for row in rows] for i in range(len(self.columns))}
        return (f"INSERT INTO {self.name} ({names}) SELECT * FROM unnest({arrays})"
                " ON CONFLICT DO NOTHING", params)


@dataclass(frozen=True)
class Row:
    table: RowTable
    values: tuple[Any, ...]


@dataclass(frozen=True)
class JobUpdate:
    """Change a job's own row (``column``, by ``n``): run after the batch's rows are in."""

    job_id: Any
    column: str
    n: int = 1


Fact = Row | JobUpdate | Count | JobCount


@dataclass(frozen=True)
class CounterTable:
    """A table of counters: key columns with their SQL types, and bigint counter columns."""

    name: str
    keys: tuple[tuple[str, str], ...]
    columns: tuple[str, ...]

    def create_sql(self, *others: str) -> str:
        """The table, with ``others``: counters kept by statements of their own."""
        keys = ", ".join(f"{name} {kind} NOT NULL" for name, kind in self.keys)
        counters = ", ".join(f"{c} bigint NOT NULL DEFAULT 0" for c in self.columns + others)
        primary = ", ".join(name for name, _ in self.keys)
        return (f"CREATE TABLE IF NOT EXISTS {self.name} ({keys}, {counters},"
                f" PRIMARY KEY ({primary}))")

    def upsert(self, increments: Mapping[tuple[Any, ...], Counter[str]]) -> Statement:
        """One statement adding every row's increments (each row once: summed already)."""
        scopes = list(increments)
        params: dict[str, Any] = {}
        selects = []
        for index, (_, kind) in enumerate(self.keys):
            params[f"k{index}"] = [scope[index] for scope in scopes]
            selects.append(f"%(k{index})b::{kind}[]")
        for column in self.columns:
            params[column] = [increments[scope][column] for scope in scopes]
            selects.append(f"%({column})b::bigint[]")
        names = ", ".join([name for name, _ in self.keys] + list(self.columns))
        adds = ", ".join(f"{c} = {self.name}.{c} + EXCLUDED.{c}" for c in self.columns)
        primary = ", ".join(name for name, _ in self.keys)
        return (f"INSERT INTO {self.name} ({names}) SELECT * FROM unnest({', '.join(selects)})"
                f" ON CONFLICT ({primary}) DO UPDATE SET {adds}", params)


class CounterModel(ReadModel):
    """A read model of counters (see the module's docstring). Subclasses register
    :meth:`facts` per event class and say how a :class:`JobCount` finds its job."""

    counters: ClassVar[tuple[CounterTable, ...]]
    # SQL of the job-derived increments: %(ids)s, %(columns)s, %(ns)s, %(ats)s arrays as
    # m(job_id, col, n, at); joined to the job rows and summed into the counter table.
    job_counts_sql: ClassVar[str]
    # SQL of the changes to job rows (:class:`JobUpdate`): %(ids)s, %(columns)s, %(ns)s.
    job_updates_sql: ClassVar[str] = ""

    @singledispatchmethod
    def facts(self, event: Any, position: int) -> list[Fact]:
        return []

    @classmethod
    def handles(cls, event_class: type) -> bool:
        return _facts_of(cls, event_class) is not None

    def statements_of(self, event: Any, position: int) -> list[Statement]:
        return self.batch_statements([(position, event)])

    def batch_statements(self, events: list[tuple[int, Any]]) -> list[Statement]:
        rows: dict[RowTable, list[tuple[Any, ...]]] = {}
        updates: list[JobUpdate] = []
        increments: dict[str, dict[tuple[Any, ...], Counter[str]]] = {}
        job_counts: list[JobCount] = []
        for position, event in events:
            handler = _facts_of(type(self), type(event))
            if handler is None:
                continue
            for fact in handler(self, event, position):
                if isinstance(fact, Count):
                    table = increments.setdefault(fact.table, {})
                    table.setdefault(fact.scope, Counter())[fact.column] += fact.n
                elif isinstance(fact, JobCount):
                    job_counts.append(fact)
                elif isinstance(fact, Row):
                    rows.setdefault(fact.table, []).append(fact.values)
                else:
                    updates.append(fact)
        statements = [table.insert(added) for table, added in rows.items()]
        if updates:
            statements.append((self.job_updates_sql, {
                "ids": [u.job_id for u in updates], "columns": [u.column for u in updates],
                "ns": [u.n for u in updates]}))
        for counter in self.counters:
            if increments.get(counter.name):
                statements.append(counter.upsert(increments[counter.name]))
        if job_counts:
            statements.append((self.job_counts_sql, {
                "ids": [c.job_id for c in job_counts], "columns": [c.column for c in job_counts],
                "ns": [c.n for c in job_counts], "ats": [c.at for c in job_counts]}))
        return statements


_HANDLERS: dict[tuple[type, type], Callable[..., list[Fact]] | None] = {}


def _facts_of(model_class: type, event_class: type) -> Callable[..., list[Fact]] | None:
    """The function ``facts`` dispatches ``event_class`` to (None: the default, no facts),
    found once per class: ``singledispatchmethod`` builds a bound wrapper on every call."""
    key = (model_class, event_class)
    if key not in _HANDLERS:
        dispatcher = inspect.getattr_static(model_class, "facts").dispatcher
        found: Callable[..., list[Fact]] = dispatcher.dispatch(event_class)
        _HANDLERS[key] = None if found is dispatcher.dispatch(object) else found
    return _HANDLERS[key]


JOB_COUNTS_FROM = (
    " FROM unnest(%(ids)s::uuid[], %(columns)b::text[], %(ns)b::bigint[],"
    " %(ats)s::timestamptz[]) AS m(job_id, col, n, at) JOIN {jobs} j USING (job_id)")
"""The ``FROM`` of a model's ``job_counts_sql``: the increments with their job's row.
``m.at`` set means the job's request-to-``at`` milliseconds, not ``m.n``."""

ELAPSED_MS = "CASE WHEN m.at IS NULL THEN m.n ELSE greatest(0, (extract(epoch FROM m.at" \
             " - j.requested_at) * 1000)::bigint) END"


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> date:
    """The UTC day of ``moment`` (whatever zone the event's clock wrote it in)."""
    return moment.astimezone(UTC).date()


def is_user(actor: object) -> bool:
    return isinstance(actor, str) and actor not in SYSTEM_ACTORS


def key(value: object) -> str | None:
    """A counter key from a free-form value of an event: text as it is (cut to
    :data:`MAX_KEY_LENGTH`), a whole number as its digits; None for anything else."""
    if isinstance(value, str) and value:
        return value[:MAX_KEY_LENGTH]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)[:MAX_KEY_LENGTH]
    return None


def count(value: object, ceiling: int = 2**53) -> int | None:
    """A non-negative whole count from a report (None for anything else or out of range)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    if not math.isfinite(number) or not 0 <= number <= ceiling:
        return None
    return int(number)


def milliseconds(seconds: object) -> int | None:
    """Seconds as whole milliseconds (None where they are no finite, non-negative number of
    at most a year: a worker's or node's odd report must not turn a sum into nonsense)."""
    if isinstance(seconds, bool) or not isinstance(seconds, Real):
        return None
    try:
        number = float(seconds)
    except OverflowError:
        return None
    if not math.isfinite(number) or not 0 <= number <= 366 * 86400:
        return None
    return round(number * 1000)


def mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
