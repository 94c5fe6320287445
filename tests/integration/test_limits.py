"""Tiers, quotas and rate limits on real PostgreSQL and NATS, with two API instances on one
database (each its own app, pool and lifespan, as two ``orfeas api`` processes are).

Limits are set as an admin sets them (``PUT /admin/limits/{tier}``), small enough for fast
tests; no worker runs, so every job stays queued unless a test ends it itself.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest
from PIL import Image, ImageDraw
from starlette.testclient import TestClient

from api.app import create_app
from core.events.jetstream import CommandStream, connect
from core.events.job import Job
from core.events.job_kinds import GENERATOR_VERSIONS, MESH_ANALYSE
from core.events.outbox import OutboxDispatcher, fair_order
from core.events.studio import Studio, eventstore_env
from core.limits import DEFAULTS, Tier
from core.projections.runner import ProjectionRunner
from core.settings import Settings
from tests.integration.conftest import Account, BackgroundPart, async_part
from tests.integration.helpers import box_stl, bucket_keys, event_topics, poll

HOUR = 3600


def disc_png(fill: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """An image a generator can use: a (red) disc on white."""
    image = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(image).ellipse((48, 48, 208, 208), fill=fill)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def projections(prepared: Settings) -> Iterator[Settings]:
    """The projection runner alone: the tiers' and jobs' read models follow the log."""
    assert prepared.database_url is not None
    runner = ProjectionRunner(prepared.database_url)
    part = BackgroundPart("projections", runner.run)
    yield prepared
    part.stop()
    runner.close()


@pytest.fixture
def second(projections: Settings) -> Iterator[TestClient]:
    """Another API instance on the same database."""
    with TestClient(create_app(projections), raise_server_exceptions=False) as other:
        yield other


def _limits(client: TestClient, admin: Account, tier: str, **changes: int) -> dict[str, Any]:
    table = client.get("/api/v1/admin/limits", headers=admin.headers).json()["tiers"]
    wanted = table[tier] | changes
    answer = client.put(f"/api/v1/admin/limits/{tier}", json=wanted, headers=admin.headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _mesh(client: TestClient, account: Account) -> str:
    project = client.post("/api/v1/projects", json={"name": "limits"}, headers=account.headers)
    assert project.status_code == 201, project.text
    upload = client.post(f"/api/v1/projects/{project.json()['id']}/assets?filename=box.stl",
                         content=box_stl(), headers=account.headers)
    assert upload.status_code == 201, upload.text
    return str(upload.json()["id"])


def _analyse(client: TestClient, account: Account, mesh: str) -> Any:
    return client.post(f"/api/v1/meshes/{mesh}/analysis", headers=account.headers)


def _policies(answer: Any) -> dict[str, dict[str, int]]:
    """The RateLimit-Policy and RateLimit fields, merged by policy name."""
    merged: dict[str, dict[str, int]] = {}
    for field in ("ratelimit-policy", "ratelimit"):
        for item in answer.headers[field].split(","):
            name, *params = item.strip().split(";")
            merged.setdefault(json.loads(name), {}).update(
                {k: int(v) for k, v in (p.split("=") for p in params)})
    return merged


def test_free_users_eleventh_billable_request_is_refused_on_either_node(
        client: TestClient, second: TestClient, make_account: Callable[..., Account]) -> None:
    """Free: 10 billable per hour, whichever node answers; pro: more. The headers are on
    every answer; the refusal says when to retry."""
    admin = make_account("root", admin=True)
    for tier in ("free", "pro"):  # jobs at once out of the way: this is about the rate
        _limits(client, admin, tier, concurrent_jobs=100)
    fay, pat = make_account("fay"), make_account("pat")
    assert client.put("/api/v1/admin/users/pat/tier", json={"tier": "pro"},
                      headers=admin.headers).status_code == 200
    meshes = {"fay": _mesh(client, fay), "pat": _mesh(second, pat)}
    nodes = (client, second)
    for n in range(10):
        answer = _analyse(nodes[n % 2], fay, meshes["fay"])
        assert answer.status_code == 202, answer.text
        billable = _policies(answer)["billable"]
        assert billable["q"] == 10 and billable["w"] == HOUR and billable["r"] == 9 - n
    for node in nodes:
        refused = _analyse(node, fay, meshes["fay"])
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) > 0
        assert _policies(refused)["billable"] == {"q": 10, "w": HOUR, "r": 0,
                                                 "t": _policies(refused)["billable"]["t"]}
        problem = refused.json()
        assert problem["tier"] == "free" and problem["policy"] == "billable"
        assert "try again in" in problem["detail"]
    for n in range(11):
        answer = _analyse(nodes[n % 2], pat, meshes["pat"])
        assert answer.status_code == 202, answer.text
        assert _policies(answer)["billable"]["q"] == DEFAULTS[Tier.PRO].billable_per_window


def test_answers_from_the_generation_cache_cost_nothing(
        client: TestClient, projections: Settings,
        make_account: Callable[..., Account]) -> None:
    """With one billable request per hour: the run spends it; a request joining that run,
    and one answered from its finished result, are let through and spend nothing."""
    admin = make_account("root", admin=True)
    _limits(client, admin, "free", billable_per_window=1, concurrent_jobs=5)
    gil = make_account("gil")
    project = client.post("/api/v1/projects", json={"name": "c"}, headers=gil.headers).json()
    image = client.post(f"/api/v1/projects/{project['id']}/assets?filename=d.png",
                        content=disc_png(), headers=gil.headers).json()
    url = f"/api/v1/projects/{project['id']}/generate"
    run = client.post(url, json={"asset_id": image["id"]}, headers=gil.headers)
    assert run.status_code == 202 and _policies(run)["billable"]["r"] == 0, run.text
    joined = client.post(url, json={"asset_id": image["id"]}, headers=gil.headers)
    assert joined.status_code == 202, joined.text
    assert _policies(joined)["billable"]["r"] == 0
    reuse = poll(lambda: database_job(projections, joined.json()["job_id"]),
                 lambda row: row is not None)
    assert reuse["cache_key"] == ""  # a reuse job: it runs nowhere
    # the run ends as a worker would end it; the next identical request is a cache hit
    assert projections.database_url is not None
    studio = Studio(env=eventstore_env(projections.database_url))
    try:
        run_id = UUID(run.json()["job_id"])
        studio.start_job(run_id, "test-worker", "cpu")
        studio.complete_stage(run_id, "final", "blobs/sha256/ab/cdef", {"faces": 4})
        studio.succeed_job(run_id, {"backend_version": GENERATOR_VERSIONS["inflate"]})
    finally:
        studio.close()
    poll(lambda: database_job(projections, run.json()["job_id"]),
         lambda row: row is not None and row["state"] == "succeeded")
    hit = client.post(url, json={"asset_id": image["id"]}, headers=gil.headers)
    assert hit.status_code == 202, hit.text
    assert _policies(hit)["billable"]["r"] == 0
    assert "core.events.job:Job.ReuseRequested" in event_topics(projections)
    refused = client.post(url, json={"asset_id": image["id"], "seed": 7}, headers=gil.headers)
    assert refused.status_code == 429 and refused.json()["policy"] == "billable", refused.text
    usage = client.get("/api/v1/me/usage", headers=gil.headers).json()
    assert usage["billable"]["used"] == 1 and usage["billable"]["limit"] == 1


def database_job(settings: Settings, job_id: str) -> dict[str, Any] | None:
    import psycopg
    from psycopg.rows import dict_row

    assert settings.database_url is not None
    with psycopg.connect(settings.database_url, row_factory=dict_row) as conn:
        row = conn.execute("SELECT * FROM rm_jobs WHERE id = %s", (job_id,)).fetchone()
    return None if row is None else dict(row)


def test_jobs_at_once_say_the_queue_position_and_when_a_slot_is_expected(
        client: TestClient, projections: Settings,
        make_account: Callable[..., Account]) -> None:
    """Free: one job at once. A second is refused with where the first stands in the queue
    (behind another user's earlier job) and when a slot is expected."""
    ann, bob = make_account("ann"), make_account("bob")
    ann_mesh, bob_mesh = _mesh(client, ann), _mesh(client, bob)
    first = _analyse(client, bob, bob_mesh)
    assert first.status_code == 202, first.text
    poll(lambda: client.get(first.headers["location"], headers=bob.headers).status_code,
         lambda status: status == 200)
    mine = _analyse(client, ann, ann_mesh)
    assert mine.status_code == 202, mine.text
    poll(lambda: client.get(mine.headers["location"], headers=ann.headers).status_code,
         lambda status: status == 200)
    refused = _analyse(client, ann, ann_mesh)
    assert refused.status_code == 429, refused.text
    problem = refused.json()
    assert problem["queue_position"] == 2 and problem["limit"] == 1
    assert problem["active_jobs"] == 1 and problem["slot_expected_in_s"] >= 1
    assert int(refused.headers["retry-after"]) == problem["slot_expected_in_s"]
    assert "position 2" in problem["detail"]
    assert _policies(refused)["billable"]["r"] == 9  # the refused job spent nothing
    usage = client.get("/api/v1/me/usage", headers=ann.headers).json()
    assert usage["jobs"] == {"running": 1, "limit": 1}


def test_a_generation_refused_for_the_limits_stores_nothing_and_can_be_sent_again(
        client: TestClient, projections: Settings,
        make_account: Callable[..., Account]) -> None:
    """An image sent with its generation (multipart) is stored only once the job may run:
    refused for the jobs at once, or for the billable rate, the request stores no blob,
    records no upload and counts no storage. Sent again once a slot is free, it runs."""
    admin = make_account("root", admin=True)
    _limits(client, admin, "free", billable_per_window=2, concurrent_jobs=1)
    hal = make_account("hal")
    running = _analyse(client, hal, _mesh(client, hal))  # hal's one job at once
    assert running.status_code == 202, running.text
    project = client.post("/api/v1/projects", json={"name": "gen"}, headers=hal.headers)
    url = f"/api/v1/projects/{project.json()['id']}/generate-progressive"

    def usage() -> Any:
        return client.get("/api/v1/me/usage", headers=hal.headers).json()

    def after_ending(job_id: str) -> Any:
        """Cancel the job; the usage once the read models have caught up with that (and so
        with every event the requests before it appended)."""
        ended = client.delete(f"/api/v1/jobs/{job_id}", headers=hal.headers)
        assert ended.status_code == 204, ended.text
        return poll(usage, lambda u: u["jobs"]["running"] == 0)

    used = poll(usage, lambda u: u["jobs"]["running"] == 1)["storage"]["used_bytes"]
    assert used > 0  # the mesh
    keys, topics = bucket_keys(projections), event_topics(projections)
    image = {"image": ("disc.png", disc_png(), "image/png")}
    refused = client.post(url, files=image, headers=hal.headers)
    assert refused.status_code == 429, refused.text
    assert refused.json()["active_jobs"] == 1 and _policies(refused)["billable"]["r"] == 1
    assert bucket_keys(projections) == keys and event_topics(projections) == topics
    assert after_ending(running.json()["job_id"])["storage"]["used_bytes"] == used

    with client.stream("POST", url, files=image, headers=hal.headers) as sent_again:
        assert sent_again.status_code == 200, sent_again.read()
        queued = json.loads(next(line for line in sent_again.iter_lines() if line))
    assert queued["event"] == "queued", queued
    assert after_ending(queued["job_id"])["storage"]["used_bytes"] == used + len(disc_png())

    keys, topics = bucket_keys(projections), event_topics(projections)
    other = {"image": ("blue.png", disc_png((40, 40, 200)), "image/png")}
    refused = client.post(url, files=other, headers=hal.headers)  # both billable jobs spent
    assert refused.status_code == 429, refused.text
    assert refused.json()["policy"] == "billable" and _policies(refused)["billable"]["r"] == 0
    assert bucket_keys(projections) == keys and event_topics(projections) == topics
    assert usage()["storage"]["used_bytes"] == used + len(disc_png())


def test_request_rate_over_all_routes(client: TestClient, second: TestClient,
                                      make_account: Callable[..., Account]) -> None:
    """Every signed-in route spends from one per-user rate, shared by the nodes."""
    admin = make_account("root", admin=True)
    cal = make_account("cal")
    _limits(client, admin, "free", requests_per_window=4, requests_window_s=60)
    answers = [node.get("/api/v1/me", headers=cal.headers) for node in (client, second) * 2]
    assert [a.status_code for a in answers] == [200] * 4
    assert [_policies(a)["requests"]["r"] for a in answers] == [3, 2, 1, 0]
    refused = second.get("/api/v1/projects", headers=cal.headers)
    assert refused.status_code == 429 and refused.json()["policy"] == "requests"
    assert 0 < int(refused.headers["retry-after"]) <= 15


def test_a_tier_is_an_event_and_holds_without_a_restart(
        client: TestClient, projections: Settings,
        make_account: Callable[..., Account]) -> None:
    admin = make_account("root", admin=True)
    dee = make_account("dee")
    listed = client.get("/api/v1/admin/users", headers=admin.headers).json()["users"]
    assert {u["username"]: u["tier"] for u in listed} == {"root": "free", "dee": "free"}
    assert client.get("/api/v1/me/usage", headers=dee.headers).json()["tier"] == "free"
    changed = client.put("/api/v1/admin/users/dee/tier", json={"tier": "enterprise"},
                         headers=admin.headers)
    assert changed.status_code == 200 and changed.json()["tier"] == "enterprise"
    assert "core.events.account:Account.Opened" in event_topics(projections)
    usage = client.get("/api/v1/me/usage", headers=dee.headers).json()
    assert usage["tier"] == "enterprise"
    assert usage["limits"] == {k: v for k, v in vars(DEFAULTS[Tier.ENTERPRISE]).items()}
    assert client.put("/api/v1/admin/users/dee/tier", json={"tier": "pro"},
                      headers=admin.headers).status_code == 200
    assert "core.events.account:Account.TierChanged" in event_topics(projections)
    assert client.get("/api/v1/me/usage", headers=dee.headers).json()["tier"] == "pro"
    made = client.post("/api/v1/admin/users", headers=admin.headers, json={
        "username": "eve", "password": "eve-secret-pw", "tier": "pro"})
    assert made.status_code == 201 and made.json()["tier"] == "pro", made.text
    listed = client.get("/api/v1/admin/users", headers=admin.headers).json()["users"]
    assert {u["username"]: u["tier"] for u in listed}["eve"] == "pro"


@pytest.mark.parametrize("path,body", [
    ("/api/v1/admin/users/fin/tier", {"tier": "gold"}),
    ("/api/v1/admin/users/fin/tier", {"tier": None}),
    ("/api/v1/admin/limits/free", {"billable_per_window": -1}),
    ("/api/v1/admin/limits/free", {"concurrent_jobs": 0}),
    ("/api/v1/admin/limits/free", {"billable_per_window": 10**12}),
    ("/api/v1/admin/limits/free", {"requests_window_s": 1.5}),
    ("/api/v1/admin/limits/free", {"storage_bytes": "lots"}),
    ("/api/v1/admin/limits/gold", {}),
])
def test_bad_tiers_and_limits_are_refused_and_change_nothing(
        client: TestClient, projections: Settings, make_account: Callable[..., Account],
        path: str, body: dict[str, Any]) -> None:
    admin = make_account("root", admin=True)
    make_account("fin")
    before = client.get("/api/v1/admin/limits", headers=admin.headers).json()
    if "/limits/" in path:
        body = before["tiers"]["free"] | body
    refused = client.put(path, json=body, headers=admin.headers)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert client.get("/api/v1/admin/limits", headers=admin.headers).json() == before
    users = client.get("/api/v1/admin/users", headers=admin.headers).json()["users"]
    assert {u["username"]: u["tier"] for u in users}["fin"] == "free"
    assert not any(t.startswith("core.events.account:") for t in event_topics(projections))


def test_tier_of_an_unknown_user_is_not_found(client: TestClient, projections: Settings,
                                              make_account: Callable[..., Account]) -> None:
    admin = make_account("root", admin=True)
    missing = client.put("/api/v1/admin/users/nobody/tier", json={"tier": "pro"},
                         headers=admin.headers)
    assert missing.status_code == 404, missing.text


def _requested(actor: str, n: int) -> Any:
    event = Job.Requested.__new__(Job.Requested)
    object.__setattr__(event, "actor", actor)
    object.__setattr__(event, "kind", MESH_ANALYSE)
    return event, n


def test_fair_order_interleaves_requesters() -> None:
    burst = [_requested("a", n) for n in range(20)] + [_requested("b", 20)]
    ordered = [(e.actor, n) for e, n in fair_order([*burst])]
    assert ordered[:3] == [("a", 0), ("b", 20), ("a", 1)]
    assert [n for actor, n in ordered if actor == "a"] == list(range(20))


def test_one_users_burst_does_not_queue_another_users_job_behind_it(
        prepared: Settings) -> None:
    """20 jobs of one user and then 1 of another, pending when the dispatcher starts: the
    other's reaches the stream before the first user's 20th."""
    assert prepared.database_url is not None
    studio = Studio(env=eventstore_env(prepared.database_url))
    try:
        project = studio.create_project("fair", "amy")
        burst = [studio.request_job(project, MESH_ANALYSE, {"n": n}, {}, "amy")
                 for n in range(20)]
        single = studio.request_job(project, MESH_ANALYSE, {"n": 0}, {}, "ben")
    finally:
        studio.close()
    dispatcher = OutboxDispatcher(prepared)
    part = async_part("dispatcher", dispatcher.run)
    try:
        order = asyncio.run(_stream_order(prepared, 21))
    finally:
        part.stop()
        dispatcher.close()
    assert sorted(order) == sorted(str(j) for j in [*burst, single])
    assert order.index(str(single)) < order.index(str(burst[-1]))


async def _stream_order(settings: Settings, count: int) -> list[str]:
    """The job ids in the command stream, in stream order, once ``count`` are there."""
    assert settings.nats_url is not None
    stream = CommandStream.of(settings)
    nc = await connect(settings.nats_url, "fairness-test")
    try:
        js = nc.jetstream()
        for _ in range(300):
            info = await js.stream_info(stream.name)
            if info.state.messages >= count:
                break
            await asyncio.sleep(0.05)
        order = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(stream.name, seq)
            assert message.data is not None
            order.append(json.loads(message.data)["job_id"])
        return order
    finally:
        await nc.close()
