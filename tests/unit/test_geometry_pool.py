"""The geometry process: a job over its budget is stopped, and the next job still runs."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from workers.mesh.pool import GeometryCrashed, GeometryPool, JobTimedOut


def _sleep_then_answer(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _die() -> None:
    os._exit(3)  # as a crash in C or the OOM killer would end the process


def test_a_job_over_budget_is_stopped_and_the_pool_carries_on():
    async def scenario() -> None:
        pool = GeometryPool(budget_s=1.0)
        try:
            first = await pool.run(_sleep_then_answer, 0.0)
            started = time.monotonic()
            with pytest.raises(JobTimedOut, match="time budget of 1 s"):
                await pool.run(_sleep_then_answer, 60.0)
            assert time.monotonic() - started < 10  # not the 60 s the job wanted
            second = await pool.run(_sleep_then_answer, 0.0)
            assert second != first  # a fresh process replaced the stuck one
            with pytest.raises(ProcessLookupError):
                os.kill(first, 0)
        finally:
            pool.close()

    asyncio.run(scenario())


def test_a_crashed_process_is_replaced():
    async def scenario() -> None:
        pool = GeometryPool(budget_s=30.0)
        try:
            with pytest.raises(GeometryCrashed):
                await pool.run(_die)
            assert await pool.run(_sleep_then_answer, 0.0) > 0
        finally:
            pool.close()

    asyncio.run(scenario())
