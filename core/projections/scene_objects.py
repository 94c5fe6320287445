"""The mesh catalogue: which asset and blob each scene object shows, per project.

Scene updates are CRDT deltas, so the read model keeps each scene's document in memory and
applies the updates in log order; on a cold start (or a cache eviction) it loads the scene as
it was just before the event from the event store, which is cheap thanks to compaction and
snapshots. A cached document is only used for the event right after the one it last saw: when
another runner (or a rebuild) processed the events in between, it is stale and is loaded again.
Only the objects an update touches are compared, so an update costs the same in a big scene as
in a small one.

Beside the current objects it keeps their history, ``rm_scene_history``: one row per object
(root ``objects``) or scene setting (root ``meta``) each time its value changed, from that log
position on, its value as JSON text (NULL once deleted). The scene as it was at position P is
then, for each key, its latest row at or before P: :data:`SCENE_AT` finds the keys with a loose
index scan and probes the primary key once per key, so it costs the same deep into a long log
as near its start, and never merges a Yjs document. JSON text rather than ``jsonb`` keeps a
value exactly as the document gives it (``1.0`` stays a float).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

from pycrdt import Doc, Map

from core.events.scene import Scene
from core.projections.readmodel import ReadModel, Statement
from core.scene import document, scene_schema

SceneAt = Callable[[UUID, int], tuple[str, bytes]]
"""(scene id, aggregate version) → (project id, document state at that version)."""

CACHED_SCENES = 256
_DELETED = object()  # a key's value once it was removed (None is a value a key can hold)

_UPSERT = (
    "INSERT INTO rm_scene_objects (project_id, object_id, name, asset, blob, visible,"
    " updated_at, position) VALUES (%(project)s, %(object)s, %(name)s, %(asset)s, %(blob)s,"
    " %(visible)s, %(at)s, %(position)s) ON CONFLICT (project_id, object_id) DO UPDATE SET"
    " name = EXCLUDED.name, asset = EXCLUDED.asset, blob = EXCLUDED.blob,"
    " visible = EXCLUDED.visible, updated_at = EXCLUDED.updated_at,"
    " position = EXCLUDED.position"
)
_DELETE = "DELETE FROM rm_scene_objects WHERE project_id = %(project)s AND object_id = %(object)s"
_CHANGED = (
    "INSERT INTO rm_scene_history (project_id, root, key, from_position, value)"
    " VALUES (%(project)s, %(root)s, %(key)s, %(position)s, %(value)s)"
)

SCENE_AT = (
    "WITH RECURSIVE keys AS ("
    " (SELECT root, key FROM rm_scene_history WHERE project_id = %(project)s"
    "  ORDER BY root, key LIMIT 1)"
    " UNION ALL"
    " SELECT later.root, later.key FROM keys CROSS JOIN LATERAL ("
    "  SELECT h.root, h.key FROM rm_scene_history h WHERE h.project_id = %(project)s"
    "  AND (h.root, h.key) > (keys.root, keys.key) ORDER BY h.root, h.key LIMIT 1) later),"
    " scene AS ("
    " SELECT keys.root, keys.key, last.value FROM keys CROSS JOIN LATERAL ("
    "  SELECT h.value FROM rm_scene_history h WHERE h.project_id = %(project)s"
    "  AND h.root = keys.root AND h.key = keys.key AND h.from_position <= %(at)s"
    "  ORDER BY h.from_position DESC LIMIT 1) last WHERE last.value IS NOT NULL)"
    " SELECT t.position, scene.root, scene.key, scene.value FROM rm_tracking t"
    " LEFT JOIN scene ON t.position >= %(at)s WHERE t.name = 'scene_objects'"
)
"""The scene of ``%(project)s`` at log position ``%(at)s``, in one statement (one snapshot):
rows of (the model's position, root, key, value as JSON); the first column alone, with NULLs,
where the scene was empty or the model has not reached the position yet. See
:func:`scene_from_rows`."""


@dataclass
class _Scene:
    project_id: str
    doc: Doc
    version: int  # the scene version the document is at
    objects: dict[str, Any]  # the document's objects as plain values, as the rows show them
    meta: dict[str, Any]  # the same for the scene's settings


class SceneObjectsReadModel(ReadModel):
    name = "scene_objects"
    tables = ("rm_scene_objects", "rm_scene_history")
    appends = frozenset({_CHANGED})
    create_sql = (
        # A database from before the history table has this model's position at its head
        # but no history: start the model over so that the history is filled from the log.
        "DO $$ BEGIN IF to_regclass('rm_scene_objects') IS NOT NULL"
        " AND to_regclass('rm_scene_history') IS NULL THEN DROP TABLE rm_scene_objects;"
        " UPDATE rm_tracking SET position = 0 WHERE name = 'scene_objects'; END IF; END $$",
        "CREATE TABLE IF NOT EXISTS rm_scene_objects ("
        " project_id uuid NOT NULL, object_id text NOT NULL, name text, asset text,"
        " blob text, visible boolean, updated_at timestamptz NOT NULL,"
        " position bigint NOT NULL, PRIMARY KEY (project_id, object_id))",
        "CREATE INDEX IF NOT EXISTS rm_scene_objects_blob ON rm_scene_objects (blob)",
        "CREATE TABLE IF NOT EXISTS rm_scene_history ("
        " project_id uuid NOT NULL, root text NOT NULL, key text NOT NULL,"
        " from_position bigint NOT NULL, value text,"
        " PRIMARY KEY (project_id, root, key, from_position))",
    )

    def __init__(self, scene_at: SceneAt) -> None:
        self._scene_at = scene_at
        self._docs: OrderedDict[UUID, _Scene] = OrderedDict()

    def forget(self) -> None:
        self._docs.clear()

    @singledispatchmethod
    def statements(self, event: Any, position: int) -> list[Statement]:
        return []

    @statements.register
    def _(self, e: Scene.Created, position: int) -> list[Statement]:
        self._remember(e.originator_id, e.project_id, Doc(), e.originator_version)
        return []

    @statements.register
    def _(self, e: Scene.Compacted, position: int) -> list[Statement]:
        # The state is the same document; rebuilding from it sheds the merged history.
        scene = self._doc(e.originator_id, e.originator_version)
        self._remember(e.originator_id, scene.project_id, document.load(e.state),
                       e.originator_version)
        return []

    @statements.register
    def _(self, e: Scene.Updated, position: int) -> list[Statement]:
        scene = self._doc(e.originator_id, e.originator_version)
        touched = _apply_observed(scene.doc, e.update)
        objects = scene.doc.get(document.OBJECTS, type=Map)
        meta = scene.doc.get(document.META, type=Map)
        scene.version = e.originator_version
        rows: list[Statement] = []
        for object_id in sorted(touched[document.OBJECTS]):
            before = scene.objects.get(object_id)
            fields = None if scene_schema.key_problem(object_id) else \
                scene_schema.conforming_object(objects.get(object_id))
            if fields is None:  # removed, or never an object
                if before is not None:
                    del scene.objects[object_id]
                    rows.append((_DELETE, {"project": scene.project_id, "object": object_id}))
                    rows.append(_changed(scene, document.OBJECTS, object_id, position, _DELETED))
                continue
            if before != fields:
                scene.objects[object_id] = fields
                rows.append((_UPSERT, {
                    "project": scene.project_id, "object": object_id,
                    "name": _text(fields.get("name")), "asset": _text(fields.get("asset")),
                    "blob": _text(fields.get("blob")), "visible": fields.get("visible"),
                    "at": e.timestamp, "position": position,
                }))
                rows.append(_changed(scene, document.OBJECTS, object_id, position, fields))
        for key in sorted(touched[document.META]):
            value = meta.get(key, _DELETED)
            if value is _DELETED or scene_schema.key_problem(key) or \
                    scene_schema.meta_problem(value):
                if key in scene.meta:
                    del scene.meta[key]
                    rows.append(_changed(scene, document.META, key, position, _DELETED))
                continue
            if key not in scene.meta or scene.meta[key] != value:
                scene.meta[key] = value
                rows.append(_changed(scene, document.META, key, position, value))
        return rows

    def _doc(self, scene_id: UUID, version: int) -> _Scene:
        """The scene's document just before the event of ``version``."""
        cached = self._docs.get(scene_id)
        if cached is None or cached.version != version - 1:
            project_id, state = self._scene_at(scene_id, version - 1)
            cached = self._remember(scene_id, project_id, document.load(state), version - 1)
        self._docs.move_to_end(scene_id)
        return cached

    def _remember(self, scene_id: UUID, project_id: str, doc: Doc, version: int) -> _Scene:
        objects = scene_schema.conforming_objects(doc.get(document.OBJECTS, type=Map))
        meta = scene_schema.conforming_meta(doc.get(document.META, type=Map))
        self._docs[scene_id] = scene = _Scene(project_id, doc, version, objects, meta)
        if len(self._docs) > CACHED_SCENES:
            self._docs.popitem(last=False)
        return scene


def _apply_observed(doc: Doc, update: bytes) -> dict[str, set[str]]:
    """Apply ``update``; the keys of ``objects`` and ``meta`` it changed."""
    with scene_schema.changes_of(doc) as changes:
        doc.apply_update(update)
    return {document.OBJECTS: set(changes.objects), document.META: changes.meta}


def scene_from_rows(rows: Iterable[tuple[Any, ...]], position: int) -> dict[str, Any] | None:
    """The scene as :func:`core.scene.document.snapshot` gives it, from the rows of
    :data:`SCENE_AT`; None where the read model has not reached ``position`` (or has no
    tracking row yet), so the caller replays the log instead."""
    scene: dict[str, Any] = {document.OBJECTS: {}, document.META: {}}
    reached = False
    for model_position, root, key, value in rows:
        reached = model_position >= position
        if root is not None and (plain := _conforming_row(root, value)) is not _DELETED:
            scene[root][key] = plain
    return scene if reached else None


def _conforming_row(root: str, text: str) -> Any:
    """A history row's value if it conforms, else ``_DELETED``: rows written before the
    schema was enforced may hold values nested thousands deep (past what ``json`` reads)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return _DELETED
    if root == document.OBJECTS:
        fields = scene_schema.conforming_fields(value)
        return _DELETED if fields is None else fields
    return _DELETED if scene_schema.meta_problem(value) else value


def _text(value: Any) -> Any:
    """A string as a text column can hold it: PostgreSQL refuses NUL, a document does not."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def _changed(scene: _Scene, root: str, key: str, position: int, value: Any) -> Statement:
    # sort_keys: a map's key order depends on how its document was loaded (a rebuild loads
    # compactions), and a rebuild must give the same rows. Values conform to the scene schema,
    # so JSON holds them exactly.
    text = None if value is _DELETED else json.dumps(value, sort_keys=True)
    return (_CHANGED, {"project": scene.project_id, "root": root, "key": key,
                       "position": position, "value": text})
