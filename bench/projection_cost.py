"""What the projection runner spends per live scene edit, in CPU.

The runner follows a live room as ``orfeas up`` runs it (``ProjectionRunner.run``, woken by
each append's notification): every edit is its own append, as a room commits one stock
client's update, ``--pace-ms`` apart. Edits alternate between the two a stock client makes
most: a new key under ``meta`` and an object moved (its whole map set again).

Printed: the CPU of the runner's thread (``time.thread_time``) and of every PostgreSQL process
(the appends' work included, the same in every run; read from /proc through psutil), in
milliseconds per edit, the median of ``--runs`` runs. ``--profile`` prints cProfile's view of
the runner's thread in the first run.

    .venv/bin/python -m bench.projection_cost [--edits 300] [--runs 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil
import psycopg
from pycrdt import Doc, Map, TransactionEvent

from bench.harness import Table, fresh_database, median, postgres_server
from core.events.studio import Studio
from core.projections.runner import ProjectionRunner
from core.scene import document

OBJECTS = 10


class StockClient:
    """One browser peer's document: small edits, each one transaction's update bytes."""

    def __init__(self) -> None:
        self._doc: Doc = Doc()
        self._updates: list[bytes] = []
        self._subscription = self._doc.observe(self._collect)
        self._objects = self._doc.get(document.OBJECTS, type=Map)
        self._meta = self._doc.get(document.META, type=Map)
        self._serial = 0

    def _collect(self, event: TransactionEvent) -> None:
        self._updates.append(bytes(event.update))

    def _transaction(self, edit: Callable[[], None]) -> bytes:
        self._updates.clear()
        with self._doc.transaction(origin="bench"):
            edit()
        return document.merge(self._updates)

    def seed(self) -> bytes:
        """The objects the moves then move."""
        def add() -> None:
            for i in range(OBJECTS):
                self._objects[f"obj-{i:03d}"] = Map(_object(i, 0.0))
        return self._transaction(add)

    def next_update(self) -> bytes:
        self._serial += 1
        n = self._serial
        if n % 2:
            return self._transaction(lambda: self._meta.__setitem__(f"key-{n}", n))
        return self._transaction(lambda: self._objects.__setitem__(
            f"obj-{n % OBJECTS:03d}", Map(_object(n % OBJECTS, n / 10))))


def _object(i: int, x: float) -> dict[str, Any]:
    return {"name": f"part {i}", "asset": f"asset-{i}", "blob": f"blobs/sha256/{i:064x}",
            "transform": {"position": [x, 0.0, 0.0], "rotation": [0.0, 0.0, 0.0, 1.0],
                          "scale": [1.0, 1.0, 1.0]},
            "visible": True}


def one_run(server_url: str, edits: int, pace_s: float, profile: bool) -> dict[str, float]:
    """Milliseconds of CPU per edit: the runner's thread, and PostgreSQL's (every backend)."""
    with fresh_database(server_url) as url:
        studio = Studio.connect(url)
        runner = ProjectionRunner(url)
        try:
            project = studio.create_project("cost", "bench")
            client = StockClient()
            studio.append_scene_updates(project, [(client.seed(), "bench", "ws")])
            for _ in range(20):  # warm: the scene's document is cached, code paths are hot
                studio.append_scene_updates(project, [(client.next_update(), "bench", "ws")])
            runner.catch_up()
            postgres = _postgres(runner)
            stop = threading.Event()
            spent: list[float] = []
            profiler = cProfile.Profile() if profile else None

            def follow() -> None:
                start = time.thread_time()
                if profiler is not None:
                    profiler.enable()
                runner.run(stop)
                if profiler is not None:
                    profiler.disable()
                spent.append(time.thread_time() - start)

            thread = threading.Thread(target=follow)
            pg_before = _cpu(postgres)
            thread.start()
            head = 0
            for _ in range(edits):
                head = studio.append_scene_updates(
                    project, [(client.next_update(), "bench", "ws")])
                time.sleep(pace_s)
            while _min_position(runner) < head:
                time.sleep(0.01)
            stop.set()
            thread.join()
            pg_cpu = _cpu(postgres) - pg_before
            if profiler is not None:
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        finally:
            runner.close()
            studio.close()
    return {"runner (its thread)": spent[0] * 1e3 / edits,
            "postgres (every backend, the appends' included)": pg_cpu * 1e3 / edits}


def _postgres(runner: ProjectionRunner) -> psutil.Process:
    return psutil.Process(runner._conn.info.backend_pid).parent()


def _cpu(postmaster: psutil.Process) -> float:
    """CPU seconds of the server's processes alive now (the backends of the runs' sessions
    live through the run)."""
    total = 0.0
    for process in [postmaster, *postmaster.children()]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _min_position(runner: ProjectionRunner) -> int:
    with psycopg.connect(runner._url) as conn:
        row = conn.execute("SELECT min(position) FROM rm_tracking").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.projection_cost", description=__doc__)
    parser.add_argument("--edits", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pace-ms", type=float, default=20.0, help="between two edits")
    parser.add_argument("--profile", action="store_true", help="cProfile the runner in run 1")
    args = parser.parse_args(argv)
    with postgres_server() as server_url:
        runs = [one_run(server_url, args.edits, args.pace_ms / 1e3, args.profile and i == 0)
                for i in range(args.runs)]
    table = Table(f"Projection runner CPU per live scene edit ({args.edits} edits "
                  f"{args.pace_ms:g} ms apart; median of {args.runs} runs)",
                  ["part", "CPU ms/edit"])
    for name in runs[0]:
        table.add(name, median([run[name] for run in runs]))
    table.print()


if __name__ == "__main__":
    main()
