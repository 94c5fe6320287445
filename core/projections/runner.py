"""Runs every projection against the live log until told to stop.

The library's :class:`~eventsourcing.projection.ProjectionRunner` gives each projection its own
subscription (LISTEN/NOTIFY, gap-free in notification order) and processing thread; this module
only starts them side by side and surfaces the first error, so a crashed projection takes the
process down and its supervisor restarts it from the tracked position.
"""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack

from eventsourcing.projection import ProjectionRunner

from core.events.studio import Studio, eventstore_env
from core.projections.registry import READ_MODELS

log = logging.getLogger(__name__)


def run_projections(database_url: str, stop: threading.Event, poll: float = 0.5) -> None:
    """Block until ``stop`` is set; re-raise the first error of any projection."""
    env = eventstore_env(database_url)
    with ExitStack() as stack:
        runners = [
            stack.enter_context(
                ProjectionRunner(
                    application_class=Studio,
                    projection_class=model.projection,
                    view_class=model.view,
                    env=env,
                )
            )
            for model in READ_MODELS
        ]
        log.info("projections running: %s", ", ".join(m.name for m in READ_MODELS))
        while not stop.is_set():
            for runner in runners:
                if runner.is_interrupted.is_set():
                    runner.run_forever(timeout=0)  # raises the runner's error, if any
                    return
            stop.wait(poll)
