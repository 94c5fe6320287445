"""The analytics read models are exactly what the log says, however the log is cut: after a
random sequence of events, the live projection (taken in batches of a random size, with
events arriving between steps) and ``rebuild`` (the whole log at once) give equal tables."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from core.events import activity
from core.events.job_kinds import GENERATE, MESH_MATERIAL, MESH_STYLE
from core.events.roles import Role
from core.events.studio import Studio
from core.projections.analytics_platform import PlatformAnalyticsReadModel
from core.projections.analytics_users import UserAnalyticsReadModel
from core.projections.runner import ProjectionRunner
from core.settings import Settings
from infra.embedded.scratch import scratch_database

MODELS = ("analytics_users", "analytics_platform")
TABLES = UserAnalyticsReadModel.tables + PlatformAnalyticsReadModel.tables
USERS = [str(uuid.UUID(int=i + 1)) for i in range(3)] + ["server"]

users = st.sampled_from(USERS)
seconds = st.one_of(st.floats(0, 1e4), st.just(float("nan")), st.just(-1.0))
operations = st.one_of(
    st.tuples(st.just("project"), users),
    st.tuples(st.just("invite"), users, st.integers(0, 5)),
    st.tuples(st.just("generate"), users, st.integers(0, 5),
              st.sampled_from(["inflate", "shap-e", ""]), st.sampled_from([None, 500, 20000]),
              st.sampled_from(["succeed", "fail", "wait"]), seconds),
    st.tuples(st.just("reuse"), users, st.integers(0, 5), st.integers(0, 5)),
    st.tuples(st.just("end"), st.integers(0, 5), st.booleans()),
    st.tuples(st.just("mesh"), users, st.integers(0, 5),
              st.sampled_from([(MESH_STYLE, "style", "low_poly"), (MESH_STYLE, "style", "organic"),
                               (MESH_MATERIAL, "material", "wood")])),
    st.tuples(st.just("sign_in"), users, st.booleans()),
    st.tuples(st.just("export"), users, st.sampled_from(["stl", "glb", "original"])),
    st.tuples(st.just("session"), users, seconds),
    st.tuples(st.just("summary"), st.lists(st.tuples(
        st.sampled_from(["GET /api/v1/projects", "POST /api/v1/auth/tokens", "unmatched"]),
        st.integers(0, 50), st.integers(0, 5), st.integers(0, 5),
        st.lists(st.integers(0, 20), max_size=30)), max_size=3)),
)


@pytest.fixture(scope="module")
def database(stack: Settings) -> Iterator[str]:
    database_url, _, _ = stack.require_services()
    with scratch_database(database_url, "t") as url:
        yield url


class Script:
    """Plays operations on the log, keeping the projects and jobs made so far."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.projects: list[UUID] = []
        self.jobs: list[UUID] = []

    def project(self, index: int, user: str) -> UUID:
        if not self.projects:
            self.projects.append(self.studio.create_project("p", user))
        return self.projects[index % len(self.projects)]

    def play(self, op: tuple[Any, ...]) -> None:
        studio, kind = self.studio, op[0]
        if kind == "project":
            self.projects.append(studio.create_project("p", op[1]))
        elif kind == "invite":
            project = self.project(op[2], op[1])
            studio.invite(project, str(uuid.uuid4()), Role.EDITOR, op[1])
        elif kind == "generate":
            _, user, index, backend, budget, outcome, spent = op
            params = {"backend": backend} | ({"face_budget": budget} if budget else {})
            job = studio.request_job(self.project(index, user), GENERATE,
                                     {"asset_id": str(uuid.uuid4())}, params, user)
            self.jobs.append(job)
            if outcome != "wait":
                studio.start_job(job, "gpu-1", "cuda:0")
                studio.complete_stage(job, "final", None, {"seconds": spent, "device": "cuda:0"})
                if outcome == "succeed":
                    studio.succeed_job(job, {})
                else:
                    studio.fail_job(job, "broke", retryable=False, actor="gpu-1")
        elif kind in ("reuse", "end") and not self.jobs:
            return  # nothing to reuse or end yet
        elif kind == "reuse":
            _, user, index, source = op
            source_job = self.jobs[source % len(self.jobs)]
            made = studio.reuse_job(source_job, self.project(index, user),
                                    {"asset_id": "x"}, {"backend": "inflate"}, user)
            if made is not None:
                self.jobs.append(made[0])
        elif kind == "end":
            job = self.jobs[op[1] % len(self.jobs)]
            if not studio.job(job).state.finished:
                if op[2]:
                    studio.cancel_job(job, "gpu-1")
                else:
                    studio.fail_job(job, "lost", retryable=True, actor="gpu-1")
        elif kind == "mesh":
            _, user, index, (job_kind, field, value) = op
            studio.request_job(self.project(index, user), job_kind, {"asset_id": "m"},
                               {field: value}, user)
        else:
            studio.save(_fact(op))


def _fact(op: tuple[Any, ...]) -> activity.Activity:
    kind = op[0]
    if kind == "sign_in":
        return activity.signed_in(op[1], "token") if op[2] else activity.sign_in_failed("token")
    if kind == "export":
        return activity.exported(op[1], str(uuid.uuid4()), op[2])
    if kind == "session":
        return activity.session_ended(op[1], str(uuid.uuid4()), op[2], "node-1")
    routes = [{"route": route, "count": n, "client_errors": c, "server_errors": s,
               "p50_ms": 1.0, "p95_ms": 2.0, "histogram": h} for route, n, c, s, h in op[1]]
    return activity.requests_summarised("node-1", "2026-12-07T10:00:00+00:00", routes)


def tables(url: str) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with psycopg.connect(url) as conn:
        for table in TABLES:
            rows = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
            out[table] = sorted(tuple(map(repr, row)) for row in rows.fetchall())
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(first=st.lists(operations, max_size=12), then=st.lists(operations, max_size=12),
       batch=st.integers(1, 7))
def test_rebuild_gives_the_live_tables(database: str, first: list[tuple[Any, ...]],
                                       then: list[tuple[Any, ...]], batch: int) -> None:
    studio = Studio.connect(database)
    live = ProjectionRunner(database, batch_size=batch, names=MODELS)
    try:
        script = Script(studio)
        for op in first:
            script.play(op)
        live.catch_up()
        for op in then:
            script.play(op)
        live.catch_up()
        followed = tables(database)
        for name in MODELS:
            live.rebuild(name)
        assert tables(database) == followed
    finally:
        live.close()
        studio.close()
