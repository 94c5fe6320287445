"""The embedded stack: the backing services a :class:`Settings` leaves unset, started together."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Protocol

from core.errors import ServiceError
from core.settings import S3Settings, Settings
from infra.embedded.nats import EmbeddedNats
from infra.embedded.postgres import EmbeddedPostgres
from infra.embedded.s3 import EmbeddedS3
from infra.process import ChildProcess


class EmbeddedService(Protocol):
    name: str
    log_path: Path

    @property
    def process(self) -> ChildProcess | None: ...

    def start(self) -> object: ...

    def stop(self) -> None: ...


class EmbeddedStack:
    """Starts PostgreSQL, NATS and S3 under ``settings.data_dir`` where ``settings`` has no address.

    Use it as a context manager (``with EmbeddedStack(settings) as full_settings:``) or call
    :meth:`start` and :meth:`stop`. The services start concurrently, each in its own thread,
    because each spends most of its start-up waiting (initdb, JetStream recovery, the SeaweedFS
    master election). Data lives in ``data_dir/{postgres,nats,s3}``, logs in ``data_dir/logs``.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        fast: bool = False,
        on_progress: Callable[[str], None] | None = None,
    ):
        self.settings = settings
        data_dir = Path(settings.data_dir).absolute()
        logs = data_dir / "logs"
        self.postgres = (
            None
            if settings.database_url
            else EmbeddedPostgres(data_dir / "postgres", log_path=logs / "postgres.log", fast=fast)
        )
        self.nats = (
            None
            if settings.nats_url
            else EmbeddedNats(data_dir / "nats", log_path=logs / "nats.log")
        )
        self.s3 = None if settings.s3 else EmbeddedS3(data_dir / "s3", log_path=logs / "s3.log")
        self._on_progress = on_progress
        self._progress_lock = threading.Lock()

    @property
    def services(self) -> list[EmbeddedService]:
        """The services this stack runs, in start order (it stops them in reverse)."""
        return [s for s in (self.postgres, self.nats, self.s3) if s is not None]

    def start(self) -> Settings:
        """Start the missing services and return ``settings`` with their addresses filled in.

        If one fails, the others are stopped and a :class:`ServiceError` is raised that names
        every failed service with the tail of its log.
        """
        services = self.services
        if not services:
            return self.settings
        try:
            with ThreadPoolExecutor(len(services), thread_name_prefix="orfeas-start") as pool:
                futures = [pool.submit(self._start_one, service) for service in services]
                errors = [f.exception() for f in futures]
        except BaseException:
            self.stop()
            raise
        failures = [e for e in errors if e is not None]
        if failures:
            self.stop()
            if len(failures) == 1:
                raise failures[0]
            raise ServiceError("\n\n".join(str(e) for e in failures)) from failures[0]
        return self.settings.replace(
            database_url=self.postgres.url if self.postgres else self.settings.database_url,
            nats_url=self.nats.url if self.nats else self.settings.nats_url,
            s3=self.s3.settings if self.s3 else self.settings.s3,
        )

    def stop(self) -> None:
        """Stop every started service, in reverse start order; safe to call more than once."""
        for service in reversed(self.services):
            if service.process is not None:
                self._report(f"{service.name}: stopping")
                service.stop()

    def __enter__(self) -> Settings:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _start_one(self, service: EmbeddedService) -> None:
        self._report(f"{service.name}: starting")
        began = time.monotonic()
        address = service.start()
        if isinstance(address, S3Settings):
            address = address.endpoint
        self._report(f"{service.name}: ready on {address} ({time.monotonic() - began:.1f}s)")

    def _report(self, line: str) -> None:
        if self._on_progress is not None:
            with self._progress_lock:
                self._on_progress(line)
