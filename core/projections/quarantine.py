"""Stored events a read model could not apply, kept aside so that the model carries on.

One bad event (old data written before the edge checked it, a value a model's code did not
expect) must not stop a read model for everyone, nor the other models. The runner records it
here, for that model only, in the same transaction that moves the model's position past it:
the event is either applied or quarantined, exactly once. Admins list the rows
(``GET /api/v1/admin/quarantine``), ``/readyz`` reports them as degraded, and
``orfeas projections retry`` re-applies them once the model has been fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.utils import get_topic

QUARANTINE_TABLE = "rm_quarantine"
ERROR_CHARS = 2000  # the start of a message says what went wrong; a whole payload does not fit

CREATE_SQL = (
    "CREATE TABLE IF NOT EXISTS rm_quarantine ("
    " model text NOT NULL, position bigint NOT NULL, originator_id uuid,"
    " originator_version bigint, topic text NOT NULL, error text NOT NULL,"
    " quarantined_at timestamptz NOT NULL DEFAULT now(), attempts int NOT NULL DEFAULT 1,"
    " last_tried_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (model, position))",
    "CREATE INDEX IF NOT EXISTS rm_quarantine_newest ON rm_quarantine (quarantined_at DESC)",
)

_RECORD = (
    "INSERT INTO rm_quarantine (model, position, originator_id, originator_version, topic,"
    " error) VALUES (%(model)s, %(position)s, %(origin)s, %(version)s, %(topic)s, %(error)s)"
    " ON CONFLICT (model, position) DO UPDATE SET error = EXCLUDED.error,"
    " attempts = rm_quarantine.attempts + 1, last_tried_at = now()"
)


@dataclass(frozen=True)
class Undecodable:
    """A stored event that could not be turned into a domain event (its state or topic is
    unreadable): every model that may care about its topic quarantines it."""

    topic: str
    originator_id: UUID
    originator_version: int
    error: Exception
    event_class: type | None  # None where the topic names no class this code knows


@dataclass(frozen=True)
class Quarantined:
    model: str
    position: int
    topic: str
    error: str


def describe(error: BaseException) -> str:
    """The error as one text a ``text`` column holds: its type, message and, for a
    PostgreSQL error, the detail that names the offending value."""
    text = f"{type(error).__name__}: {error}"
    diag = getattr(error, "diag", None)
    detail = getattr(diag, "message_detail", None)
    if detail and detail not in text:
        text = f"{text} ({detail})"
    return text.replace("\x00", "\ufffd")[:ERROR_CHARS]


def topic_of(event: Any) -> str:
    return event.topic if isinstance(event, Undecodable) else get_topic(type(event))


def record(conn: psycopg.Connection[Any], model: str, position: int, event: Any,
           error: BaseException) -> Quarantined:
    """Quarantine ``event`` for ``model`` (in the caller's transaction); a second failure of
    the same event updates its error and counts the attempt."""
    topic = topic_of(event)
    message = describe(error)
    conn.execute(_RECORD, {
        "model": model, "position": position, "origin": getattr(event, "originator_id", None),
        "version": getattr(event, "originator_version", None), "topic": topic,
        "error": message,
    })
    return Quarantined(model, position, topic, message)


def positions(conn: psycopg.Connection[Any], model: str) -> list[int]:
    """The quarantined positions of one model, oldest first (the order they were skipped)."""
    rows = conn.execute("SELECT position FROM rm_quarantine WHERE model = %s ORDER BY position",
                        (model,)).fetchall()
    return [int(row[0]) for row in rows]


def release(conn: psycopg.Connection[Any], model: str, position: int) -> None:
    conn.execute("DELETE FROM rm_quarantine WHERE model = %s AND position = %s",
                 (model, position))


def clear(conn: psycopg.Connection[Any], model: str) -> None:
    """Forget a model's quarantine (a rebuild replays, and quarantines again, every event)."""
    conn.execute("DELETE FROM rm_quarantine WHERE model = %s", (model,))
