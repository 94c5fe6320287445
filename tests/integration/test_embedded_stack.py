"""The embedded stack runs real servers, keeps their data, and leaves no process behind."""

from __future__ import annotations

import asyncio
import io
import os
import pwd
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nats
import psutil
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from core.errors import ServiceError
from core.settings import Settings
from infra.embedded import EmbeddedStack
from infra.embedded.postgres import EmbeddedPostgres
from infra.process import ChildProcess, wait_until
from tests.conftest import minio_client

REPO = Path(__file__).resolve().parents[2]


def _process_tree(stack: EmbeddedStack) -> list[psutil.Process]:
    """Every running server process of ``stack``, PostgreSQL's backends included."""
    tree = []
    for service in stack.services:
        assert service.process is not None
        parent = psutil.Process(service.process.pid)
        tree += [parent, *parent.children(recursive=True)]
    return tree


def _write_data(settings: Settings) -> None:
    database_url, nats_url, s3 = settings.require_services()
    with psycopg.connect(database_url) as conn:
        conn.execute("CREATE TABLE kept (note text)")
        conn.execute("INSERT INTO kept VALUES ('written before the restart')")

    async def add_stream() -> None:
        client = await nats.connect(nats_url)
        jetstream = client.jetstream()
        await jetstream.add_stream(name="kept", subjects=["kept.>"])
        await jetstream.publish("kept.one", b"event")
        await client.close()

    asyncio.run(add_stream())
    minio_client(s3).put_object(s3.bucket, "kept/blob", io.BytesIO(b"mesh bytes"), 10)


def _read_data(settings: Settings) -> tuple[str, int, bytes]:
    database_url, nats_url, s3 = settings.require_services()
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT note FROM kept").fetchone()
    assert row is not None

    async def stream_messages() -> int:
        client = await nats.connect(nats_url)
        info = await client.jetstream().stream_info("kept")
        await client.close()
        return info.state.messages

    messages = asyncio.run(stream_messages())
    response = minio_client(s3).get_object(s3.bucket, "kept/blob")
    try:
        blob = response.read()
    finally:
        response.close()
        response.release_conn()
    return row[0], messages, blob


def test_servers_answer_stop_cleanly_and_keep_data_across_restarts(tmp_path: Path) -> None:
    progress: list[str] = []
    stack = EmbeddedStack(Settings(data_dir=tmp_path), fast=True, on_progress=progress.append)
    with stack as settings:
        database_url, nats_url, s3 = settings.require_services()
        with psycopg.connect(database_url) as conn:
            version = conn.execute("SELECT version()").fetchone()
        assert version is not None and version[0].startswith("PostgreSQL 18")

        async def account_info() -> None:
            client = await nats.connect(nats_url)
            await client.jetstream().account_info()
            await client.close()

        asyncio.run(account_info())
        _write_data(settings)
        tree = _process_tree(stack)

    assert {"postgres: starting", "nats: starting", "s3: starting"} <= set(progress)
    assert any(line.startswith("postgres: ready on postgresql://") for line in progress)
    survivors = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert survivors == []
    assert all(service.process is None for service in stack.services)
    socket_dir = Path(conninfo_to_dict(database_url)["host"])
    assert not socket_dir.exists()

    # A crashed server leaves postmaster.pid behind; here its pid is alive but no postgres.
    (tmp_path / "postgres" / "postmaster.pid").write_text(f"{os.getpid()}\n{tmp_path}\n")
    # A killed supervisor leaves the socket folder: the restart reuses it, the stop removes it.
    socket_dir.mkdir(mode=0o700)
    os.chown(socket_dir, *EmbeddedPostgres(tmp_path / "postgres").server_owner())
    with EmbeddedStack(Settings(data_dir=tmp_path), fast=True) as restarted:
        assert conninfo_to_dict(restarted.database_url or "")["host"] == str(socket_dir)
        # The keys were generated once and kept: clients configured before still work.
        assert restarted.s3 is not None and restarted.s3.access_key == s3.access_key
        assert _read_data(restarted) == ("written before the restart", 1, b"mesh bytes")


def test_a_socket_folder_someone_else_made_is_refused(tmp_path: Path) -> None:
    postgres = EmbeddedPostgres(tmp_path / "postgres")
    folder = postgres._make_socket_dir()
    assert postgres._make_socket_dir() == folder  # ours: reused
    folder.chmod(0o755)
    try:
        with pytest.raises(ServiceError, match="not a private folder"):
            postgres._make_socket_dir()
    finally:
        folder.rmdir()


def test_a_given_database_url_starts_no_postgres(tmp_path: Path, stack: Settings) -> None:
    given = Settings(data_dir=tmp_path, database_url=stack.database_url, s3=stack.s3)
    embedded = EmbeddedStack(given)
    assert embedded.postgres is None and embedded.s3 is None
    with embedded as settings:
        assert settings.database_url == stack.database_url
        assert settings.s3 == stack.s3
        assert settings.nats_url is not None and settings.nats_url != stack.nats_url
        assert [service.name for service in embedded.services] == ["nats"]
    assert not (tmp_path / "postgres").exists()


def test_each_test_gets_its_own_database_namespace_and_bucket(
    settings: Settings, stack: Settings
) -> None:
    database_url, _, s3 = settings.require_services()
    assert database_url != stack.database_url and s3.bucket != "orfeas"
    assert settings.namespace.startswith("t")
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None and conninfo_to_dict(database_url)["dbname"] == row[0]
    assert minio_client(s3).bucket_exists(s3.bucket)


def test_a_failed_start_raises_with_the_log_tail(tmp_path: Path) -> None:
    child = ChildProcess.spawn(
        ["sh", "-c", "echo 'FATAL: out of luck'; exit 3"], log_path=tmp_path / "fail.log"
    )
    with pytest.raises(ServiceError, match=r"(?s)thing: exited with code 3.*out of luck"):
        wait_until(lambda: False, timeout=10, what="thing", process=child)


def test_a_slow_start_times_out_with_the_last_error(tmp_path: Path) -> None:
    def refused() -> bool:
        raise ConnectionRefusedError("nobody listens")

    with pytest.raises(ServiceError, match=r"slow thing: not ready after 0\.3s.*nobody listens"):
        wait_until(refused, timeout=0.3, what="slow thing")


def test_terminate_escalates_to_sigkill(tmp_path: Path) -> None:
    stubborn = ChildProcess.spawn(
        ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"],
        log_path=tmp_path / "stubborn.log",
    )
    wait_until(lambda: "ready" in stubborn.log_tail(), timeout=10, what="stubborn shell")
    assert stubborn.terminate(timeout=0.5) == -signal.SIGKILL
    assert not stubborn.alive


_MIDDLE = """
import sys, threading, time
from pathlib import Path
from infra.process import ChildProcess

user = sys.argv[2] or None
# Spawned from a thread that ends at once: the child must outlive that thread.
thread = threading.Thread(target=lambda: print(
    ChildProcess.spawn(["sleep", "60"], log_path=Path(sys.argv[1]), user=user).pid, flush=True))
thread.start()
thread.join()
time.sleep(60)
"""


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


# As root, also as another user: switching uid clears the death signal unless it is set after.
_USERS = ["", *(["nobody"] if os.geteuid() == 0 and _has_user("nobody") else [])]


@pytest.mark.parametrize("user", _USERS)
def test_a_child_dies_with_its_parent(tmp_path: Path, user: str) -> None:
    middle = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_MIDDLE), str(tmp_path / "sleep.log"), user],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert middle.stdout is not None
        sleeper = psutil.Process(int(middle.stdout.readline()))
        time.sleep(0.2)  # the spawning thread has ended by now; the sleeper must still run
        assert sleeper.is_running() and sleeper.status() != psutil.STATUS_ZOMBIE
        assert sleeper.username() == (user or pwd.getpwuid(os.geteuid()).pw_name)
        middle.kill()
        middle.wait()
        sleeper.wait(timeout=5)  # raises psutil.TimeoutExpired if it outlived its parent
    finally:
        middle.kill()
        middle.wait()
