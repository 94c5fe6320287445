"""The ``Job`` aggregate: one request for heavy work and everything that happened to it.

A job's lifecycle is an enum with checked transitions. Workers may be redelivered the same job
after a crash, so ``start`` is allowed again while a job runs (the attempt counter grows) and any
command on a finished job raises :class:`JobFinished`, which workers treat as "already done, ack".
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from eventsourcing.domain import Aggregate, event

from core.errors import Conflict, InvalidInput


class JobState(StrEnum):
    REQUESTED = "requested"
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


_ALLOWED: dict[JobState, frozenset[JobState]] = {
    JobState.REQUESTED: frozenset(
        {JobState.STARTED, JobState.FAILED, JobState.CANCELLED}
    ),
    JobState.STARTED: frozenset(
        {JobState.STARTED, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
    ),
}

STAGES = ("preview", "medium", "final")


class Reuse(StrEnum):
    """How a request was answered by a job it did not start (the dedup cache)."""

    CACHE = "cache"  # the job had already succeeded: its stages were served at once
    SINGLE_FLIGHT = "single_flight"  # the job was still queued or running: the request joined it


REUSE_ACTOR = "cache"  # who records a reuse job's results (it runs on no worker)


class JobFinished(Conflict):
    """The job already ended; a redelivered message for it has nothing left to do."""


class Job(Aggregate):
    class Requested(Aggregate.Created):
        project_id: str
        kind: str
        inputs: dict[str, Any]
        params: dict[str, Any]
        cache_key: str
        actor: str

    class Started(Aggregate.Event):
        worker: str
        device: str
        actor: str

    class StageCompleted(Aggregate.Event):
        stage: str
        blob: str | None
        stats: dict[str, Any]
        actor: str

    class Succeeded(Aggregate.Event):
        result: dict[str, Any]
        actor: str

    class Failed(Aggregate.Event):
        reason: str
        retryable: bool
        actor: str

    class Cancelled(Aggregate.Event):
        actor: str

    class SceneChanged(Aggregate.Event):
        before: dict[str, Any]
        after: dict[str, Any]
        actor: str

    class Undone(Aggregate.Event):
        actor: str

    class Reused(Aggregate.Event):
        """Stored before reuses made jobs of their own: another project's request was
        answered by this very job. Still replayed; no longer written."""

        project_id: str
        how: str
        actor: str

    class ReuseRequested(Aggregate.Created):
        """A request answered by an identical job's results instead of running again: a job
        of the requesting project (its inputs, parameters and requester), whose stages and
        result are the reused job's content-addressed blobs. ``reused_from`` is the cache's
        reference to that job, for analytics and for finishing a single-flight join; it is
        never shown, since that job may belong to another project."""

        project_id: str
        kind: str
        inputs: dict[str, Any]
        params: dict[str, Any]
        cache_key: str
        actor: str
        how: str
        reused_from: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Job)
            aggregate.reused_from = self.reused_from

    class Joined(Aggregate.Event):
        """A reuse job waits for this job: when this one ends, so does that one."""

        job_id: str
        actor: str

    # Class-level defaults, so that snapshots taken before these existed still load.
    reuses = 0
    reused_from: str | None = None  # the job whose results answer this one (a reuse job)
    joiners: tuple[str, ...] = ()  # reuse jobs waiting for this job to end

    @event(Requested)
    def __init__(
        self,
        project_id: str,
        kind: str,
        inputs: dict[str, Any],
        params: dict[str, Any],
        cache_key: str,
        actor: str,
    ) -> None:
        self.project_id = project_id
        self.kind = kind
        self.inputs = inputs
        self.params = params
        self.cache_key = cache_key
        self.requested_by = actor
        self.state = JobState.REQUESTED
        self.attempts = 0
        self.worker: str | None = None
        self.device: str | None = None
        self.stages: dict[str, dict[str, Any]] = {}
        self.result: dict[str, Any] | None = None
        self.error: str | None = None
        # What the job did to the scene: each object's value before the job first touched it
        # (None: it did not exist) and after the job last did. Undo restores ``scene_before``.
        self.scene_before: dict[str, Any] = {}
        self.scene_after: dict[str, Any] = {}
        self.undone = False

    # -- commands ---------------------------------------------------------------------------

    def start(self, worker: str, device: str) -> None:
        self._transition(JobState.STARTED)
        self._started(worker=worker, device=device, actor=worker)

    def complete_stage(self, stage: str, blob: str | None, stats: dict[str, Any]) -> None:
        if stage not in STAGES:
            raise InvalidInput(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
        self._check_running()
        self._stage_completed(stage=stage, blob=blob, stats=stats, actor=self.worker or "")

    def succeed(self, result: dict[str, Any]) -> None:
        self._transition(JobState.SUCCEEDED)
        self._succeeded(result=result, actor=self.worker or "")

    def fail(self, reason: str, retryable: bool, actor: str) -> None:
        self._transition(JobState.FAILED)
        self._failed(reason=reason, retryable=retryable, actor=actor)

    def cancel(self, actor: str) -> None:
        self._transition(JobState.CANCELLED)
        self._cancelled(actor=actor)

    def record_scene_change(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        self._check_running()
        self._scene_changed(before=before, after=after, actor=self.worker or "")

    def undo(self, actor: str) -> None:
        if not self.state.finished:
            raise Conflict(f"job {self.id} is still {self.state.value}; cancel it first")
        if self.undone:
            raise Conflict(f"job {self.id} was already undone")
        if not self.scene_before:
            raise Conflict(f"job {self.id} changed nothing that could be undone")
        self._undone(actor=actor)

    @classmethod
    def reusing(cls, source: Job, project_id: str, inputs: dict[str, Any],
                params: dict[str, Any], actor: str) -> Job:
        """A job of ``project_id`` answered by ``source``'s results: at once when ``source``
        has succeeded (a cache hit), else when it ends (a single-flight join)."""
        if source.state.finished and source.state is not JobState.SUCCEEDED:
            raise Conflict(f"job {source.id} ended without a result to reuse")
        how = Reuse.CACHE if source.state is JobState.SUCCEEDED else Reuse.SINGLE_FLIGHT
        return cls._create(cls.ReuseRequested, project_id=project_id, kind=source.kind,
                           inputs=inputs, params=params, cache_key=source.cache_key,
                           actor=actor, how=how.value, reused_from=str(source.id))

    def record_join(self, joiner: Job) -> None:
        if self.state.finished:
            raise JobFinished(f"job {self.id} already {self.state.value}")
        self._joined(job_id=str(joiner.id), actor=joiner.requested_by)

    def answer(self, source: Job, result: dict[str, Any],
               scene_before: dict[str, Any], scene_after: dict[str, Any]) -> None:
        """End this reuse job with ``source``'s stages and ``result`` (its own copy, which
        names this job's mesh), and what showing it changed in this job's scene."""
        if self.reused_from is None:
            raise Conflict(f"job {self.id} reuses no other job")
        if self.state.finished:
            raise JobFinished(f"job {self.id} already {self.state.value}")
        for stage in STAGES:
            if stage in source.stages:
                done = source.stages[stage]
                self._stage_completed(stage=stage, blob=done["blob"], stats=done["stats"],
                                      actor=REUSE_ACTOR)
        if scene_after:
            self._scene_changed(before=scene_before, after=scene_after, actor=REUSE_ACTOR)
        self._succeeded(result=result, actor=REUSE_ACTOR)

    # -- guards -----------------------------------------------------------------------------

    def _transition(self, target: JobState) -> None:
        if self.state.finished:
            raise JobFinished(f"job {self.id} already {self.state.value}")
        if target not in _ALLOWED[self.state]:
            raise Conflict(f"job {self.id}: cannot go from {self.state.value} to {target.value}")

    def _check_running(self) -> None:
        if self.state.finished:
            raise JobFinished(f"job {self.id} already {self.state.value}")
        if self.state is not JobState.STARTED:
            raise Conflict(f"job {self.id} has not started")

    # -- events -----------------------------------------------------------------------------

    @event(Started)
    def _started(self, worker: str, device: str, actor: str) -> None:
        self.state = JobState.STARTED
        self.attempts += 1
        self.worker = worker
        self.device = device

    @event(StageCompleted)
    def _stage_completed(
        self, stage: str, blob: str | None, stats: dict[str, Any], actor: str
    ) -> None:
        self.stages[stage] = {"blob": blob, "stats": stats}

    @event(Succeeded)
    def _succeeded(self, result: dict[str, Any], actor: str) -> None:
        self.state = JobState.SUCCEEDED
        self.result = result

    @event(Failed)
    def _failed(self, reason: str, retryable: bool, actor: str) -> None:
        self.state = JobState.FAILED
        self.error = reason

    @event(Cancelled)
    def _cancelled(self, actor: str) -> None:
        self.state = JobState.CANCELLED

    @event(SceneChanged)
    def _scene_changed(self, before: dict[str, Any], after: dict[str, Any], actor: str) -> None:
        for object_id, value in before.items():
            self.scene_before.setdefault(object_id, value)
        self.scene_after.update(after)

    @event(Undone)
    def _undone(self, actor: str) -> None:
        self.undone = True

    @event(Reused)
    def _reused(self, project_id: str, how: str, actor: str) -> None:
        self.reuses += 1

    @event(Joined)
    def _joined(self, job_id: str, actor: str) -> None:
        self.joiners = (*self.joiners, job_id)
