"""The studio's application service: the only way anything writes an event.

Methods take plain values and return ids and plain values. Each command loads its aggregate,
applies the command and saves; a concurrent writer that saved the same aggregate first makes the
save fail on the aggregate version, so the command is retried on fresh state (optimistic
concurrency) a bounded number of times.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, PersistenceError
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from core.errors import ConfigurationError, Conflict, EventStoreError, NotFound
from core.events.job import Job
from core.events.job_kinds import command_subject
from core.events.project import Asset, Project
from core.events.roles import Role

A = TypeVar("A", Project, Job)


class _VersionClash(Exception):
    """Another writer saved the aggregate between our load and our save."""


def eventstore_env(database_url: str, **extra: str) -> dict[str, str]:
    """The eventsourcing library's PostgreSQL settings for one database URL."""
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise ConfigurationError(f"not a PostgreSQL URL: {database_url!r}")
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parts.hostname,
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_MAX_OVERFLOW": "4",
        "IS_SNAPSHOTTING_ENABLED": "y",
    }
    return env | extra


class Studio(Application[UUID]):
    name = "Studio"
    snapshotting_intervals = {Project: 50, Job: 20}

    @classmethod
    def connect(cls, database_url: str) -> Studio:
        return cls(env=eventstore_env(database_url))

    # -- projects ---------------------------------------------------------------------------

    def create_project(self, name: str, actor: str) -> UUID:
        project = Project(name=Project.check_name(name), owner=actor, actor=actor)
        self._save(project)
        return project.id

    def rename_project(self, project_id: UUID, name: str, actor: str) -> int:
        return self._command(project_id, Project, lambda p: p.rename(name, actor))

    def invite(self, project_id: UUID, user: str, role: Role, actor: str) -> int:
        return self._command(project_id, Project, lambda p: p.invite(user, role, actor))

    def remove_member(self, project_id: UUID, user: str, actor: str) -> int:
        return self._command(project_id, Project, lambda p: p.remove_member(user, actor))

    def record_asset(self, project_id: UUID, asset: Asset, actor: str) -> int:
        return self._command(project_id, Project, lambda p: p.record_asset(asset, actor))

    def delete_project(self, project_id: UUID, actor: str) -> int:
        return self._command(project_id, Project, lambda p: p.delete(actor))

    def project(self, project_id: UUID) -> Project:
        project = self._load(project_id, Project)
        if project.deleted:
            raise NotFound(f"project {project_id} was deleted")
        return project

    # -- jobs -------------------------------------------------------------------------------

    def request_job(
        self,
        project_id: UUID,
        kind: str,
        inputs: dict[str, Any],
        params: dict[str, Any],
        actor: str,
    ) -> UUID:
        command_subject(kind)  # refuses unknown kinds before anything is written
        job = Job(
            project_id=str(project_id),
            kind=kind,
            inputs=inputs,
            params=params,
            cache_key=cache_key(kind, inputs, params),
            actor=actor,
        )
        self._save(job)
        return job.id

    def start_job(self, job_id: UUID, worker: str, device: str) -> Job:
        self._command(job_id, Job, lambda j: j.start(worker, device))
        return self.job(job_id)

    def complete_stage(
        self, job_id: UUID, stage: str, blob: str | None, stats: dict[str, Any]
    ) -> int:
        return self._command(job_id, Job, lambda j: j.complete_stage(stage, blob, stats))

    def succeed_job(self, job_id: UUID, result: dict[str, Any]) -> int:
        return self._command(job_id, Job, lambda j: j.succeed(result))

    def fail_job(self, job_id: UUID, reason: str, retryable: bool, actor: str) -> int:
        return self._command(job_id, Job, lambda j: j.fail(reason, retryable, actor))

    def cancel_job(self, job_id: UUID, actor: str) -> int:
        return self._command(job_id, Job, lambda j: j.cancel(actor))

    def job(self, job_id: UUID) -> Job:
        return self._load(job_id, Job)

    # -- plumbing ---------------------------------------------------------------------------

    def max_position(self) -> int:
        """The newest notification id in the log (0 when empty)."""
        return self.recorder.max_notification_id() or 0

    def _command(self, aggregate_id: UUID, cls: type[A], apply: Callable[[A], None]) -> int:
        @retry(
            retry=retry_if_exception_type(_VersionClash),
            stop=stop_after_attempt(8),
            wait=wait_random_exponential(multiplier=0.005, max=0.2),
            reraise=True,
        )
        def attempt() -> int:
            aggregate = self._load(aggregate_id, cls)
            apply(aggregate)
            return self._save(aggregate)

        try:
            return attempt()
        except _VersionClash:
            raise Conflict(f"{cls.__name__} {aggregate_id} is changing too fast; retry") from None

    def _load(self, aggregate_id: UUID, cls: type[A]) -> A:
        try:
            aggregate: object = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"{cls.__name__.lower()} {aggregate_id} not found") from None
        except PersistenceError as e:
            raise EventStoreError(f"could not load {aggregate_id}: {e}") from e
        if not isinstance(aggregate, cls):
            raise NotFound(f"{cls.__name__.lower()} {aggregate_id} not found")
        return aggregate

    def _save(self, aggregate: Project | Job) -> int:
        """Save pending events; returns the log position of the last one (0 if none)."""
        try:
            recordings = self.save(aggregate)
        except IntegrityError as e:
            raise _VersionClash(str(e)) from e
        except PersistenceError as e:
            raise EventStoreError(f"could not save {aggregate.id}: {e}") from e
        last = recordings[-1].notification.id if recordings else None
        return last or 0


def cache_key(kind: str, inputs: dict[str, Any], params: dict[str, Any]) -> str:
    """Equal kind, inputs and parameters give equal keys: the dedup cache is a lookup by it."""
    canonical = json.dumps([kind, inputs, params], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


