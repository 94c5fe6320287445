"""The studio's application service: the only way anything writes an event.

Methods take plain values and return ids and plain values. Each command loads its aggregate,
applies the command and saves; a concurrent writer that saved the same aggregate first makes the
save fail on the aggregate version, so the command is retried on fresh state (optimistic
concurrency) a bounded number of times.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from copy import deepcopy
from dataclasses import asdict, dataclass
from typing import Any, TypeVar, cast
from uuid import UUID, uuid4, uuid5

import psycopg
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    PersistenceError,
    Transcoding,
)
from eventsourcing.utils import strtobool
from psycopg.conninfo import conninfo_to_dict
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from core.crdt import document, origins, undo
from core.errors import ConfigurationError, Conflict, EventStoreError, InvalidInput, NotFound
from core.events.job import REUSE_ACTOR, Job, JobFinished, JobState, Reuse
from core.events.job_kinds import command_subject
from core.events.project import Asset, Derivation, Project, Version
from core.events.roles import Role
from core.events.scene import Scene
from core.events.schema_lock import conninfo_of, schema_lock
from core.events.store import (
    COMPACTION_INDEX,
    POSITION_INDEX,
    StudioRecorder,
    StudioRepository,
)

A = TypeVar("A", Project, Job, Scene)


class _VersionClash(Exception):
    """Another writer saved the aggregate between our load and our save."""


UNDO_REACH = 2000  # scene events searched back for the user's latest change

# Where each aggregate stood once the event at a position was stored, and the log's head, read
# in one statement so that both come from the same snapshot of the table. The row comparison
# makes it one backward probe of the position index: with "originator_id = ... AND
# notification_id <= ..." the planner may walk the log's own index backwards instead, which
# looks as cheap where there are few aggregates, and reads the whole log to reach an
# aggregate's first event. The probe's row belongs to an earlier aggregate where this one had
# no event yet.
VERSIONS_AT = (
    "WITH head AS (SELECT coalesce(max(notification_id), 0) AS position FROM studio_events)"
    " SELECT head.position AS head, a.id AS originator_id, ("
    "  SELECT CASE WHEN e.originator_id = a.id THEN e.originator_version END"
    "  FROM studio_events AS e"
    "  WHERE (e.originator_id, e.notification_id) <= (a.id, coalesce(%(at)s, head.position))"
    "  ORDER BY e.originator_id DESC, e.notification_id DESC LIMIT 1) AS version"
    " FROM head CROSS JOIN unnest(%(ids)s::uuid[]) AS a(id)"
)


def eventstore_env(database_url: str, **extra: str) -> dict[str, str]:
    """The eventsourcing library's PostgreSQL settings for one database URL."""
    try:  # libpq's own parser: a host may also come as ``?host=/socket/folder``
        parts = conninfo_to_dict(database_url)
    except psycopg.ProgrammingError as e:
        reason = str(e).strip()
        raise ConfigurationError(f"not a PostgreSQL URL: {database_url!r} ({reason})") from None
    if not database_url.startswith(("postgresql://", "postgres://")) or not parts.get("host"):
        raise ConfigurationError(f"not a PostgreSQL URL: {database_url!r}")
    env = {
        # The library's PostgreSQL persistence, failing fast while the server is down.
        "PERSISTENCE_MODULE": "core.events.store:StudioFactory",
        "POSTGRES_DBNAME": str(parts.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(parts["host"]),
        "POSTGRES_PORT": str(parts.get("port") or 5432),
        "POSTGRES_USER": str(parts.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(parts.get("password") or ""),
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_MAX_OVERFLOW": "4",
        # Seconds to wait for a pooled connection (the library's default is 30): a request
        # that needs a database that is down answers 503 within the 2 s its client may wait.
        "POSTGRES_CONNECT_TIMEOUT": "1",
        "IS_SNAPSHOTTING_ENABLED": "y",
        # Aggregates stay in memory and are fast-forwarded with newer events on each load
        # (one query instead of snapshot plus tail); commands get deep copies, so a refused
        # command never corrupts the cache.
        "AGGREGATE_CACHE_MAXSIZE": "500",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
    }
    return env | extra


class BytesAsBase64(Transcoding):
    type = bytes
    name = "b64"

    def encode(self, obj: bytes) -> str:
        return base64.b64encode(obj).decode()

    def decode(self, data: str) -> bytes:
        return base64.b64decode(data)


class AssetAsDict(Transcoding):
    type = Asset
    name = "orfeas_asset"

    def encode(self, obj: Asset) -> dict[str, Any]:
        return asdict(obj)

    def decode(self, data: dict[str, Any]) -> Asset:
        return Asset(**data)


class VersionAsDict(Transcoding):
    type = Version
    name = "orfeas_version"

    def encode(self, obj: Version) -> dict[str, Any]:
        return asdict(obj)

    def decode(self, data: dict[str, Any]) -> Version:
        return Version(**data)


@dataclass(frozen=True)
class SceneAppend:
    position: int
    first_version: int
    last_version: int


@dataclass(frozen=True)
class ProjectState:
    """A project as it was at one log position (or now)."""

    project_id: UUID
    position: int
    name: str
    members: dict[str, str]
    scene: bytes


class Studio(Application[UUID]):
    name = "Studio"
    # Scenes are absent: their compactions are their snapshots (see core.events.store).
    snapshotting_intervals = {Project: 50, Job: 20}  # type: ignore[dict-item]
    resume_scenes = True  # False replays scenes from version 1 (the benchmark's peer does)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        for transcoding in (BytesAsBase64(), AssetAsDict(), VersionAsDict()):
            transcoder.register(transcoding)

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        if env is None or "POSTGRES_DBNAME" not in env:
            raise ConfigurationError("Studio needs eventstore_env(database_url)")
        with schema_lock(conninfo_of(env)):  # the library creates its tables and functions here
            super().__init__(env)
            self._create_indexes()

    @classmethod
    def connect(cls, database_url: str) -> Studio:
        return cls(env=eventstore_env(database_url))

    def construct_recorder(self) -> StudioRecorder:
        factory: Any = self.factory  # a PostgresFactory: __init__ insists on POSTGRES_* settings
        table = f"{self.name.lower()}_events"
        recorder = StudioRecorder(factory.datastore, events_table_name=table)
        if factory.env_create_table():
            recorder.create_table()
        return recorder

    def construct_repository(self) -> StudioRepository:
        """The library's repository as its settings describe it, with scenes resuming from
        their compactions."""
        maxsize = self.env.get(self.AGGREGATE_CACHE_MAXSIZE)
        return StudioRepository(
            self.events, snapshot_store=self.snapshots,
            cache_maxsize=int(maxsize) if maxsize else None,
            fastforward=strtobool(self.env.get(self.AGGREGATE_CACHE_FASTFORWARD, "y")),
            fastforward_skipping=strtobool(
                self.env.get(self.AGGREGATE_CACHE_FASTFORWARD_SKIPPING, "n")),
            deepcopy_from_cache=strtobool(self.env.get(self.DEEPCOPY_FROM_AGGREGATE_CACHE, "y")),
            resume_scenes=self.resume_scenes)

    def _create_indexes(self) -> None:
        datastore = self.recorder.datastore  # type: ignore[attr-defined]
        with datastore.transaction(commit=True) as curs:
            curs.execute(POSITION_INDEX)
            curs.execute(COMPACTION_INDEX)

    # -- projects ---------------------------------------------------------------------------

    def create_project(self, name: str, actor: str) -> UUID:
        project = Project(name=Project.check_name(name), owner=actor, actor=actor)
        scene = Scene(project_id=str(project.id))
        self._save(project, scene)
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

    # -- scene ------------------------------------------------------------------------------

    def append_scene_updates(
        self, project_id: UUID, updates: Sequence[tuple[bytes, str, str]]
    ) -> int:
        """Append many ``(update, actor, origin)`` in one transaction; returns the last position.

        This is the scene log's batched path: one table lock and one commit for the whole
        batch, compacting when the tail has grown long.
        """
        return self.append_scene_batch(project_id, updates).position

    def append_scene_batch(
        self, project_id: UUID, updates: Sequence[tuple[bytes, str, str]]
    ) -> SceneAppend:
        """As :meth:`append_scene_updates`, saying which scene versions the batch became."""
        scene_id = Scene.create_id(str(project_id))
        clashed = False

        @_retrying
        def attempt() -> int:
            # The room appending here is usually the scene's only writer, so the copy cached
            # by its last save is current and the load need not ask the database. If another
            # writer saved meanwhile, the insert clashes on the version and the retry loads
            # what is stored.
            nonlocal clashed
            scene = self._load(scene_id, Scene) if clashed else self._cached(scene_id, Scene)
            clashed = True
            first = scene.version + 1
            for update, actor, origin in updates:
                scene.record(update, actor, origin)
            if scene.needs_compaction:
                scene.compact(actor="server")
            position = self._save(scene)
            versions.append((first, scene.version))
            return position

        versions: list[tuple[int, int]] = []
        position = attempt()
        first, last = versions[-1]
        return SceneAppend(position, first, last)

    def scene_updates_between(self, project_id: UUID, after_version: int,
                              upto_version: int | None = None) -> list[bytes]:
        """The document changes of versions (after, upto]: updates, and compacted states
        (applying a state a doc already has changes nothing)."""
        events = self.events.get(Scene.create_id(str(project_id)), gt=after_version,
                                 lte=upto_version)
        changes = []
        for e in events:
            if isinstance(e, Scene.Updated):
                changes.append(e.update)
            elif isinstance(e, Scene.Compacted):
                changes.append(e.state)
        return changes

    def edit_scene(self, project_id: UUID, changes: dict[str, dict[str, Any] | None],
                   actor: str, origin: str) -> int:
        """Set or delete whole objects as one server-made update (used by commands)."""
        def apply(scene: Scene) -> None:
            scene.record(document.edit(scene.state, changes, origin=origin), actor, origin)
            if scene.needs_compaction:
                scene.compact(actor="server")

        return self._command(Scene.create_id(str(project_id)), Scene, apply)

    def undo_user_change(self, project_id: UUID, user: str) -> SceneAppend:
        """Take back the user's latest scene change that is not undone yet (nobody else's)."""
        return self._invert_user_change(project_id, user, redo=False)

    def redo_user_change(self, project_id: UUID, user: str) -> SceneAppend:
        """Take back the user's latest undo, if they have not edited since."""
        return self._invert_user_change(project_id, user, redo=True)

    def _invert_user_change(self, project_id: UUID, user: str, *, redo: bool) -> SceneAppend:
        scene_id = Scene.create_id(str(project_id))
        head = self._load(scene_id, Scene).version
        events = [e for e in self.events.get(scene_id, gt=max(0, head - UNDO_REACH))
                  if isinstance(e, Scene.Updated)]
        history = [undo.LoggedChange(e.originator_version, e.actor, e.origin) for e in events]
        target = (undo.undo_to_redo if redo else undo.change_to_undo)(history, user)
        if target is None:
            raise Conflict(f"nothing to {'redo' if redo else 'undo'} for you in this scene")
        change = next(e.update for e in events if e.originator_version == target.version)
        before = self._load(scene_id, Scene, version=target.version - 1).state
        later = self.scene_updates_between(project_id, target.version)
        inverse = undo.inverse(before, change, later)
        origin = (origins.redo if redo else origins.undo)(target.version)
        return self.append_scene_batch(project_id, [(inverse, user, origin)])

    def scene(self, project_id: UUID) -> Scene:
        return self._load(Scene.create_id(str(project_id)), Scene)

    # -- versions and time travel ---------------------------------------------------------

    def tag_version(self, project_id: UUID, message: str, actor: str) -> tuple[str, int]:
        """Name the current log position; returns the version id and that position."""
        version_id = str(uuid4())
        position = self.max_position()
        self._command(project_id, Project,
                      lambda p: p.tag_version(version_id, position, message, actor))
        return version_id, position

    def state_at(self, project_id: UUID, position: int | None = None) -> ProjectState:
        """The project and its scene as they were once the event at ``position`` was stored."""
        scene_id = Scene.create_id(str(project_id))
        head, versions = self._versions_at([project_id, scene_id], position)
        if position is None:
            position = head
        if position < 1 or position > head:
            raise InvalidInput(f"position {position} is outside the log (1..{head})")
        project_version = versions[project_id]
        if project_version is None:
            raise NotFound(f"project {project_id} did not exist at position {position}")
        project = self._load_version(project_id, Project, project_version)
        if project.deleted:
            raise NotFound(f"project {project_id} was deleted at position {position}")
        scene_version = versions[scene_id]
        scene = b"" if scene_version is None else self._load_version(
            scene_id, Scene, scene_version).state
        return ProjectState(project_id, position, project.name, dict(project.members), scene)

    def project_at(self, project_id: UUID, position: int | None = None) -> ProjectState:
        """The project as :meth:`state_at` gives it but with its scene left out (``b""``):
        for a caller that reads the scene elsewhere (the scene history read model)."""
        head, versions = self._versions_at([project_id], position)
        if position is None:
            position = head
        if position < 1 or position > head:
            raise InvalidInput(f"position {position} is outside the log (1..{head})")
        project_version = versions.get(project_id)
        if project_version is None:
            raise NotFound(f"project {project_id} did not exist at position {position}")
        project = self._load_version(project_id, Project, project_version)
        if project.deleted:
            raise NotFound(f"project {project_id} was deleted at position {position}")
        return ProjectState(project_id, position, project.name, dict(project.members), b"")

    def revert(self, project_id: UUID, version_id: str, actor: str) -> int:
        """Make the name and the scene equal to a version's by appending events.

        Membership is left as it is: reverting content must never silently give access back
        to someone who was removed since.
        """
        project = self.project(project_id)
        target = self.state_at(project_id, project.tagged_version(version_id).position)
        scene = self.scene(project_id)
        origin = origins.revert(version_id)
        undo = document.revert_update(scene.state, target.scene, origin=origin)
        if not document.is_empty(undo):
            scene.record(undo, actor, origin)
        project.rename(target.name, actor)
        project.record_revert(version_id, actor)
        return self._save(project, scene)

    def _versions_at(self, aggregate_ids: list[UUID], position: int | None
                     ) -> tuple[int, dict[UUID, int | None]]:
        """The log's head, and each aggregate's version at ``position`` (at the head if None;
        None for an aggregate that did not exist yet)."""
        datastore = self.recorder.datastore  # type: ignore[attr-defined]
        with datastore.get_connection() as conn, conn.cursor() as curs:  # autocommit: 1 trip
            curs.execute(VERSIONS_AT, {"at": position, "ids": aggregate_ids}, prepare=True)
            rows = curs.fetchall()
        head = rows[0]["head"] if rows else 0
        return head, {row["originator_id"]: row["version"] for row in rows}

    # -- jobs -------------------------------------------------------------------------------

    def reuse_job(self, source_id: UUID, project_id: UUID, inputs: dict[str, Any],
                  params: dict[str, Any], actor: str) -> tuple[UUID, Reuse] | None:
        """Answer a request with an identical job's results, as a job of the requesting
        project (``Job.ReuseRequested``), so that nothing of the reused job's project is
        shown to the requester. It ends at once when the reused job has succeeded (a cache
        hit), else in the same transaction that ends the reused one (a single-flight join).
        Returns the new job and how it reuses; None when the reused job ended without a
        result meanwhile, so the request needs a job of its own."""
        made: list[tuple[UUID, Reuse]] = []

        @_retrying
        def attempt() -> int:
            made.clear()
            source = self.job(source_id)
            if source.reused_from is not None:  # a reuse job's results are another job's
                source = self.job(UUID(source.reused_from))
            if source.state.finished and source.state is not JobState.SUCCEEDED:
                return 0
            job = Job.reusing(source, str(project_id), inputs, params, actor)
            if source.state is JobState.SUCCEEDED:
                made.append((job.id, Reuse.CACHE))
                return self._save(*self._answer(job, source, {}), job)
            # The reused job is usually being written by its worker at the same moment,
            # hence the retry on a concurrent write.
            source.record_join(job)
            made.append((job.id, Reuse.SINGLE_FLIGHT))
            return self._save(source, job)

        attempt()
        return made[0] if made else None

    def _answer(self, job: Job, source: Job,
                loaded: dict[UUID, Project | Scene]) -> list[Project | Scene]:
        """End reuse ``job`` with ``source``'s results: the same stage blobs, a result whose
        mesh (if any) is a new asset of ``job``'s project made from ``job``'s image, and an
        object showing the final stage in that project's scene, undoable as the job.
        ``loaded`` holds the aggregates this transaction already changed, by id."""
        project_id = UUID(job.project_id)
        project = loaded.get(project_id)
        if not isinstance(project, Project):
            project = loaded[project_id] = self.project(project_id)
        scene = loaded.get(Scene.create_id(job.project_id))
        if not isinstance(scene, Scene):
            scene = loaded[Scene.create_id(job.project_id)] = self.scene(project_id)
        result = dict(source.result or {})
        name = str(job.params.get("name") or "generated")
        if isinstance(result.get("mesh"), dict):
            mesh = result["mesh"] = result["mesh"] | {
                "asset_id": str(uuid5(job.id, "mesh")), "filename": f"{name}.glb"}
            project.record_derived_asset(
                derived_mesh(mesh, REUSE_ACTOR),
                Derivation(str(job.inputs.get("asset_id")), str(job.id), job.kind), REUSE_ACTOR)
        shown = {"name": name, "asset": str(job.inputs.get("asset_id") or ""),
                 "blob": str(source.stages.get("final", {}).get("blob") or ""), "stage": "final",
                 "transform": {"position": [0.0, 0.0, 0.0], "rotation": [0.0, 0.0, 0.0, 1.0],
                               "scale": [1.0, 1.0, 1.0]},
                 "material": {}, "style": "", "visible": True, "locked": False,
                 "created_by": job.requested_by}
        before, after = self._change_scene(job, scene, {str(job.id): shown}, REUSE_ACTOR)
        job.answer(source, result, before, after)
        return [project, scene]

    def _end_joiners(self, job: Job,
                     loaded: dict[UUID, Project | Scene]) -> list[Project | Job | Scene]:
        """End the reuse jobs waiting for ``job``, which has just ended: with its results, or
        failed as it failed (a cancelled run fails them, retryable: they did not cancel)."""
        ended: list[Project | Job | Scene] = []
        for joiner_id in job.joiners:
            joiner = self.job(UUID(joiner_id))
            if joiner.state.finished:  # cancelled by its requester meanwhile
                continue
            if job.state is JobState.SUCCEEDED:
                try:
                    ended += self._answer(joiner, job, loaded)
                except NotFound as e:  # its project was deleted meanwhile
                    joiner.fail(f"the result could not be shown: {e}", retryable=False,
                                actor=REUSE_ACTOR)
            elif job.state is JobState.FAILED:
                joiner.fail(f"the identical request this one joined failed: {job.error}",
                            retryable=True, actor=REUSE_ACTOR)
            else:
                joiner.fail("the identical request this one joined was cancelled; ask again",
                            retryable=True, actor=REUSE_ACTOR)
            ended.append(joiner)
        return ended

    def request_job(
        self,
        project_id: UUID,
        kind: str,
        inputs: dict[str, Any],
        params: dict[str, Any],
        actor: str,
        key: str | None = None,
    ) -> UUID:
        """Record a command. ``key`` is its cache key when the result depends on something
        other than ``inputs`` and ``params`` as given (content rather than upload ids)."""
        command_subject(kind)  # refuses unknown kinds before anything is written
        job = Job(
            project_id=str(project_id),
            kind=kind,
            inputs=inputs,
            params=params,
            cache_key=key or cache_key(kind, inputs, params),
            actor=actor,
        )
        self._save(job)
        return job.id

    def start_job(self, job_id: UUID, worker: str, device: str) -> Job:
        self._command(job_id, Job, lambda j: j.start(worker, device))
        return self.job(job_id)

    def complete_stage(
        self, job_id: UUID, stage: str, blob: str | None, stats: dict[str, Any],
        scene_changes: dict[str, dict[str, Any] | None] | None = None,
    ) -> int:
        """Record a stage; with ``scene_changes`` (object id → fields to set, or None to
        delete) also show it in the project's scene, in the same transaction."""
        if not scene_changes:
            return self._command(job_id, Job, lambda j: j.complete_stage(stage, blob, stats))

        @_retrying
        def attempt() -> int:
            job = self.job(job_id)
            scene = self.scene(UUID(job.project_id))
            job.complete_stage(stage, blob, stats)
            job.record_scene_change(
                *self._change_scene(job, scene, scene_changes, job.worker or "worker"))
            return self._save(job, scene)

        return attempt()

    def undo_job(self, job_id: UUID, actor: str) -> int:
        """Put back what a finished job changed in the scene, unless someone changed it since."""
        @_retrying
        def attempt() -> int:
            job = self.job(job_id)
            scene = self.scene(UUID(job.project_id))
            job.undo(actor)
            current = document.snapshot(scene.state)[document.OBJECTS]
            moved = sorted(o for o, after in job.scene_after.items() if current.get(o) != after)
            if moved:
                raise Conflict(f"cannot undo job {job_id}: {', '.join(moved)} changed since")
            origin = origins.job_undo(job_id)
            scene.record(document.edit(scene.state, job.scene_before, exact=True, origin=origin),
                         actor, origin)
            return self._save(job, scene)

        return attempt()

    @staticmethod
    def _change_scene(job: Job, scene: Scene, changes: dict[str, dict[str, Any] | None],
                      actor: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Show what a job made in the scene; returns each changed object's value before and
        after, which the job records so that it can be undone."""
        origin = origins.job(job.id)
        before_objects = document.snapshot(scene.state)[document.OBJECTS]
        scene.record(document.edit(scene.state, changes, origin=origin), actor, origin)
        after_objects = document.snapshot(scene.state)[document.OBJECTS]
        return ({o: before_objects.get(o) for o in changes},
                {o: after_objects.get(o) for o in changes})

    def succeed_job(self, job_id: UUID, result: dict[str, Any]) -> int:
        """Record a job's success. A result that names a new ``mesh`` (see
        :func:`derived_mesh`) also records that mesh as the project's asset and, when the job
        was asked to with ``params["object_id"]``, shows it on that scene object (undoable as
        the job); all in one transaction, so a redelivered job cannot add a second mesh.
        Reuse jobs that joined this one end with it, in the same transaction."""
        @_retrying
        def attempt() -> int:
            job = self.job(job_id)
            if job.state.finished:
                raise JobFinished(f"job {job_id} already {job.state.value}")
            loaded: dict[UUID, Project | Scene] = {}
            if isinstance(result.get("mesh"), dict):
                project = loaded[UUID(job.project_id)] = self.project(UUID(job.project_id))
                asset = derived_mesh(result["mesh"], job.worker or "worker")
                origin = Derivation(str(job.inputs["asset_id"]), str(job.id), job.kind)
                project.record_derived_asset(asset, origin, job.worker or "worker")
                object_id = str(job.params.get("object_id") or "")
                scene = self.scene(project.id) if object_id else None
                # An object deleted while the job ran stays deleted; the new mesh is kept.
                if scene is not None and object_id in document.snapshot(scene.state)[
                        document.OBJECTS]:
                    loaded[scene.id] = scene
                    job.record_scene_change(*self._change_scene(job, scene, {object_id: {
                        "asset": asset.asset_id, "blob": asset.blob_key, "stage": ""}},
                        job.worker or "worker"))
            job.succeed(result)
            ended = self._end_joiners(job, loaded)
            return self._save(*_distinct([*loaded.values(), *ended]), job)  # the job's end last

        return attempt()

    def fail_job(self, job_id: UUID, reason: str, retryable: bool, actor: str) -> int:
        return self._end_job(job_id, lambda j: j.fail(reason, retryable, actor))

    def cancel_job(self, job_id: UUID, actor: str) -> int:
        return self._end_job(job_id, lambda j: j.cancel(actor))

    def _end_job(self, job_id: UUID, end: Callable[[Job], None]) -> int:
        """End a job without a result, and the reuse jobs that joined it with it."""
        @_retrying
        def attempt() -> int:
            job = self.job(job_id)
            end(job)
            return self._save(*self._end_joiners(job, {}), job)

        return attempt()

    def job(self, job_id: UUID) -> Job:
        return self._load(job_id, Job)

    # -- plumbing ---------------------------------------------------------------------------

    def max_position(self) -> int:
        """The newest notification id in the log (0 when empty)."""
        return self.recorder.max_notification_id() or 0

    def _command(self, aggregate_id: UUID, cls: type[A], apply: Callable[[A], None]) -> int:
        @_retrying
        def attempt() -> int:
            aggregate = self._load(aggregate_id, cls)
            apply(aggregate)
            return self._save(aggregate)

        return attempt()

    def _load(self, aggregate_id: UUID, cls: type[A], version: int | None = None) -> A:
        try:
            aggregate: object = self.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            raise NotFound(f"{cls.__name__.lower()} {aggregate_id} not found") from None
        except PersistenceError as e:
            raise EventStoreError(f"could not load {aggregate_id}: {e}") from e
        if not isinstance(aggregate, cls):
            raise NotFound(f"{cls.__name__.lower()} {aggregate_id} not found")
        return aggregate

    def _load_version(self, aggregate_id: UUID, cls: type[A], version: int) -> A:
        """The aggregate at ``version``: the cached one where it is exactly there (an
        aggregate at a version is the same whenever it is read), else from the store."""
        cache = self.repository.cache
        try:
            cached = cache.get(aggregate_id) if cache is not None else None
        except KeyError:
            cached = None
        if isinstance(cached, cls) and cached.version == version:
            return cast(A, deepcopy(cached))
        return self._load(aggregate_id, cls, version=version)

    def _cached(self, aggregate_id: UUID, cls: type[A]) -> A:
        """A copy of the cached aggregate as its last save here left it, without asking the
        database for newer events; loaded as usual when nothing is cached."""
        cache = self.repository.cache
        try:
            cached = cache.get(aggregate_id) if cache is not None else None
        except KeyError:
            cached = None
        if not isinstance(cached, cls):
            return self._load(aggregate_id, cls)
        return deepcopy(cached)

    def _save(self, *aggregates: Project | Job | Scene) -> int:
        """Save pending events in one transaction; returns the last one's position (0 if none).

        The saved aggregates then replace older cached copies, so the next command on them
        starts from what was just written instead of reading it back.
        """
        try:
            recordings = self.save(*aggregates)  # type: ignore[arg-type]
        except IntegrityError as e:
            raise _VersionClash(str(e)) from e
        except PersistenceError as e:
            raise EventStoreError(f"could not save {[a.id for a in aggregates]}: {e}") from e
        self._remember(aggregates)
        last = recordings[-1].notification.id if recordings else None
        return last or 0

    def _remember(self, aggregates: Sequence[Project | Job | Scene]) -> None:
        """Cache copies of saved aggregates that are newer than the cached ones.

        Copies, because loads fast-forward the cached object in place, which the command that
        saved it must not see; and an older copy left by a racing writer is only fast-forwarded
        on the next load, so the cache never holds anything but stored states."""
        cache = self.repository.cache
        if cache is None:
            return
        for aggregate in aggregates:
            try:
                cached = cache.get(aggregate.id)
            except KeyError:
                cached = None
            if cached is None or cached.version < aggregate.version:
                cache.put(aggregate.id, deepcopy(aggregate))

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Snapshot the saved aggregates as they are in memory, where the library would read
        them back from the store first: they are exactly the state their last event left."""
        if self.snapshots is None:
            return
        for aggregate in processing_event.aggregates.values():
            interval = self.snapshotting_intervals.get(type(aggregate))
            if interval is None:
                continue
            saved = [e.originator_version for e in processing_event.events
                     if e.originator_id == aggregate.id]
            if saved and any(v % interval == 0 for v in saved):
                snapshot_class = getattr(type(aggregate), "Snapshot", None) or Snapshot
                self.snapshots.put([snapshot_class.take(aggregate)])


def _retrying(command: Callable[[], int]) -> Callable[[], int]:
    """Retry a load-apply-save command on fresh state when another writer saved first."""
    retrying = retry(
        retry=retry_if_exception_type(_VersionClash),
        stop=stop_after_attempt(8),
        wait=wait_random_exponential(multiplier=0.005, max=0.2),
        reraise=True,
    )(command)

    def run() -> int:
        try:
            return retrying()
        except _VersionClash:
            raise Conflict("the project is changing too fast; retry") from None

    return run


def _distinct(aggregates: Sequence[Project | Job | Scene]) -> list[Project | Job | Scene]:
    """Each aggregate once, in first-seen order (several joiners may share a project)."""
    return list({aggregate.id: aggregate for aggregate in aggregates}.values())


def derived_mesh(fields: Mapping[str, Any], actor: str) -> Asset:
    """The asset a mesh job made, from its result's ``mesh`` entry (``asset_id``,
    ``blob_key``, ``sha256``, ``media_type``, ``size``, ``filename``, ``units``)."""
    try:
        return Asset(
            asset_id=str(fields["asset_id"]), blob_key=str(fields["blob_key"]),
            sha256=str(fields["sha256"]), media_type=str(fields["media_type"]), kind="mesh",
            size=int(fields["size"]), filename=str(fields["filename"]), uploaded_by=actor,
            units=str(fields.get("units", "mm")),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidInput(f"a job result names a mesh without {e}") from e


def cache_key(kind: str, inputs: dict[str, Any], params: dict[str, Any]) -> str:
    """Equal kind, inputs and parameters give equal keys: the dedup cache is a lookup by it."""
    canonical = json.dumps([kind, inputs, params], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


