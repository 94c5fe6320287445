"""Schemathesis over every operation of the served OpenAPI document, against a studio running
over real HTTP on the session's PostgreSQL, NATS and S3: no answer may be a server error, and
every answer must have a documented status, content type and (where declared) schema.

Cases are generated from the document itself, so a body model, a query parameter or a route
added later is fuzzed without this test changing. Each operation is tried with generated path
ids (mostly unknown ones: 404s) and then with the ids of a real project, mesh and job (so the
bodies reach their checks; the job is cancelled, and no worker runs); deleting operations run
after the rest, signing out last.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.projections.runner import ProjectionRunner
from core.settings import Settings
from tests.integration.conftest import BackgroundPart
from tests.integration.helpers import box_stl, poll
from tests.integration.live_server import serving

EXAMPLES = 10  # per operation and pass: some 1,500 requests in all, under a minute here
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
SIGN_OUT = ("DELETE", "/api/v1/auth/session")
# Headers that frame the HTTP message itself: a generated value there (an empty
# `content-length`) is refused by the HTTP server's parser before any route runs, with its own
# plain 400 that no OpenAPI document of the application describes.
FRAMING_HEADERS = {"content-length", "transfer-encoding", "host", "connection", "expect", "te",
                   "upgrade", "trailer"}


@pytest.fixture
def projected(prepared: Settings) -> Iterator[Settings]:
    """The read models follow the log (a mesh is found once projected); no worker runs, so
    the jobs the fuzzing asks for stay queued and cost no CPU."""
    assert prepared.database_url is not None
    runner = ProjectionRunner(prepared.database_url)
    part = BackgroundPart("projections", runner.run)
    yield prepared
    part.stop()
    runner.close()


# schemathesis draws from `random` inside its strategies, which hypothesis flags as deprecated
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_every_operation_answers_within_its_schema(projected: Settings, make_account) -> None:
    admin = make_account("fuzzer", admin=True)
    with serving(projected) as base, requests.Session() as session:
        schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json")
        schema.validate()
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 40
        ids = _real_ids(session, base, admin.headers)

        def order(operation: Any) -> tuple[bool, bool]:
            key = (operation.method.upper(), operation.path)
            return key == SIGN_OUT, operation.method.upper() == "DELETE"

        tried = []
        for operation in sorted(operations, key=order):
            known = {name: value for name, value in ids.items()
                     if f"{{{name}}}" in operation.path}
            for mode, path_parameters in _passes(known):
                _fuzz(operation, mode, path_parameters, lambda case: case.call_and_validate(
                    session=session, headers=admin.headers, checks=CHECKS, timeout=60))
            tried.append(f"{operation.method.upper()} {operation.path}")
    assert SIGN_OUT[0] + " " + SIGN_OUT[1] in tried


def _passes(known: dict[str, str]) -> list[tuple[GenerationMode, dict[str, str]]]:
    """Valid and invalid requests, with generated ids and then with real ones."""
    id_sets = [{}, known] if known else [{}]
    return [(mode, ids) for ids in id_sets
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]


def _fuzz(operation: Any, mode: GenerationMode, path_parameters: dict[str, str],
          call: Callable[[Any], object]) -> None:
    # On a real mesh, ?wait=true would hold the request until a job that no worker runs ends.
    waits = path_parameters and "wait" in {p.name for p in operation.query}
    strategy = operation.as_strategy(mode, path_parameters=path_parameters or None,
                                     query={"wait": "false"} if waits else None)

    @given(case=strategy)
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        for name in [h for h in case.headers or {} if h.lower() in FRAMING_HEADERS]:
            del case.headers[name]
        call(case)

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # nothing of it can be made invalid (no parameter, no body): its valid calls cover it


def _real_ids(session: requests.Session, base: str, headers: dict[str, str]) -> dict[str, str]:
    """A project with a mesh and a queued analysis job, for the operations' path ids."""
    project = session.post(f"{base}/api/v1/projects", json={"name": "Fuzzed"},
                           headers=headers).json()["id"]
    mesh = session.post(f"{base}/api/v1/projects/{project}/assets",
                        params={"filename": "box.stl"}, data=box_stl(), headers=headers)
    assert mesh.status_code == 201, mesh.text
    mesh_id = mesh.json()["id"]
    job = poll(lambda: session.post(f"{base}/api/v1/meshes/{mesh_id}/analysis",
                                    headers=headers), lambda r: r.status_code != 404)
    assert job.status_code == 202, job.text
    job_id = job.json()["job_id"]
    # ended, so that following its events (a stream until the job ends) answers at once
    assert session.delete(f"{base}/api/v1/jobs/{job_id}", headers=headers).status_code == 204
    return {"project_id": project, "asset_id": mesh_id, "job_id": job_id}
