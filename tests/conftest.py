"""Fixtures shared by every test: one real embedded stack per session, isolated per test.

Nothing is mocked at the PostgreSQL, NATS and S3 boundaries (see DESIGN.md). Starting the
servers costs seconds, so one stack serves the whole session and each test gets its own
database, NATS namespace and bucket on it instead.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from minio import Minio
from minio.deleteobjects import DeleteObject

from core.settings import S3Settings, Settings
from infra.embedded import EmbeddedStack
from infra.embedded.scratch import scratch_database


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    """The session's running stack, as the settings that reach it (fast, non-durable mode).

    Its folder is not under pytest's temporary root: PostgreSQL runs as another user, and
    every pytest session started meanwhile resets that root to mode 0700, which would lock
    this session's server out of its own files.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="orfeas-test-stack-"))
    try:
        with EmbeddedStack(Settings(data_dir=data_dir), fast=True) as settings:
            yield settings
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def settings(stack: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Settings of their own for one test: a fresh database, namespace and bucket."""
    suffix = uuid.uuid4().hex[:12]
    database_url, _, s3 = stack.require_services()
    with scratch_database(database_url, "t") as url, _bucket(s3, f"t-{suffix}") as bucket:
        yield stack.replace(
            data_dir=tmp_path,
            database_url=url,
            namespace=f"t{suffix}",
            s3=S3Settings(
                endpoint=s3.endpoint,
                access_key=s3.access_key,
                secret_key=s3.secret_key,
                bucket=bucket,
                region=s3.region,
            ),
        )


def minio_client(s3: S3Settings) -> Minio:
    return Minio(
        s3.host,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        secure=s3.secure,
        region=s3.region,
    )


@contextmanager
def _bucket(s3: S3Settings, name: str) -> Iterator[str]:
    """A bucket created for the block; emptied and removed after it."""
    client = minio_client(s3)
    client.make_bucket(name)
    try:
        yield name
    finally:
        objects = client.list_objects(name, recursive=True)
        deletions = (DeleteObject(o.object_name) for o in objects if o.object_name is not None)
        errors = list(client.remove_objects(name, deletions))
        assert not errors, f"could not empty bucket {name}: {errors}"
        client.remove_bucket(name)
