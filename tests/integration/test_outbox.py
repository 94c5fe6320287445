"""The outbox dispatcher publishes each command exactly once, also across restarts and a lost
position (a crash between the publish and the tracking write)."""

from __future__ import annotations

import asyncio
import json
import uuid

import psycopg
from nats.js.api import StreamInfo

from core.events.jetstream import CommandStream, connect
from core.events.job_kinds import MESH_ANALYSE
from core.events.outbox import TRACKING_NAME, OutboxDispatcher
from core.events.studio import Studio
from core.settings import Settings
from tests.integration.conftest import async_part


def _stream_state(settings: Settings) -> tuple[StreamInfo, list[dict]]:
    async def read() -> tuple[StreamInfo, list[dict]]:
        assert settings.nats_url is not None
        nc = await connect(settings.nats_url, "test")
        try:
            js = nc.jetstream()
            stream = CommandStream.of(settings)
            info = await js.stream_info(stream.name)
            bodies = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await js.get_msg(stream.name, seq)
                bodies.append(json.loads(msg.data or b"{}") | {"_id": msg.headers["Nats-Msg-Id"]})
            return info, bodies
        finally:
            await nc.close()

    return asyncio.run(read())


def _dispatch_until(settings: Settings, count: int) -> None:
    dispatcher = OutboxDispatcher(settings)
    part = async_part("dispatcher", dispatcher.run)
    try:
        for _ in range(300):
            if dispatcher.position >= count:
                break
            asyncio.run(asyncio.sleep(0.05))
        assert dispatcher.position >= count, f"dispatched up to {dispatcher.position}"
    finally:
        part.stop()
        dispatcher.close()


def test_each_command_is_published_once_even_when_the_position_is_lost(prepared: Settings):
    assert prepared.database_url is not None
    studio = Studio.connect(prepared.database_url)
    project_id = studio.create_project("outbox", actor="u1")
    job_ids = [
        studio.request_job(project_id, MESH_ANALYSE, {"asset_id": str(uuid.uuid4()),
                                                      "blob_key": "k", "format": "stl"},
                           {}, actor="u1")
        for _ in range(20)
    ]
    head = studio.max_position()
    studio.close()

    _dispatch_until(prepared, head)
    info, bodies = _stream_state(prepared)
    assert info.state.messages == 20
    assert [b["job_id"] for b in bodies] == [str(j) for j in job_ids]  # in log order
    assert all(b["_id"] == f"{b['job_id']}/1" for b in bodies)

    # Forget the position, as a crash between publish and tracking write would: every command
    # is published again and the stream's duplicate window drops every copy.
    with psycopg.connect(prepared.database_url, autocommit=True) as conn:
        conn.execute(f"DELETE FROM {TRACKING_NAME}_tracking WHERE application_name = 'Studio'")
    _dispatch_until(prepared, head)
    info, _ = _stream_state(prepared)
    assert info.state.messages == 20
