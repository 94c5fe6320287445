"""Honest availability (issue 21, item 11): a running GPU worker's generator report is a heartbeat.

Reproduction: the worker wrote its report once, at start, and the API trusted a report for 10
minutes, so after 10 minutes the menu said "inflate (no worker)" while generation still worked.
Now the worker writes it again every interval (``workers.gpu.heartbeat.keep_reporting``) and a
report counts while it is younger than a few intervals. Driven here with a short interval
against the real database: a report stays current for many times its freshness window while
the heartbeat runs, and goes stale, saying since when, once the worker stops.
"""

from __future__ import annotations

import asyncio

from psycopg_pool import AsyncConnectionPool

from core.events.job_kinds import GENERATOR_VERSIONS
from core.generators import GeneratorReport, list_generators, report_generators
from core.settings import Settings
from workers.gpu.heartbeat import keep_reporting

INTERVAL_S = 0.2
FRESH_FOR_S = 1.5  # several intervals: a beat or two late on a loaded machine still counts
WATCHED_S = 5.0  # over three times the freshness window: one report at start would lapse


async def _listed(pool: AsyncConnectionPool) -> dict[str, dict[str, object]]:
    return {g["name"]: g for g in await list_generators(pool, fresh_for_s=FRESH_FOR_S)}


def test_a_running_worker_stays_listed_and_a_stopped_one_drops_out(prepared: Settings) -> None:
    url = prepared.database_url
    assert url is not None
    report = GeneratorReport(name="inflate", version=GENERATOR_VERSIONS["inflate"],
                             available=True, reason="", device="cpu",
                             capabilities={"needs_weights": False})

    async def scenario() -> None:
        async with AsyncConnectionPool(url, open=False) as pool:
            listed = await _listed(pool)
            assert listed["inflate"]["available"] is False
            assert listed["inflate"]["reason"] == "no GPU worker has reported this generator"

            stop = asyncio.Event()
            report_generators(url, "gpu-1", [report])  # the worker's report at start
            beating = asyncio.create_task(keep_reporting(
                lambda: report_generators(url, "gpu-1", [report]), stop, INTERVAL_S))
            loop = asyncio.get_running_loop()
            watched_until = loop.time() + WATCHED_S
            samples = 0
            while loop.time() < watched_until:
                inflate = (await _listed(pool))["inflate"]
                assert inflate["available"] is True and inflate["device"] == "cpu", inflate
                samples += 1
                await asyncio.sleep(INTERVAL_S / 2)
            assert samples > 1

            stop.set()
            await beating
            while (inflate := (await _listed(pool))["inflate"])["available"]:
                await asyncio.sleep(INTERVAL_S)
            assert str(inflate["reason"]).startswith("no GPU worker has reported it for "), \
                inflate
            assert inflate["device"] is None and inflate["capabilities"] == {}

    asyncio.run(scenario())
