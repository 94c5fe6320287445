"""Geometry in a child process, so that a job over its time budget can be stopped.

Mesh libraries (pymeshfix, manifold, Embree) run long loops in C that no Python thread can
interrupt: a thread that overruns would hold the worker forever. Each job's geometry runs in
one long-lived child process instead; when a job exceeds its budget the child is killed and
replaced, the job fails with a clear reason, and the worker carries on with the next job. A
child that dies on its own (a crash in C, the kernel's OOM killer) is replaced the same way.

The child is started with ``forkserver``: forking the worker itself would copy its event loop
and NATS connection threads into the child. It is a child of the fork server, not of the
worker, so it is tied to the worker explicitly (:func:`core.lifeline.die_with`): a SIGKILLed
worker used to leave it, the fork server and the resource tracker behind (~300 MiB each time).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from core.errors import DomainError
from core.lifeline import die_with

log = logging.getLogger(__name__)

T = TypeVar("T")


class JobTimedOut(DomainError):
    """A job ran past its time budget; it fails for good (running it again would too)."""


class GeometryCrashed(RuntimeError):
    """The geometry process died under a job; the job may be retried (it may have been OOM)."""


class GeometryPool:
    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self._context = multiprocessing.get_context("forkserver")
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=1, mp_context=self._context,
                                   initializer=die_with, initargs=(os.getpid(),))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the child within the time budget."""
        started = time.perf_counter()
        future = asyncio.wrap_future(self._executor.submit(fn, *args))
        try:
            result = await asyncio.wait_for(future, self.budget_s)
            log.info("%s done in %.2f s", getattr(fn, "__name__", "job"),
                     time.perf_counter() - started)
            return result
        except TimeoutError:
            self._replace()
            raise JobTimedOut(
                f"the job ran past its time budget of {self.budget_s:g} s and was stopped"
            ) from None
        except BrokenProcessPool as e:
            self._replace()
            raise GeometryCrashed(f"the geometry process died: {e}") from e

    def _replace(self) -> None:
        """Kill the child (it may be stuck in C) and start a fresh one for the next job."""
        _stop(self._executor)
        self._executor = self._start()
        log.warning("geometry process replaced")

    def close(self) -> None:
        _stop(self._executor)


def _stop(executor: ProcessPoolExecutor) -> None:
    """Kill the executor's processes and reap them, so none is left behind as a zombie."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        process.kill()
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.join(5)
