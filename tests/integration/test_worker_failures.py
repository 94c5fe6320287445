"""A command that keeps failing is retried with back-off, then failed for good (one
``Job.Failed``) and kept in the dead-letter stream for inspection."""

from __future__ import annotations

import asyncio
import json
import uuid

from core.events.jetstream import MAX_DELIVER, CommandStream, connect
from core.events.job import Job, JobState
from core.events.job_kinds import MESH_ANALYSE, MESH_COMMANDS
from core.events.outbox import OutboxDispatcher
from core.events.studio import Studio
from core.settings import Settings
from tests.integration.conftest import async_part
from tests.integration.helpers import event_topics, poll
from workers.consumer import CommandConsumer, WorkerIdentity


def test_a_crashing_handler_ends_in_failed_and_a_dead_letter(prepared: Settings):
    assert prepared.database_url is not None
    studio = Studio.connect(prepared.database_url)
    project = studio.create_project("dead", actor="u")
    job_id = studio.request_job(project, MESH_ANALYSE, {"asset_id": str(uuid.uuid4())}, {},
                                actor="u")
    calls: list[int] = []

    async def crash(job: Job) -> dict:
        calls.append(job.attempts)
        raise RuntimeError("the worker's disk is full")

    dispatcher = OutboxDispatcher(prepared)
    consumer = CommandConsumer(prepared, WorkerIdentity("mesh", "cpu"), MESH_COMMANDS, crash,
                               studio, retry_base_s=0.01)
    parts = [async_part("dispatcher", dispatcher.run), async_part("consumer", consumer.run)]
    try:
        job = poll(lambda: studio.job(job_id), lambda j: j.state.finished, timeout=60)
    finally:
        for part in parts:
            part.stop()
        dispatcher.close()
    assert job.state is JobState.FAILED and job.attempts == MAX_DELIVER == len(calls)
    assert f"gave up after {MAX_DELIVER} attempts" in (job.error or "")
    assert "disk is full" in (job.error or "")
    assert event_topics(prepared).count("core.events.job:Job.Failed") == 1

    async def dead_letters() -> list[dict]:
        assert prepared.nats_url is not None
        nc = await connect(prepared.nats_url, "test")
        try:
            js = nc.jetstream()
            stream = CommandStream.of(prepared)
            info = await js.stream_info(stream.dead_letters)
            msg = await js.get_msg(stream.dead_letters, info.state.last_seq)
            return [json.loads(msg.data or b"{}") | {"reason": msg.headers["Orfeas-Reason"]}]
        finally:
            await nc.close()

    (letter,) = asyncio.run(dead_letters())
    assert letter["job_id"] == str(job_id) and "disk is full" in letter["reason"]
    studio.close()
