"""The per-project timeline (every event, one line each) and the named versions."""

from __future__ import annotations

from functools import singledispatchmethod
from pathlib import PurePosixPath
from typing import Any

from core.events.assistant import Exchange
from core.events.job import Job, Reuse
from core.events.project import Project
from core.events.scene import Scene
from core.projections.readmodel import ReadModel, Statement, object_ids

# Scene and job events do not carry their project: the first event of each says it, and the
# origins table remembers it for the rest.
_INSERT_DIRECT = (
    "INSERT INTO rm_timeline (position, project_id, at, actor, kind, summary)"
    " VALUES (%(position)s, %(project)s, %(at)s, %(actor)s, %(kind)s, %(summary)s)"
)
# A job's line may name what it makes (``{label}``: a generation's object name) and stand for
# the person who asked (``actor`` NULL: its requester), not the worker that wrote the event.
_INSERT_VIA_ORIGIN = (
    "INSERT INTO rm_timeline (position, project_id, at, actor, kind, summary)"
    " SELECT %(position)s, o.project_id, %(at)s,"
    " coalesce(%(actor)s::text, o.requester, 'server'), %(kind)s,"
    " replace(replace(%(summary)s, '{kind}', replace(o.kind, 'mesh.', '')), '{label}',"
    " coalesce(o.label, o.kind))"
    " FROM rm_origins o WHERE o.originator_id = %(origin)s"
)
_ORIGIN = (
    "INSERT INTO rm_origins (originator_id, project_id, kind, label, requester)"
    " VALUES (%(origin)s, %(project)s, %(kind)s, %(label)s, %(requester)s)"
    " ON CONFLICT (originator_id) DO NOTHING"
)


def file_size(size: int) -> str:
    """A size as a person reads it in a timeline ("1.5 KB", "3.2 MB"; decimal units, as
    file managers show them): a byte count is a figure for machines."""
    if size < 1000:
        return f"{size} B"
    value = size / 1000
    for unit in ("KB", "MB", "GB"):
        if round(value, 1) < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def _kind(event: Any) -> str:
    return type(event).__qualname__


def _scores(result: Any) -> tuple[float, float] | None:
    """The printability score before and after, where a job's report gives them (a repair's
    quality before and after, an optimiser's score_before and score_after)."""
    report = result.get("report") if isinstance(result, dict) else None
    if not isinstance(report, dict):
        return None
    pairs = [(report.get("score_before"), report.get("score_after"))]
    before, after = report.get("before"), report.get("after")
    if isinstance(before, dict) and isinstance(after, dict):
        pairs.append((before.get("score"), after.get("score")))
    for pair in pairs:
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in pair):
            return float(pair[0]), float(pair[1])  # type: ignore[arg-type]
    return None


def _object_name(after: Any, before: Any, object_id: str) -> str:
    for fields in (after, before):
        value = fields.get(object_id) if isinstance(fields, dict) else None
        name = value.get("name") if isinstance(value, dict) else None
        if isinstance(name, str) and name.strip():
            return name.strip()[:80]
    return "an unnamed object"


class HistoryReadModel(ReadModel):
    name = "history"
    tables = ("rm_timeline", "rm_versions", "rm_origins")
    create_sql = (
        "CREATE TABLE IF NOT EXISTS rm_timeline ("
        " position bigint PRIMARY KEY, project_id uuid NOT NULL, at timestamptz NOT NULL,"
        " actor text NOT NULL, kind text NOT NULL, summary text NOT NULL)",
        "CREATE INDEX IF NOT EXISTS rm_timeline_project ON rm_timeline (project_id, position)",
        "CREATE TABLE IF NOT EXISTS rm_versions ("
        " version_id uuid PRIMARY KEY, project_id uuid NOT NULL, position bigint NOT NULL,"
        " message text NOT NULL, author text NOT NULL, created_at timestamptz NOT NULL,"
        " tagged_at_position bigint NOT NULL)",
        "CREATE INDEX IF NOT EXISTS rm_versions_project ON rm_versions (project_id, position)",
        "CREATE TABLE IF NOT EXISTS rm_origins ("
        " originator_id uuid PRIMARY KEY, project_id uuid NOT NULL, kind text NOT NULL)",
        "ALTER TABLE rm_origins ADD COLUMN IF NOT EXISTS label text",
        "ALTER TABLE rm_origins ADD COLUMN IF NOT EXISTS requester text",
    )

    @singledispatchmethod
    def statements(self, event: Any, position: int) -> list[Statement]:
        return []

    # -- project events: the project is the originator ------------------------------------

    def _project_line(self, e: Any, position: int, summary: str) -> Statement:
        return (_INSERT_DIRECT, {"position": position, "project": e.originator_id,
                                 "at": e.timestamp, "actor": e.actor, "kind": _kind(e),
                                 "summary": summary})

    @statements.register
    def _(self, e: Project.Created, position: int) -> list[Statement]:
        return [self._project_line(e, position, f"created the project “{e.name}”")]

    @statements.register
    def _(self, e: Project.Renamed, position: int) -> list[Statement]:
        return [self._project_line(e, position, f"renamed the project to “{e.name}”")]

    @statements.register
    def _(self, e: Project.MemberInvited, position: int) -> list[Statement]:
        return [self._project_line(e, position, f"added member {e.user} as {e.role}")]

    @statements.register
    def _(self, e: Project.MemberRoleChanged, position: int) -> list[Statement]:
        return [self._project_line(e, position, f"made member {e.user} {e.role}")]

    @statements.register
    def _(self, e: Project.MemberRemoved, position: int) -> list[Statement]:
        return [self._project_line(e, position, f"removed member {e.user}")]

    @statements.register
    def _(self, e: Project.AssetUploaded, position: int) -> list[Statement]:
        return [self._project_line(e, position, f"uploaded {e.filename} ({file_size(e.size)})")]

    @statements.register
    def _(self, e: Project.AssetDerived, position: int) -> list[Statement]:
        operation = str(e.operation).removeprefix("mesh.")
        return [self._project_line(e, position, f"{operation}: made {e.filename}")]

    @statements.register
    def _(self, e: Project.Deleted, position: int) -> list[Statement]:
        return [self._project_line(e, position, "deleted the project")]

    @statements.register
    def _(self, e: Project.VersionTagged, position: int) -> list[Statement]:
        return [
            self._project_line(e, position, f"tagged version “{e.message}”"),
            (
                "INSERT INTO rm_versions (version_id, project_id, position, message, author,"
                " created_at, tagged_at_position) VALUES (%(vid)s, %(project)s, %(at_pos)s,"
                " %(message)s, %(actor)s, %(at)s, %(position)s)",
                {"vid": e.version_id, "project": e.originator_id, "at_pos": e.position,
                 "message": e.message, "actor": e.actor, "at": e.timestamp,
                 "position": position},
            ),
        ]

    @statements.register
    def _(self, e: Project.RevertedTo, position: int) -> list[Statement]:
        return [self._project_line(
            e, position, f"reverted to version {e.version_id} (position {e.position})")]

    # -- scene and job events: the project comes from the origins table ------------------

    def _line(self, e: Any, position: int, actor: str | None, summary: str) -> Statement:
        return (_INSERT_VIA_ORIGIN, {"position": position, "origin": e.originator_id,
                                     "at": e.timestamp, "actor": actor, "kind": _kind(e),
                                     "summary": summary})

    @statements.register
    def _(self, e: Scene.Created, position: int) -> list[Statement]:
        return [
            (_ORIGIN, {"origin": e.originator_id, "project": e.project_id, "kind": "scene",
                       "label": None, "requester": None}),
            self._line(e, position, "server", "created the scene"),
        ]

    @statements.register
    def _(self, e: Scene.Updated, position: int) -> list[Statement]:
        return [self._line(e, position, e.actor,
                           f"edited the scene ({e.origin}, {len(e.update)} bytes)")]

    @statements.register
    def _(self, e: Scene.Compacted, position: int) -> list[Statement]:
        return [self._line(e, position, e.actor,
                           f"compacted the scene ({file_size(len(e.state))})")]

    @staticmethod
    def _job_origin(e: Job.Requested | Job.ReuseRequested) -> Statement:
        # What the job is about, for its lines: a generation's name, else its mesh's file.
        name = e.params.get("name") if isinstance(e.params, dict) else None
        source = e.inputs.get("filename") if isinstance(e.inputs, dict) else None
        label = str(name) if name else PurePosixPath(str(source)).stem if source else ""
        return (_ORIGIN, {"origin": e.originator_id, "project": e.project_id, "kind": e.kind,
                          "label": label[:200] or "an object", "requester": e.actor})

    @statements.register
    def _(self, e: Job.Requested, position: int) -> list[Statement]:
        return [self._job_origin(e), self._line(e, position, e.actor, "requested {kind}")]

    @statements.register
    def _(self, e: Job.ReuseRequested, position: int) -> list[Statement]:
        # Which job answered stays out of the line: it may belong to another project.
        answered = ("answered from earlier results" if e.how == Reuse.CACHE.value
                    else "joined an identical run")
        return [self._job_origin(e),
                self._line(e, position, e.actor, f"requested {{kind}} ({answered})")]

    @statements.register
    def _(self, e: Job.Started, position: int) -> list[Statement]:
        return [self._line(e, position, e.actor, f"{{kind}} started on {e.device}")]

    @statements.register
    def _(self, e: Job.StageCompleted, position: int) -> list[Statement]:
        # "alice generated apple (final)": the requester's, though a worker wrote it.
        return [self._line(e, position, None, f"generated {{label}} ({e.stage})")]

    @statements.register
    def _(self, e: Job.Succeeded, position: int) -> list[Statement]:
        scores = _scores(e.result)
        said = f"{{kind}} of {{label}}: score {scores[0]:.0f} → {scores[1]:.0f}" if scores \
            else "{kind} finished"
        return [self._line(e, position, e.actor, said)]

    @statements.register
    def _(self, e: Job.Failed, position: int) -> list[Statement]:
        return [self._line(e, position, e.actor, f"{{kind}} failed: {str(e.reason)[:200]}")]

    @statements.register
    def _(self, e: Job.Cancelled, position: int) -> list[Statement]:
        return [self._line(e, position, e.actor, "cancelled {kind}")]

    @statements.register
    def _(self, e: Job.SceneChanged, position: int) -> list[Statement]:
        # By the objects' names (the ids mean nothing to a reader), as they were after.
        names = ", ".join(_object_name(e.after, e.before, oid) for oid in object_ids(e.after))
        return [self._line(e, position, None, f"{{kind}} showed its result on {names}")]

    @statements.register
    def _(self, e: Job.Undone, position: int) -> list[Statement]:
        return [self._line(e, position, e.actor, "undid {kind}")]

    # -- the design assistant: one exchange per question ----------------------------------

    @staticmethod
    def _exchange_line(e: Any, position: int, actor: str, summary: str) -> Statement:
        # Not _INSERT_VIA_ORIGIN: its {kind}/{label} templating would rewrite a question or a
        # file name that happens to hold those words.
        return (
            "INSERT INTO rm_timeline (position, project_id, at, actor, kind, summary)"
            " SELECT %(position)s, o.project_id, %(at)s, %(actor)s, %(kind)s, %(summary)s"
            " FROM rm_origins o WHERE o.originator_id = %(origin)s",
            {"position": position, "origin": e.originator_id, "at": e.timestamp,
             "actor": actor, "kind": _kind(e), "summary": summary},
        )

    @statements.register
    def _(self, e: Exchange.Asked, position: int) -> list[Statement]:
        question = " ".join(e.text.split())
        quoted = question if len(question) <= 120 else f"{question[:119]}…"
        return [
            (_ORIGIN, {"origin": e.originator_id, "project": e.project_id, "kind": "assistant",
                       "label": None, "requester": e.actor}),
            self._exchange_line(e, position, e.actor, f"asked the assistant: “{quoted}”"),
        ]

    @statements.register
    def _(self, e: Exchange.Answered, position: int) -> list[Statement]:
        facts, suggestions = len(e.facts), len(e.suggestions)
        said = (f"the assistant answered ({e.intent.replace('_', ' ')}):"
                f" {facts} fact{'s' * (facts != 1)},"
                f" {suggestions} suggestion{'s' * (suggestions != 1)}")
        return [self._exchange_line(e, position, e.actor, said)]

    @statements.register
    def _(self, e: Exchange.SuggestionApplied, position: int) -> list[Statement]:
        return [self._exchange_line(e, position, e.actor,
                                    f"applied the assistant's suggestion “{e.title[:120]}”")]
