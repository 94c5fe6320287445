"""The GPU worker's generator report, written again while it runs (a heartbeat).

The API lists a generator as available only while some worker's report of it is recent
(:func:`core.generators.list_generators`), so a worker that stops or dies drops out of the menu
within a few intervals, and one that runs for hours stays in it. Each beat asks the backends
again, so a backend that became usable (or stopped being) is reported as it is now.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg

from core.generators import HEARTBEAT_S

log = logging.getLogger(__name__)


async def keep_reporting(report: Callable[[], None], stop: asyncio.Event,
                         interval_s: float = HEARTBEAT_S) -> None:
    """Run ``report`` (blocking; in a thread) every ``interval_s`` until ``stop`` (the worker
    writes its first report itself, before it takes jobs).

    A beat that cannot reach the database is logged and the next one tried: the report going
    stale meanwhile is the honest answer while the worker cannot be seen.
    """
    while True:
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
            return
        except TimeoutError:
            pass
        try:
            await asyncio.to_thread(report)
        except psycopg.Error as e:
            log.warning("could not refresh the generator report: %s", e)
