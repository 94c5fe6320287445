"""Time travel: the project as it was at a log position, the scene's changes between two of its
versions, and named versions.

Nothing is rebuilt from scratch: each aggregate's version at a position is read in one
statement (:data:`VERSIONS_AT`) and loaded from the nearest snapshot (a scene's nearest
compaction), or taken from the cache where it is exactly there.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

from core.errors import InvalidInput, NotFound
from core.events.persistence import StudioStore
from core.events.project import Project
from core.events.scene import Scene

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


@dataclass(frozen=True)
class ProjectState:
    """A project as it was at one log position (or now)."""

    project_id: UUID
    position: int
    name: str
    members: dict[str, str]
    scene: bytes


class TimeTravel(StudioStore):
    """The Studio's reads of the past and its named versions (reverting to one is a command,
    :meth:`core.events.studio.Studio.revert`)."""

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
