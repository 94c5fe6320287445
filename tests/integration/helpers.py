"""Small helpers shared by the integration tests."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import psycopg
import trimesh

from core.events.activity import Activity
from core.settings import Settings
from tests.conftest import minio_client


def box_stl(size: float = 2.0) -> bytes:
    buffer = io.BytesIO()
    trimesh.creation.box(extents=(size, size, size)).export(buffer, file_type="stl")
    return buffer.getvalue()


def event_topics(settings: Settings) -> list[str]:
    """Every stored event's topic, in log order (empty when the log table is not there yet),
    usage facts left out.

    A refused request changes nothing the studio holds, yet it is observed: the API appends its
    per-minute request summaries (4xx counted by route) and sign-in facts as ``Activity``
    events every second, so they may land between any two reads.
    """
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url) as conn:
        exists = conn.execute("SELECT to_regclass('studio_events')").fetchone()
        if exists is None or exists[0] is None:
            return []
        rows = conn.execute("SELECT topic FROM studio_events ORDER BY notification_id").fetchall()
    return [r[0] for r in rows if not r[0].startswith(f"{Activity.__module__}:")]


def bucket_keys(settings: Settings) -> list[str]:
    s3 = settings.s3
    assert s3 is not None
    client = minio_client(s3)
    return sorted(o.object_name for o in client.list_objects(s3.bucket, recursive=True))


def poll(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not done after {timeout}s; last value: {value!r}")
        time.sleep(0.1)
