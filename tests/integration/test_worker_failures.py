"""A command that keeps failing is retried with back-off, then failed for good (one
``Job.Failed``) and kept in the dead-letter stream for inspection."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import uuid

from core.events.blobs import BlobStore
from core.events.jetstream import MAX_DELIVER, CommandStream, connect
from core.events.job import Job, JobState
from core.events.job_kinds import GENERATE, MESH_ANALYSE, MESH_COMMANDS
from core.events.outbox import OutboxDispatcher
from core.events.project import Asset
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


def _big_disc_png() -> bytes:
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (1600, 1200), "white")
    ImageDraw.Draw(image).ellipse((200, 100, 1400, 1100), fill=(30, 120, 200))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _start_gpu_worker(settings: Settings, log_path) -> subprocess.Popen[bytes]:
    env = dict(os.environ) | settings.to_env()
    return subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", "gpu"], env=env,
                            stdout=log_path.open("ab"), stderr=subprocess.STDOUT)


def test_a_worker_killed_mid_job_leads_to_one_set_of_results(pipeline: Settings, tmp_path):
    """SIGKILL the GPU worker once the preview is stored: JetStream redelivers the command
    after the ack wait, the new worker resumes after the stored stages, and the job ends with
    exactly one result. The job is made slow enough (a large image, no face budget) that the
    kill lands mid-job; a run where it finished first is repeated, not counted."""
    settings = pipeline.replace(job_ack_wait_s=3.0)
    assert settings.database_url is not None and settings.s3 is not None
    studio = Studio.connect(settings.database_url)
    blobs = BlobStore(settings.s3)
    project = studio.create_project("kill", actor="u")
    png = _big_disc_png()
    key = blobs.put_bytes(png, "image/png")
    image = Asset(str(uuid.uuid4()), key, hashlib.sha256(png).hexdigest(), "image/png", "image",
                  len(png), "disc.png", "u")
    studio.record_asset(project, image, "u")
    log = tmp_path / "worker.log"
    worker = _start_gpu_worker(settings, log)
    try:
        for seed in range(3):
            job_id = studio.request_job(project, GENERATE, {"asset_id": image.asset_id,
                                                              "blob_key": key},
                                        {"backend": "inflate", "seed": seed}, actor="u")
            job = poll(lambda j=job_id: studio.job(j), lambda j: "preview" in j.stages,
                       timeout=90)
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            killed_mid_job = not studio.job(job_id).state.finished
            worker = _start_gpu_worker(settings, log)
            job = poll(lambda j=job_id: studio.job(j), lambda j: j.state.finished, timeout=120)
            if killed_mid_job:
                break
        assert killed_mid_job, "the job always finished before the kill; make it slower"
        assert job.state is JobState.SUCCEEDED, job.error
        assert job.attempts == 2
        events = list(studio.events.get(job_id))
        kinds = [type(e).__name__ for e in events]
        assert kinds.count("Succeeded") == 1
        assert kinds.count("StageCompleted") == 3  # the preview was not made twice
        assert [e.stage for e in events if isinstance(e, Job.StageCompleted)] == \
            ["preview", "medium", "final"]
        made = studio.project(project).assets[job.result["mesh"]["asset_id"]]
        assert made.blob_key == job.stages["final"]["blob"] and made.kind == "mesh"
    finally:
        worker.kill()
        worker.wait(10)
        studio.close()
