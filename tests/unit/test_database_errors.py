"""Which psycopg errors mean "PostgreSQL is gone" (a 503 naming it) and which are a statement's
own failure (left as they are, for the code that handles them)."""

from __future__ import annotations

import asyncio
import json

import psycopg
import pytest
from psycopg import errors
from psycopg_pool import PoolTimeout
from starlette.requests import Request

from api.problems import orfeas_error
from core.database import unavailable, unreachable
from core.errors import EventStoreError


@pytest.mark.parametrize("error", [
    PoolTimeout("couldn't get a connection after 1.00 sec"),
    psycopg.OperationalError("consuming input failed: server closed the connection"),
    errors.AdminShutdown("terminating connection due to administrator command"),
    errors.CrashShutdown("terminating connection because of crash of another server process"),
    errors.CannotConnectNow("the database system is starting up"),
    errors.ConnectionFailure("connection failure"),
])
def test_a_lost_server_is_unreachable(error: Exception) -> None:
    assert unreachable(error)


@pytest.mark.parametrize("error", [
    errors.QueryCanceled("canceling statement due to statement timeout"),
    errors.LockNotAvailable("could not obtain lock"),
    errors.SerializationFailure("could not serialize access"),
    errors.UniqueViolation("duplicate key"),
    errors.UndefinedTable("relation does not exist"),
    ValueError("not a database error"),
    None,
])
def test_a_statements_own_failure_is_not(error: Exception | None) -> None:
    assert not unreachable(error)


def test_the_translation_names_postgresql_and_answers_503_with_retry_after() -> None:
    error = unavailable(PoolTimeout("couldn't get a connection after 1.00 sec"))
    assert isinstance(error, EventStoreError)
    assert str(error) == ("PostgreSQL is unavailable "
                          "(couldn't get a connection after 1.00 sec)")
    request = Request({"type": "http", "method": "GET", "path": "/api/v1/projects",
                       "headers": [], "query_string": b""})
    response = asyncio.run(orfeas_error(request, error))
    assert response.status_code == 503
    assert response.media_type == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert json.loads(bytes(response.body))["service"] == "postgres"
