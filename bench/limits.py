"""What the rate limiter costs and how exactly it holds, on the stack ``orfeas up`` starts plus a
second API process on the same database (two nodes sharing one limit).

- **Decision cost**: p50/p99 microseconds of one limiter decision (``Limits.take``: one
  ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` that also reads the user's tier and its
  limits), beside its peer measured in the same run: a ``SELECT 1`` round trip on the same
  pool, the floor any PostgreSQL-shared limiter pays.
- **Accuracy**: a user's request rate set (as an admin sets it) to ``q`` per ``w`` seconds;
  ``GET /api/v1/me`` sent at a steady 500 requests/s, alternating between the two API
  processes. The requests let through are printed beside what an exact GCRA lets through at
  the same send times (one process, no network); the goal is within 1 %.

``python -m bench.limits`` (``--quick``: fewer decisions and a shorter run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from bench.harness import ROOT, Table, orfeas_up, percentile
from core.limits import Limits, Policy
from core.settings import Settings
from infra.admin import create_user
from infra.embedded.ports import free_port

RATE = 500.0  # requests per second, both nodes together
SENDERS = 64  # requests in flight at most


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


async def flood(urls: list[str], token: str, seconds: float) -> tuple[list[float], list[int]]:
    """``GET /api/v1/me`` at :data:`RATE` per second for ``seconds``, round-robin over
    ``urls``, by :data:`SENDERS` senders each taking the next scheduled request (a fixed
    number of connections: thousands of requests queued on a client's pool stalled it);
    each request's send time and status, in schedule order."""
    count = int(RATE * seconds)
    sent: list[float] = [0.0] * count
    statuses: list[int] = [0] * count
    pool = httpx.Limits(max_connections=SENDERS, max_keepalive_connections=SENDERS)
    clients = [httpx.AsyncClient(base_url=u, timeout=30, limits=pool,
                                 headers={"Authorization": f"Bearer {token}"}) for u in urls]
    start = time.perf_counter()
    following = iter(range(count))

    async def sender() -> None:
        for n in following:  # one iterator shared by every sender: each request sent once
            delay = start + n / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[n] = time.perf_counter() - start
            response = await clients[n % len(clients)].get("/api/v1/me")
            statuses[n] = response.status_code

    try:
        await asyncio.gather(*(sender() for _ in range(SENDERS)))
    finally:
        for client in clients:
            await client.aclose()
    return sent, statuses


@contextmanager
def second_api(state: dict[str, Any], folder: Path) -> Iterator[str]:
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
            yield url
        finally:
            api.terminate()
            api.wait(timeout=30)


def _token(url: str, username: str, password: str) -> str:
    signed = httpx.post(f"{url}/api/v1/auth/tokens", timeout=60,
                        json={"username": username, "password": password})
    signed.raise_for_status()
    return str(signed.json()["token"])


def run(plan: Plan) -> None:
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
            with second_api(state, folder) as other:
                sent, statuses = asyncio.run(flood([state["url"], other], user, plan.seconds))
            allowed = sum(1 for s in statuses if s == 200)
            refused = sum(1 for s in statuses if s == 429)
            ideal = ideal_allowed(sent, plan.quota, plan.window_s)
            rate = len(sent) / max(sent[-1], 1e-9)
            accuracy = Table(
                f"accuracy: {plan.quota} requests per {plan.window_s} s, two API processes, "
                f"{len(sent)} requests over {sent[-1]:.1f} s ({rate:.0f}/s sent, "
                f"{RATE:.0f}/s asked)",
                ["what", "allowed", "refused", "other", "error vs exact"])
            accuracy.add("two nodes, PostgreSQL GCRA", allowed, refused,
                         len(statuses) - allowed - refused,
                         f"{100 * (allowed - ideal) / ideal:+.2f} %")
            accuracy.add("peer: exact GCRA, same send times", ideal, len(sent) - ideal, 0,
                         "+0.00 %")
            accuracy.print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.limits", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer decisions, a shorter run")
    args = parser.parse_args(argv)
    print(f"bench.limits on {os.cpu_count()} CPUs, python {sys.version.split()[0]}", flush=True)
    run(QUICK if args.quick else FULL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
