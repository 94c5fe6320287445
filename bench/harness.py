"""What every benchmark here shares: one PostgreSQL server, a fresh database per measurement,
concurrent writers run against a deadline, percentiles, and plain-text tables.

A fresh database per measurement keeps one figure from inheriting another's table bloat,
snapshots or cached plans, so peers printed side by side start from the same empty state.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.embedded.ports import free_port
from infra.embedded.postgres import EmbeddedPostgres
from infra.embedded.scratch import scratch_database
from infra.supervisor import read_state

ROOT = Path(__file__).resolve().parents[1]

Writer = Callable[[], int]
"""One call appends some events and returns how many."""


@contextmanager
def postgres_server(*, durable: bool = True) -> Iterator[str]:
    """A URL on a PostgreSQL server: ``ORFEAS_DATABASE_URL`` if set, else an embedded one.

    The embedded server keeps PostgreSQL's durable defaults (fsync on) unless told otherwise,
    because commit latency is part of what an append costs in production.
    """
    configured = os.environ.get("ORFEAS_DATABASE_URL")
    if configured:
        yield configured
        return
    with tempfile.TemporaryDirectory(prefix="orfeas-bench-") as folder:
        server = EmbeddedPostgres(Path(folder) / "pg", log_path=Path(folder) / "pg.log",
                                  fast=not durable)
        url = server.start()
        try:
            yield url
        finally:
            server.stop()


@contextmanager
def orfeas_up(folder: Path, timeout: float = 300.0) -> Iterator[dict[str, Any]]:
    """``orfeas up`` on ``folder``, as a user starts the studio: embedded services with their
    durable defaults, then the API, projection runner, dispatcher and workers. Yields the
    ``state.json`` it writes once the API is ready (URL, settings, every process's pid); stops
    it (and everything it started) afterwards. Its output goes to ``folder/up.log``."""
    with (folder / "up.log").open("wb") as log, subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "up", "--data", str(folder),
             "--port", str(free_port())], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT) as up:
        try:
            deadline = time.monotonic() + timeout
            while (state := read_state(folder)) is None:
                if up.poll() is not None or time.monotonic() > deadline:
                    tail = (folder / "up.log").read_text(errors="replace")[-3000:]
                    how = "exited" if up.returncode is not None else f"not ready in {timeout} s"
                    raise RuntimeError(f"orfeas up {how}:\n{tail}")
                time.sleep(0.5)
            yield state
        finally:
            up.terminate()
            try:
                up.wait(timeout=60)
            except subprocess.TimeoutExpired:
                up.kill()


def fresh_database(server_url: str) -> AbstractContextManager[str]:
    """A new, empty database for one measurement; dropped (sessions and all) afterwards."""
    return scratch_database(server_url, "bench")


@dataclass
class WriterRun:
    """What concurrent writers achieved before their deadline."""

    events: int
    seconds: float
    errors: list[BaseException] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def run_writers(writers: Sequence[Writer], seconds: float) -> WriterRun:
    """Call each writer in its own thread, in a loop, until ``seconds`` have passed.

    All threads start together on a barrier; the clock stops when the last one returns, so a
    slow final call is counted rather than cut off.
    """
    counts = [0] * len(writers)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(writers) + 1)
    deadline = [0.0]

    def loop(index: int) -> None:
        barrier.wait()
        try:
            while time.perf_counter() < deadline[0]:
                counts[index] += writers[index]()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(len(writers))]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    deadline[0] = start + seconds
    barrier.wait()
    for thread in threads:
        thread.join()
    return WriterRun(sum(counts), time.perf_counter() - start, errors)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def timed(call: Callable[[], object]) -> float:
    """Seconds one call took."""
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


class Table:
    """A plain-text table printed at once, so a section's figures stay together in the log."""

    def __init__(self, title: str, headers: Sequence[str]) -> None:
        self.title = title
        self.headers = list(headers)
        self.rows: list[list[str]] = []

    def add(self, *cells: object) -> None:
        self.rows.append([_cell(c) for c in cells])

    def render(self) -> str:
        widths = [max(len(r[i]) for r in [self.headers, *self.rows])
                  for i in range(len(self.headers))]
        lines = [self.title, "  ".join(h.ljust(w) for h, w in zip(self.headers, widths,
                                                                   strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        for row in self.rows:
            lines.append("  ".join(c.rjust(w) if _numeric(c) else c.ljust(w)
                                   for c, w in zip(row, widths, strict=True)))
        return "\n".join(lines)

    def print(self) -> None:
        print(self.render(), flush=True)
        print(flush=True)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _numeric(cell: str) -> bool:
    return cell.replace(",", "").replace(".", "").replace("x", "").replace("-", "").isdigit()
