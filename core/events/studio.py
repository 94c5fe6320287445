"""The studio's application service: the only way anything writes an event.

Methods take plain values and return ids and plain values. Each command loads its aggregate,
applies the command and saves; a concurrent writer that saved the same aggregate first makes the
save fail on the aggregate version, so the command is retried on fresh state (optimistic
concurrency) a bounded number of times.

:class:`Studio` is this module's commands on top of two layers: the event store and the
load-and-save plumbing (:mod:`core.events.persistence`) and the reads of the past
(:mod:`core.events.time_travel`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from core.contracts.mesh_params import check_mesh_params
from core.errors import Conflict, InvalidInput, NotFound
from core.events.assistant import Exchange
from core.events.job import REUSE_ACTOR, Job, JobFinished, JobState, Reuse
from core.events.job_kinds import MESH_ANALYSE, MESH_OPERATIONS, command_subject
from core.events.persistence import distinct, eventstore_env, retrying
from core.events.project import Asset, Derivation, Project
from core.events.roles import Role
from core.events.scene import Scene
from core.events.time_travel import ProjectState, TimeTravel
from core.scene import document, origins, transform_keys, undo
from core.scene.scene_object import scene_object, shown_mesh

__all__ = ["ProjectState", "SceneAppend", "Studio", "cache_key", "derived_mesh",
           "eventstore_env"]

UNDO_REACH = 2000  # scene events searched back for the user's latest change


@dataclass(frozen=True)
class SceneAppend:
    position: int
    first_version: int
    last_version: int


class Studio(TimeTravel):
    name = "Studio"

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

    def change_role(self, project_id: UUID, user: str, role: Role, actor: str) -> int:
        return self._command(project_id, Project, lambda p: p.change_role(user, role, actor))

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

        @retrying
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

    def edit_scene(self, project_id: UUID, changes: dict[str, dict[str, Any] | None],
                   actor: str, origin: str) -> int:
        """Set or delete whole objects as one server-made update (used by commands)."""
        def apply(scene: Scene) -> None:
            scene.record(document.edit(scene.state, changes, origin=origin), actor, origin)
            if scene.needs_compaction:
                scene.compact(actor="server")

        return self._command(Scene.create_id(str(project_id)), Scene, apply)

    def split_transforms(self, project_id: UUID) -> Scene:
        """The scene, after one server-made update split its objects' legacy ``transform``
        into position, rotation and scale (:mod:`core.scene.transform_keys`); unchanged, and
        nothing written, where none has one. Rooms call it as they load a scene."""
        scene = self.scene(project_id)
        if transform_keys.split_update(scene.state, origins.SPLIT_TRANSFORMS) is None:
            return scene

        def apply(scene: Scene) -> None:
            update = transform_keys.split_update(scene.state, origins.SPLIT_TRANSFORMS)
            if update is not None:  # a racing node may have split them first
                scene.record(update, "server", origins.SPLIT_TRANSFORMS)

        self._command(scene.id, Scene, apply)
        return self.scene(project_id)

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

        @retrying
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
        shown = scene_object(name=name, asset=str(job.inputs.get("asset_id") or ""),
                             blob=str(source.stages.get("final", {}).get("blob") or ""),
                             stage="final", created_by=job.requested_by)
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

        @retrying
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
        @retrying
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
        @retrying
        def attempt() -> int:
            job = self.job(job_id)
            if job.state.finished:
                raise JobFinished(f"job {job_id} already {job.state.value}")
            loaded: dict[UUID, Project | Scene] = {}
            analyses: list[Job] = []
            if isinstance(result.get("mesh"), dict):
                project = loaded[UUID(job.project_id)] = self.project(UUID(job.project_id))
                asset = derived_mesh(result["mesh"], job.worker or "worker")
                origin = Derivation(str(job.inputs["asset_id"]), str(job.id), job.kind)
                project.record_derived_asset(asset, origin, job.worker or "worker")
                if job.kind in MESH_MAKERS:
                    analyses.append(_analysis_of(job, asset))
                object_id = str(job.params.get("object_id") or "")
                scene = self.scene(project.id) if object_id else None
                # An object deleted while the job ran stays deleted; the new mesh is kept.
                if scene is not None and object_id in document.snapshot(scene.state)[
                        document.OBJECTS]:
                    loaded[scene.id] = scene
                    job.record_scene_change(*self._change_scene(job, scene, {
                        object_id: shown_mesh(blob=asset.blob_key, asset=asset.asset_id)},
                        job.worker or "worker"))
            job.succeed(result)
            ended = self._end_joiners(job, loaded)
            return self._save(*distinct([*loaded.values(), *ended]), *analyses,
                              job)  # the job's end last

        return attempt()

    def fail_job(self, job_id: UUID, reason: str, retryable: bool, actor: str) -> int:
        return self._end_job(job_id, lambda j: j.fail(reason, retryable, actor))

    def cancel_job(self, job_id: UUID, actor: str) -> int:
        return self._end_job(job_id, lambda j: j.cancel(actor))

    def _end_job(self, job_id: UUID, end: Callable[[Job], None]) -> int:
        """End a job without a result, and the reuse jobs that joined it with it."""
        @retrying
        def attempt() -> int:
            job = self.job(job_id)
            end(job)
            return self._save(*self._end_joiners(job, {}), job)

        return attempt()

    def job(self, job_id: UUID) -> Job:
        return self._load(job_id, Job)

    # -- the design assistant ---------------------------------------------------------------

    def record_exchange(self, exchange: Exchange) -> int:
        """Store a question with its answer, both in one transaction."""
        return self._save(exchange)

    def exchange(self, exchange_id: UUID) -> Exchange:
        return self._load(exchange_id, Exchange)

    def request_suggested_job(self, exchange_id: UUID, suggestion_id: str, kind: str,
                              inputs: dict[str, Any], params: dict[str, Any],
                              actor: str) -> UUID:
        """:meth:`request_job` for an assistant's suggestion, recorded as applied in the same
        transaction, so the conversation never names a job that was not asked for (nor the
        reverse)."""
        command_subject(kind)
        made: list[UUID] = []

        @retrying
        def attempt() -> int:
            made.clear()
            exchange = self.exchange(exchange_id)
            exchange.suggestion(suggestion_id)
            running = self._unfinished(exchange.applied.get(suggestion_id, []))
            if running is not None:  # a click that lost the race to another joins its job
                made.append(running)
                return 0
            job = Job(project_id=exchange.project_id, kind=kind, inputs=inputs, params=params,
                      cache_key=cache_key(kind, inputs, params), actor=actor)
            exchange.record_applied(suggestion_id, job.id, actor)
            made.append(job.id)
            return self._save(job, exchange)

        attempt()
        return made[0]

    def running_application(self, exchange_id: UUID, suggestion_id: str) -> UUID | None:
        """The job that last applied the suggestion, while it has not ended: a double click
        (or a second tab) joins that job rather than running the same operation again."""
        return self._unfinished(self.exchange(exchange_id).applied.get(suggestion_id, []))

    def _unfinished(self, job_ids: list[str]) -> UUID | None:
        if not job_ids:
            return None
        job = self.job(UUID(job_ids[-1]))
        return None if job.state.finished else job.id

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


# A mesh operation's new mesh is analysed as it is recorded (the job in the same transaction):
# its score and advice otherwise stayed those of the mesh it was made from until someone asked
# again. Requested by the server, so it counts against nobody's jobs at once.
MESH_MAKERS = frozenset(MESH_OPERATIONS.values())
ANALYSIS_ACTOR = "server"


def _analysis_of(job: Job, asset: Asset) -> Job:
    inputs = {"asset_id": asset.asset_id, "blob_key": asset.blob_key,
              "format": asset.filename.rsplit(".", 1)[-1].lower(), "filename": asset.filename,
              "units": asset.units}
    params = check_mesh_params(MESH_ANALYSE, {"units": asset.units})
    return Job(project_id=job.project_id, kind=MESH_ANALYSE, inputs=inputs, params=params,
               cache_key=cache_key(MESH_ANALYSE, inputs, params), actor=ANALYSIS_ACTOR)


def cache_key(kind: str, inputs: dict[str, Any], params: dict[str, Any]) -> str:
    """Equal kind, inputs and parameters give equal keys: the dedup cache is a lookup by it."""
    canonical = json.dumps([kind, inputs, params], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()

