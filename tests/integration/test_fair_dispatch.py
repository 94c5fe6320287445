"""One user's burst of jobs does not starve another user's job on the workers: real API,
projection runner, outbox dispatcher, NATS JetStream and mesh worker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import psycopg
import pytest
from starlette.testclient import TestClient

from core.events.jetstream import CommandStream, connect, consumer_config, ensure_stream
from core.events.job_kinds import MESH_COMMANDS
from core.events.outbox import LOOKAHEAD, OutboxDispatcher
from core.projections.runner import ProjectionRunner
from core.settings import Settings
from tests.integration.conftest import Account, BackgroundPart, async_part
from tests.integration.helpers import box_stl, poll
from workers.mesh.worker import POOL, run_mesh_worker

BURST = 20


@pytest.fixture
def dispatching(prepared: Settings) -> Iterator[Settings]:
    """Projections and the dispatcher running; the mesh pool's consumer exists (a worker
    made it before) but no worker pulls yet: the workers are busy elsewhere or away."""
    assert prepared.database_url is not None
    asyncio.run(_mesh_consumer(prepared))
    runner = ProjectionRunner(prepared.database_url)
    dispatcher = OutboxDispatcher(prepared)
    parts = [BackgroundPart("projections", runner.run),
             async_part("dispatcher", dispatcher.run)]
    yield prepared
    for part in parts:
        part.stop()
    dispatcher.close()
    runner.close()


async def _mesh_consumer(settings: Settings) -> None:
    assert settings.nats_url is not None
    stream = CommandStream.of(settings)
    nc = await connect(settings.nats_url, "fairness-test")
    try:
        js = nc.jetstream()
        await ensure_stream(js, stream)
        await js.add_consumer(stream.name, consumer_config(stream, POOL, MESH_COMMANDS))
    finally:
        await nc.close()


def _analysis(client: TestClient, account: Account) -> str:
    project = client.post("/api/v1/projects", json={"name": "fair"}, headers=account.headers)
    mesh = client.post(f"/api/v1/projects/{project.json()['id']}/assets?filename=box.stl",
                       content=box_stl(), headers=account.headers)
    assert mesh.status_code == 201, mesh.text
    return f"/api/v1/meshes/{mesh.json()['id']}/analysis"


def _start_order(settings: Settings) -> list[str]:
    """Job ids in the order workers started them (the log's order of ``Job.Started``)."""
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute("SELECT originator_id::text FROM studio_events WHERE topic ="
                            " 'core.events.job:Job.Started' ORDER BY notification_id")
        return [row[0] for row in rows.fetchall()]


def test_a_later_job_of_another_user_starts_before_most_of_a_burst(
        client: TestClient, dispatching: Settings,
        make_account: Callable[..., Account]) -> None:
    """A pro user (20 jobs at once here) asks for 20 analyses, then a free user for one;
    then a mesh worker starts. The free user's job is among the first few the worker starts
    (the dispatcher keeps at most LOOKAHEAD in the stream for a busy pool and publishes the
    rest to the user served longest ago), not the 21st as the stream's order would have it."""
    admin = make_account("root", admin=True)
    table = client.get("/api/v1/admin/limits", headers=admin.headers).json()["tiers"]
    assert client.put("/api/v1/admin/limits/pro", headers=admin.headers,
                      json=table["pro"] | {"concurrent_jobs": BURST}).status_code == 200
    amy, ben = make_account("amy"), make_account("ben")
    assert client.put("/api/v1/admin/users/amy/tier", json={"tier": "pro"},
                      headers=admin.headers).status_code == 200
    amy_url, ben_url = _analysis(client, amy), _analysis(client, ben)
    burst = []
    for _ in range(BURST):
        answer = client.post(amy_url, headers=amy.headers)
        assert answer.status_code == 202, answer.text
        burst.append(answer.json()["job_id"])
    answer = client.post(ben_url, headers=ben.headers)
    assert answer.status_code == 202, answer.text
    single = answer.json()["job_id"]

    worker = async_part("mesh-worker", lambda stop: run_mesh_worker(dispatching, stop))
    try:
        order = poll(lambda: _start_order(dispatching), lambda o: len(o) == BURST + 1,
                     timeout=120)
    finally:
        worker.stop()
    assert sorted(order) == sorted([*burst, single])
    assert order.index(single) <= LOOKAHEAD, order  # behind only what was in the stream
    assert order.index(single) < BURST // 2
