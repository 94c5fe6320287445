"""What a read model is: tables, and the SQL each event turns into.

A read model never touches a connection itself. The runner asks it for the statements of a
whole batch of events and executes them with the batch's tracking position in one
transaction, which is what makes a read model exactly-once and cheap to catch up; dropping the
tables and the position rebuilds it from the log.

Every event ever stored must be accepted, old bad data included, so the parameters of every
statement pass through :func:`storable` on their way to PostgreSQL: the one place that makes
values the log may hold but the database refuses (NaN and infinities in JSON, NUL in text)
storable.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable
from datetime import date, datetime
from functools import singledispatchmethod
from typing import Any, ClassVar
from uuid import UUID

from psycopg.types.json import Jsonb

Statement = tuple[str, dict[str, Any]]

_REPLACEMENT = "\ufffd"  # what a NUL becomes: PostgreSQL text and jsonb cannot hold U+0000


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

    def statements_of(self, event: Any, position: int) -> list[Statement]:
        """:meth:`statements`, dispatched once per event class: ``singledispatchmethod``
        builds a bound wrapper on every call, which replaying the log pays per event and
        model; the models that ignore the event's class are not called at all."""
        handler = _handler(type(self), type(event))
        return [] if handler is None else handler(self, event, position)

    def batch_statements(self, events: list[tuple[int, Any]]) -> list[Statement]:
        """The SQL for a batch of decoded ``(position, event)``, in log order: each event's
        statements, the model's appends last. A model may merge a batch into fewer statements
        (the analytics counters do: see core.projections.analytics_facts)."""
        statements: list[Statement] = []
        for position, event in events:
            statements.extend(self.statements_of(event, position))
        if not self.appends:
            return statements
        return ([s for s in statements if s[0] not in self.appends]
                + [s for s in statements if s[0] in self.appends])

    def forget(self) -> None:
        """Drop any in-memory state (after a rolled-back batch or a rebuild)."""

    @classmethod
    def handles(cls, event_class: type) -> bool:
        """Whether events of ``event_class`` give this model statements (a stored event that
        cannot be decoded matters only to the models that handle its class)."""
        return _handler(cls, event_class) is not None


_HANDLERS: dict[tuple[type, type], Callable[..., Any] | None] = {}


def _handler(model_class: type, event_class: type) -> Callable[..., Any] | None:
    """The function the model's ``statements`` dispatches ``event_class`` to; None where
    that is the default, which gives no statements."""
    key = (model_class, event_class)
    if key not in _HANDLERS:
        dispatcher = inspect.getattr_static(model_class, "statements").dispatcher
        found: Callable[..., Any] = dispatcher.dispatch(event_class)
        _HANDLERS[key] = None if found is dispatcher.dispatch(object) else found
    return _HANDLERS[key]


def object_ids(objects: Any) -> list[str]:
    """Scene object ids as text, sorted: an event's list as stored, whatever
    it holds (nothing, where it is no list)."""
    if isinstance(objects, (str, bytes)) or not isinstance(objects, Iterable):
        return []
    return sorted(str(o) for o in objects)


def storable(params: dict[str, Any]) -> dict[str, Any]:
    """A statement's parameters as PostgreSQL accepts them: NUL in text replaced, and JSON
    values made strict JSON (see :func:`json_safe`)."""
    return {key: _storable(value) for key, value in params.items()}


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", _REPLACEMENT) if "\x00" in value else value
    if isinstance(value, Jsonb):
        return Jsonb(json_safe(value.obj))
    if isinstance(value, list):
        if all(type(v) in _ATOMS for v in value):  # a batch's long arrays of plain values
            return value
        return [_storable(v) for v in value]
    return value


_ATOMS = frozenset({int, float, bool, type(None), UUID, datetime, date})
"""Types a list may hold that need nothing done to be stored."""


def json_safe(value: Any) -> Any:
    """``value`` as strict JSON that ``jsonb`` stores: a non-finite number becomes null (the
    JSON standard has no NaN or infinity, and PostgreSQL refuses the tokens), a NUL in a
    string or key becomes U+FFFD, keys become strings, and values JSON has no type for (bytes,
    ids, times) become their text."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value.replace("\x00", _REPLACEMENT) if "\x00" in value else value
    if isinstance(value, dict):
        return {json_safe(_key(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return json_safe(str(value))


def _key(key: Any) -> str:
    """A key as ``json.dumps`` writes it (JSON object keys are strings)."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool):
        return {None: "null", True: "true", False: "false"}[key]
    return str(key)
