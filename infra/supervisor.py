"""``orfeas up``: the embedded services, then every studio process, kept running together.

The supervisor owns one data folder (an exclusive lock on ``DATA/up.lock`` keeps a second
``up`` out) and writes ``DATA/state.json`` so that ``orfeas status`` and ``orfeas admin`` can
find what runs. A child that dies is restarted with back-off: its work is safe in PostgreSQL
and JetStream, so a restart loses nothing acknowledged. So is an embedded service (PostgreSQL,
NATS, S3): on its own ports and data folder, so the children's clients reconnect to it where
they were, and the children waiting out a back-off because it was gone start again at once.
SIGINT/SIGTERM stop the children first, then the services, and leave no process behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.request
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from core.errors import ConfigurationError, ServiceError
from core.settings import Settings
from infra.embedded.stack import EmbeddedService, EmbeddedStack
from infra.process import ChildProcess, wait_until
from infra.schema import prepare

READY_TIMEOUT_S = 90.0
MAX_BACKOFF_S = 30.0

STATE_FILE = "state.json"
LOCK_FILE = "up.lock"


@dataclass
class Part:
    """One studio process: how to start it and how it has fared."""

    name: str
    argv: list[str]
    process: ChildProcess | None = None
    pass_fds: tuple[int, ...] = ()
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default_factory=time.monotonic)


@dataclass
class ServiceRestarts:
    """How an embedded service has fared since ``up`` started it."""

    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default_factory=time.monotonic)


def backoff_for(restarts: int, started_at: float, now: float) -> tuple[float, int]:
    """Seconds to wait before the next start, and the restart count to keep: doubling from
    0.5 s up to MAX_BACKOFF_S, and from 0.5 s again after a run of a minute (it had been
    healthy, so this is a new failure, not the same one again)."""
    if now - started_at > 60:
        return 0.5, 0
    return min(MAX_BACKOFF_S, 0.5 * 2 ** min(restarts, 6)), restarts


def parts(settings: Settings, api_socket: socket.socket | None = None) -> list[Part]:
    """The studio's processes; the API serves ``api_socket`` when given (see ``_hold_port``)."""
    cli = [sys.executable, "-m", "infra.cli"]
    api = [*cli, "api", "--host", settings.host, "--port", str(settings.port)]
    fds = (api_socket.fileno(),) if api_socket is not None else ()
    return [
        Part("api", [*api, *(f"--fd={fd}" for fd in fds)], pass_fds=fds),
        Part("projections", [*cli, "projections"]),
        Part("dispatcher", [*cli, "dispatcher"]),
        Part("worker-mesh", [*cli, "worker", "mesh"]),
        Part("worker-gpu", [*cli, "worker", "gpu"]),
    ]


class Supervisor:
    def __init__(self, settings: Settings, out: TextIO = sys.stdout) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.absolute()
        self.out = out
        self._stop = threading.Event()
        self._parts: list[Part] = []
        self._lock_file: Any = None
        self._stack: EmbeddedStack | None = None
        self._env: dict[str, str] = {}
        self._state_for: tuple[Settings, str] | None = None
        self._service_restarts: dict[str, ServiceRestarts] = {}
        self._api_socket: socket.socket | None = None

    def run(self) -> int:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        self._hold_port()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: self._stop.set())
        stack = self._stack = EmbeddedStack(self.settings.replace(data_dir=self.data_dir),
                                            on_progress=self._say)
        try:
            self._say(f"starting ORFEAS Studio in {self.data_dir}")
            full = stack.start()
            if self._stop.is_set():
                return 130
            self._say("preparing tables, stream and bucket")
            prepare(full)
            if self._stop.is_set():
                return 130
            self._start_parts(full)
            url = f"http://{full.host}:{full.port}"
            if not self._wait_ready(url):
                return 130
            self._write_state(full, url)
            self._state_for = (full, url)
            self._say(f"ready: ORFEAS Studio at {url}  (Ctrl-C stops it)")
            self._watch()
            return 0
        except ServiceError as e:
            self._say(f"error: {e}")
            return 1
        finally:
            self._say("stopping")
            for part in reversed(self._parts):
                if part.process is not None:
                    part.process.terminate(timeout=15)
            stack.stop()
            if self._api_socket is not None:
                self._api_socket.close()
            with suppress(FileNotFoundError):
                (self.data_dir / STATE_FILE).unlink()
            self._say("stopped")

    # -- steps ------------------------------------------------------------------------------

    def _take_lock(self) -> None:
        self._lock_file = open(self.data_dir / LOCK_FILE, "w")  # noqa: SIM115 (held while up)
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigurationError(
                f"another `orfeas up` is running on {self.data_dir}; `orfeas status` shows it"
            ) from None

    def _hold_port(self) -> None:
        """Bind and listen on the API's port before anything starts, and keep it for the run.

        The API child inherits this socket (``--fd``): a port merely checked and let go could be
        taken by one of the embedded servers started next (they pick free ports too), and then
        /readyz would be answered by whatever holds it. Held, it is ours from the first moment,
        and an API restart never loses it.
        """
        host, port = self.settings.host, self.settings.port
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM)[0]
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
                sock.bind(address)
                sock.listen(2048)  # uvicorn's default backlog
            except OSError:
                sock.close()
                raise
        except OSError as e:
            raise ConfigurationError(
                f"port {port} on {host} is in use or unavailable ({e.strerror or e}); "
                "choose another with --port"
            ) from None
        self._api_socket = sock

    def _start_parts(self, settings: Settings) -> None:
        self._env = dict(os.environ) | settings.to_env() | {"PYTHONUNBUFFERED": "1"}
        self._parts = parts(settings, self._api_socket)
        for part in self._parts:
            self._spawn(part)
            self._say(f"{part.name}: started (pid {part.process.pid if part.process else '?'})")

    def _spawn(self, part: Part) -> None:
        part.process = ChildProcess.spawn(
            part.argv, name=part.name, env=self._env, cwd=Path.cwd(), pass_fds=part.pass_fds,
            log_path=self.data_dir / "logs" / f"{part.name}.log",
        )
        part.started_at = time.monotonic()

    def _wait_ready(self, url: str) -> bool:
        """Whether the API came up; False if a signal asked to stop meanwhile."""
        api = self._parts[0]
        self._say("api: waiting until every service answers /readyz")
        wait_until(lambda: self._stop.is_set() or _ready(url), timeout=READY_TIMEOUT_S,
                   what="api /readyz", process=api.process, interval=0.25)
        return not self._stop.is_set()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            self._watch_services()
            now = time.monotonic()
            for part in self._parts:
                if part.process is None or part.process.alive:
                    continue
                if part.next_start == 0.0:
                    code = part.process.terminate()  # ends what it left in its process group
                    backoff, part.restarts = backoff_for(part.restarts, part.started_at, now)
                    part.next_start = now + backoff
                    self._say(f"{part.name}: exited with code {code}; restarting in {backoff:g}s"
                              f" (log: {part.process.log_path})")
                elif now >= part.next_start:
                    part.restarts += 1
                    part.next_start = 0.0
                    self._spawn(part)
                    pid = part.process.pid if part.process else "?"
                    self._say(f"{part.name}: restarted (pid {pid})")
                    if self._state_for is not None:  # so `orfeas status` sees the new pid
                        self._write_state(*self._state_for)

    def _watch_services(self) -> None:
        """Restart a dead embedded service in place, with back-off, and say so. The restart
        runs here, in the watch loop (a few seconds), so a stop signal meanwhile waits for it
        and then stops the service as usual."""
        for service in self._stack.services if self._stack else []:
            process = service.process
            if process is not None and process.alive:
                continue
            now = time.monotonic()
            fared = self._service_restarts.setdefault(service.name, ServiceRestarts())
            if fared.next_start == 0.0:
                delay, fared.restarts = backoff_for(fared.restarts, fared.started_at, now)
                fared.next_start = now + delay
                how = (f"exited with code {process.returncode}" if process is not None
                       else "is not running")
                self._say(f"{service.name}: {how}; restarting in {delay:g}s"
                          f" (log: {service.log_path})")
            elif now >= fared.next_start and not self._stop.is_set():
                fared.restarts += 1
                fared.next_start = 0.0
                self._restart_service(service, fared)

    def _restart_service(self, service: EmbeddedService, fared: ServiceRestarts) -> None:
        try:
            service.stop()  # reaps the dead process, frees what it held (a socket folder)
            service.start()  # the same ports and data folder: clients reconnect
        except ServiceError as e:
            self._say(f"{service.name}: restart failed: {str(e).splitlines()[0]}")
            return
        fared.started_at = time.monotonic()
        for part in self._parts:  # those backing off because it was gone: no more waiting
            if part.next_start > fared.started_at:
                part.next_start = fared.started_at
        if self._state_for is not None:  # first, so `orfeas status` agrees with the line
            self._write_state(*self._state_for)
        pid = service.process.pid if service.process else "?"
        self._say(f"{service.name}: restarted (pid {pid})")

    def _write_state(self, settings: Settings, url: str) -> None:
        state = {
            "pid": os.getpid(),
            "url": url,
            "started_at": time.time(),
            "settings": settings.to_env(),
            "processes": {p.name: p.process.pid for p in self._parts if p.process},
            "services": {
                s.name: s.process.pid
                for s in (self._stack.services if self._stack else [])
                if s.process is not None
            },
        }
        tmp = self.data_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        os.chmod(tmp, 0o600)  # it holds the S3 keys
        tmp.replace(self.data_dir / STATE_FILE)

    def _say(self, line: str) -> None:
        print(f"[orfeas {time.strftime('%H:%M:%S')}] {line}", file=self.out, flush=True)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=3) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


def read_state(data_dir: Path) -> dict[str, Any] | None:
    """What a running ``orfeas up`` on ``data_dir`` wrote, or None if none runs there."""
    path = data_dir.absolute() / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if pid_alive(state.get("pid")) else None


def pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
