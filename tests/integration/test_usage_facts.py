"""Usage facts that could not be stored wait in memory and are stored on a later try."""

from __future__ import annotations

import uuid

import psycopg

from api.activity import ActivityRecorder
from core.events.activity import Activity, exported, signed_in
from core.events.studio import Studio
from core.settings import Settings
from tests.integration.helpers import event_topics

SIGNED_IN = f"{Activity.__module__}:Activity.SignedIn"
EXPORTED = f"{Activity.__module__}:Activity.Exported"


def _topics(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT topic FROM studio_events ORDER BY notification_id")
        return [row[0] for row in rows.fetchall()]


def test_facts_a_failed_store_kept_are_stored_on_the_next_try(prepared: Settings) -> None:
    url = prepared.database_url
    assert url is not None
    studio = Studio.connect(url)
    try:
        recorder = ActivityRecorder(studio, "node-1")
        user = str(uuid.uuid4())
        recorder.add(signed_in(user, "session"))
        with psycopg.connect(url, autocommit=True) as conn:  # the log is away
            conn.execute("ALTER TABLE studio_events RENAME TO studio_events_away")
        recorder.store(recorder.due())  # refused: kept for the next try
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE studio_events_away RENAME TO studio_events")
        assert _topics(url) == []
        recorder.add(exported(user, str(uuid.uuid4()), "stl"))
        recorder.store(recorder.due())
        assert _topics(url) == [SIGNED_IN, EXPORTED]  # in the order they happened
        assert event_topics(prepared) == []  # usage facts are no change of the studio's
    finally:
        studio.close()
