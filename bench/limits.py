"""What the rate limiter costs and how exactly it holds, on the stack ``orfeas up`` starts plus a
second API process on the same database (two nodes sharing one limit).

- **Decision cost**: p50/p99 microseconds of one limiter decision (``Limits.take``: one
  ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` that also reads the user's tier and its
  limits), beside its peer measured in the same run: a ``SELECT 1`` round trip on the same
  pool, the floor any PostgreSQL-shared limiter pays.
- **Accuracy**: a user's request rate set (as an admin sets it) to ``q`` per ``w`` seconds;
  ``GET /api/v1/me`` (the cheapest limited route: the token check, the limiter's decision and a
  few fields) sent on a fixed schedule of 500 requests/s, alternating between the two API
  processes, by :data:`PROCESSES` client processes (and an h11 client: httpx cost 3.3 ms of CPU a
  request, more than the API's 1.4 ms, so the clients were the limit). The requests let
  through are printed beside what an exact GCRA lets through at the same send times (one
  process, no network); the goal is within 1 %. The rate the schedule really kept (sent and
  answered per second, and how late sends were) is printed too: on a loaded machine it is
  the honest figure, whatever was asked.

``python -m bench.limits`` (``--quick``: fewer decisions and a shorter run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h11
import httpx
import psutil
from psycopg_pool import AsyncConnectionPool

from bench.collab import cpu_seconds, postgres_processes
from bench.harness import ROOT, Table, orfeas_up, percentile
from core.limits import Limits, Policy, RateLimited
from core.settings import Settings
from infra.admin import create_user
from infra.embedded.ports import free_port

RATE = 500.0  # requests per second, both nodes together
PROCESSES = 2  # client processes sharing the schedule
SENDERS = 32  # requests in flight at most, per client process


@dataclass(frozen=True)
class Plan:
    decisions: int
    seconds: float
    quota: int
    window_s: int


QUICK = Plan(decisions=1_000, seconds=6.0, quota=150, window_s=6)
FULL = Plan(decisions=10_000, seconds=30.0, quota=600, window_s=30)


async def decision_costs(database_url: str, count: int) -> tuple[list[float], list[float]]:
    """Microseconds per decision, and per ``SELECT 1``, alternating on one pool."""
    async with AsyncConnectionPool(database_url, min_size=1, max_size=1,
                                   kwargs={"autocommit": True}) as pool:
        limits = Limits(pool)
        decide, floor = [], []
        for n in range(count):
            start = time.perf_counter()
            with contextlib.suppress(RateLimited):  # a refusal is a decision as well
                await limits.take(f"bench-{n % 100}", Policy.BILLABLE, "bench")
            decide.append((time.perf_counter() - start) * 1e6)
            start = time.perf_counter()
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
            floor.append((time.perf_counter() - start) * 1e6)
        async with pool.connection() as conn:  # leave no bench rows behind
            await conn.execute("DELETE FROM limits_gcra WHERE user_id LIKE 'bench-%'")
    return decide, floor


def ideal_allowed(times: list[float], quota: int, window_s: float) -> int:
    """How many of requests sent at ``times`` an exact GCRA of ``quota`` per ``window_s``
    lets through (the same algorithm, one clock, nothing in between)."""
    interval, tat, allowed = window_s / quota, float("-inf"), 0
    for t in times:
        candidate = max(tat, t) + interval
        if candidate - t <= window_s:
            tat, allowed = candidate, allowed + 1
    return allowed


@dataclass(frozen=True)
class Flood:
    """One run of the schedule: per request (in schedule order) its send time and how late
    it was sent (seconds from the start), when its answer came, and its status."""

    sent: list[float]
    late: list[float]
    answered: list[float]
    statuses: list[int]
    client_cpu_s: float = 0.0


class Keepalive:
    """One HTTP/1.1 keep-alive connection driven by h11 on asyncio streams: a few tens of
    microseconds of client CPU per request, where httpx took 3.3 ms here, so that the clients
    do not eat the CPU the API processes are measured on."""

    def __init__(self, url: str, token: str) -> None:
        parsed = httpx.URL(url)
        self._host, self._port = parsed.host, parsed.port or 80
        self._headers = [("Host", f"{self._host}:{self._port}"),
                         ("Authorization", f"Bearer {token}")]
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._http = h11.Connection(h11.CLIENT)

    async def get(self, path: str) -> int:
        if self._streams is None or self._http.our_state is h11.MUST_CLOSE:
            await self.close()
            self._streams = await asyncio.open_connection(self._host, self._port)
            self._http = h11.Connection(h11.CLIENT)
        reader, writer = self._streams
        writer.write((self._http.send(h11.Request(method="GET", target=path,
                                                  headers=self._headers)) or b"")
                     + (self._http.send(h11.EndOfMessage()) or b""))
        status = 0
        while True:
            event = self._http.next_event()
            if event is h11.NEED_DATA:
                self._http.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the server closed the connection")
        if self._http.our_state is h11.DONE and self._http.their_state is h11.DONE:
            self._http.start_next_cycle()
        return status

    async def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def _send_share(urls: list[str], token: str, rate: float, count: int, start: float,
                      share: int, shares: int) -> Flood:
    """Requests ``share``, ``share + shares``, ... of the schedule (request ``n`` due at
    ``start + n / rate`` on the machine's monotonic clock, which every process shares),
    ``GET /api/v1/me`` round-robin over ``urls``, by :data:`SENDERS` senders (one
    connection to each node apiece) each taking the next due request."""
    mine = list(range(share, count, shares))
    sent, late, answered = [0.0] * len(mine), [0.0] * len(mine), [0.0] * len(mine)
    statuses = [0] * len(mine)
    following = iter(enumerate(mine))
    cpu_before = time.process_time()

    async def sender() -> None:
        connections = [Keepalive(u, token) for u in urls]
        try:
            for k, n in following:  # one iterator shared by every sender: each sent once
                due = start + n / rate
                if (delay := due - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
                now = time.monotonic()
                sent[k], late[k] = now - start, max(0.0, now - due)
                connection = connections[n % len(connections)]
                try:
                    statuses[k] = await asyncio.wait_for(connection.get("/api/v1/me"), 30)
                except (OSError, TimeoutError, h11.ProtocolError):
                    statuses[k] = -1
                    await connection.close()
                answered[k] = time.monotonic() - start
        finally:
            for connection in connections:
                await connection.close()

    await asyncio.gather(*(sender() for _ in range(SENDERS)))
    return Flood(sent, late, answered, statuses, time.process_time() - cpu_before)


def _share_process(args: tuple[list[str], str, float, int, float, int, int]) -> Flood:
    return asyncio.run(_send_share(*args))


def flood(urls: list[str], token: str, rate: float, seconds: float,
          processes: int = PROCESSES) -> Flood:
    """The schedule of ``rate * seconds`` requests, shared by ``processes`` client processes
    (each its own interpreter: one Python client cannot send 500 requests/s), merged back
    into schedule order."""
    count = int(rate * seconds)
    start = time.monotonic() + 1.0  # every process has started its loop by then
    jobs = [(urls, token, rate, count, start, p, processes) for p in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as workers:
        shares = workers.map(_share_process, jobs)
    merged = Flood([0.0] * count, [0.0] * count, [0.0] * count, [0] * count,
                   sum(share.client_cpu_s for share in shares))
    for p, share in enumerate(shares):
        for k, n in enumerate(range(p, count, processes)):
            merged.sent[n], merged.late[n] = share.sent[k], share.late[k]
            merged.answered[n], merged.statuses[n] = share.answered[k], share.statuses[k]
    return merged


@contextmanager
def second_api(state: dict[str, Any], folder: Path) -> Iterator[tuple[str, int]]:
    """Another ``orfeas api`` process on the running studio's services."""
    port = free_port()
    env = os.environ | state["settings"]
    with (folder / "api2.log").open("wb") as log, subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "api", "--port", str(port)], cwd=ROOT, env=env,
            stdout=log, stderr=subprocess.STDOUT) as api:
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if api.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the second API did not start:\n" + (
                        folder / "api2.log").read_text(errors="replace")[-3000:])
                time.sleep(0.3)
            yield url, api.pid
        finally:
            api.terminate()
            api.wait(timeout=30)


class CpuMeter:
    """CPU seconds groups of processes used between :meth:`start` and :meth:`stop` (a
    process that started meanwhile, a new PostgreSQL backend, from zero): what each request
    costs the stack, which the machine's other load does not blur as a rate does."""

    def __init__(self, groups: dict[str, Callable[[], list[psutil.Process]]]) -> None:
        self._groups = groups
        self._before: dict[int, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> None:
        self._before = {p.pid: cpu_seconds([p]) for find in self._groups.values()
                        for p in find()}

    def stop(self) -> None:
        self.used = {name: sum(cpu_seconds([p]) - self._before.get(p.pid, 0.0) for p in find())
                     for name, find in self._groups.items()}


def _token(url: str, username: str, password: str) -> str:
    signed = httpx.post(f"{url}/api/v1/auth/tokens", timeout=60,
                        json={"username": username, "password": password})
    signed.raise_for_status()
    return str(signed.json()["token"])


def run(plan: Plan, rate: float = RATE) -> None:
    with tempfile.TemporaryDirectory(prefix="orfeas-limits-") as name:
        folder = Path(name)
        print("starting orfeas up ...", flush=True)
        with orfeas_up(folder) as state:
            database_url = state["settings"]["ORFEAS_DATABASE_URL"]
            decide, floor = asyncio.run(decision_costs(database_url, plan.decisions))
            cost = Table(f"limiter decision cost ({plan.decisions} decisions, one connection)",
                         ["what", "p50 us", "p99 us"])
            cost.add("Limits.take (GCRA upsert)", percentile(decide, 50), percentile(decide, 99))
            cost.add("peer: SELECT 1 round trip", percentile(floor, 50), percentile(floor, 99))
            cost.print()

            settings = Settings(data_dir=folder)
            create_user(settings, "bench-admin", "bench-admin-pw", is_admin=True, email=None)
            create_user(settings, "bench-user", "bench-user-pw", is_admin=False, email=None)
            admin = _token(state["url"], "bench-admin", "bench-admin-pw")
            user = _token(state["url"], "bench-user", "bench-user-pw")
            headers = {"Authorization": f"Bearer {admin}"}
            free = httpx.get(f"{state['url']}/api/v1/admin/limits", headers=headers,
                             timeout=30).json()["tiers"]["free"]
            httpx.put(f"{state['url']}/api/v1/admin/limits/free", headers=headers, timeout=30,
                      json=free | {"requests_per_window": plan.quota,
                                   "requests_window_s": plan.window_s}).raise_for_status()
            with second_api(state, folder) as (other, other_pid):
                apis = [psutil.Process(state["processes"]["api"]), psutil.Process(other_pid)]
                postmaster = state["services"]["postgres"]
                meter = CpuMeter({"API processes": lambda: apis,
                                  "PostgreSQL": lambda: postgres_processes(postmaster)})
                meter.start()
                result = flood([state["url"], other], user, rate, plan.seconds)
                meter.stop()
            statuses = result.statuses
            allowed = sum(1 for s in statuses if s == 200)
            refused = sum(1 for s in statuses if s == 429)
            sent_order = sorted(result.sent)
            ideal = ideal_allowed(sent_order, plan.quota, plan.window_s)
            span = max(sent_order[-1], 1e-9)
            accuracy = Table(
                f"accuracy: {plan.quota} requests per {plan.window_s} s, two API processes, "
                f"{len(statuses)} requests, {rate:.0f}/s asked",
                ["what", "allowed", "refused", "other", "error vs exact"])
            accuracy.add("two nodes, PostgreSQL GCRA", allowed, refused,
                         len(statuses) - allowed - refused,
                         f"{100 * (allowed - ideal) / ideal:+.2f} %")
            accuracy.add("peer: exact GCRA, same send times", ideal, len(statuses) - ideal, 0,
                         "+0.00 %")
            accuracy.print()
            kept = Table(f"the schedule as kept ({PROCESSES} client processes x {SENDERS}"
                         " connections)", ["what", "per s", "late p50 ms", "late p99 ms"])
            kept.add("asked", rate, 0.0, 0.0)
            kept.add("sent", len(statuses) / span, 1000 * percentile(result.late, 50),
                     1000 * percentile(result.late, 99))
            kept.add("answered", len(statuses) / max(max(result.answered), 1e-9), "", "")
            kept.print()
            costs = meter.used | {"client processes": result.client_cpu_s}
            cpu = Table(f"CPU per request ({len(statuses)} requests)",
                        ["where", "CPU ms per request"])
            for where, seconds in costs.items():
                cpu.add(where, 1000 * seconds / len(statuses))
            server_ms = 1000 * (meter.used["API processes"] + meter.used["PostgreSQL"]) / len(
                statuses)
            total_ms = server_ms + 1000 * result.client_cpu_s / len(statuses)
            cpu.add("all", total_ms)
            cpu.print()
            cpus = os.cpu_count() or 1
            print(f"{cpus} CPUs all to this stack would answer at most {1000 * cpus / total_ms:.0f}"
                  f" requests/s with these clients on them, {1000 * cpus / server_ms:.0f}/s with"
                  " the clients elsewhere", flush=True)
            print(f"load average during the run: {os.getloadavg()[0]:.1f} on "
                  f"{os.cpu_count()} CPUs", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.limits", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer decisions, a shorter run")
    parser.add_argument("--rate", type=float, default=RATE,
                        help=f"requests per second to ask for (default {RATE:.0f})")
    args = parser.parse_args(argv)
    print(f"bench.limits on {os.cpu_count()} CPUs, python {sys.version.split()[0]}", flush=True)
    run(QUICK if args.quick else FULL, args.rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
