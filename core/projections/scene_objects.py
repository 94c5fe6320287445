"""The mesh catalogue: which asset and blob each scene object shows, per project.

Scene updates are CRDT deltas, so the read model keeps each scene's document in memory and
applies the updates in log order; on a cold start (or a cache eviction) it loads the scene as
it was just before the event from the event store, which is cheap thanks to compaction and
snapshots.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

from pycrdt import Doc, Map

from core.crdt import document
from core.events.scene import Scene
from core.projections.readmodel import ReadModel, Statement

SceneAt = Callable[[UUID, int], tuple[str, bytes]]
"""(scene id, aggregate version) → (project id, document state at that version)."""

CACHED_SCENES = 256

_UPSERT = (
    "INSERT INTO rm_scene_objects (project_id, object_id, name, asset, blob, visible,"
    " updated_at, position) VALUES (%(project)s, %(object)s, %(name)s, %(asset)s, %(blob)s,"
    " %(visible)s, %(at)s, %(position)s) ON CONFLICT (project_id, object_id) DO UPDATE SET"
    " name = EXCLUDED.name, asset = EXCLUDED.asset, blob = EXCLUDED.blob,"
    " visible = EXCLUDED.visible, updated_at = EXCLUDED.updated_at,"
    " position = EXCLUDED.position"
)
_DELETE = "DELETE FROM rm_scene_objects WHERE project_id = %(project)s AND object_id = %(object)s"


class SceneObjectsReadModel(ReadModel):
    name = "scene_objects"
    tables = ("rm_scene_objects",)
    create_sql = (
        "CREATE TABLE IF NOT EXISTS rm_scene_objects ("
        " project_id uuid NOT NULL, object_id text NOT NULL, name text, asset text,"
        " blob text, visible boolean, updated_at timestamptz NOT NULL,"
        " position bigint NOT NULL, PRIMARY KEY (project_id, object_id))",
        "CREATE INDEX IF NOT EXISTS rm_scene_objects_blob ON rm_scene_objects (blob)",
    )

    def __init__(self, scene_at: SceneAt) -> None:
        self._scene_at = scene_at
        self._docs: OrderedDict[UUID, tuple[str, Doc]] = OrderedDict()

    def forget(self) -> None:
        self._docs.clear()

    @singledispatchmethod
    def statements(self, event: Any, position: int) -> list[Statement]:
        return []

    @statements.register
    def _(self, e: Scene.Created, position: int) -> list[Statement]:
        self._remember(e.originator_id, e.project_id, Doc())
        return []

    @statements.register
    def _(self, e: Scene.Compacted, position: int) -> list[Statement]:
        # The state is the same document; rebuilding from it sheds the merged history.
        project_id, _ = self._doc(e.originator_id, e.originator_version)
        self._remember(e.originator_id, project_id, document.load(e.state))
        return []

    @statements.register
    def _(self, e: Scene.Updated, position: int) -> list[Statement]:
        project_id, doc = self._doc(e.originator_id, e.originator_version)
        objects = doc.get(document.OBJECTS, type=Map)
        before = objects.to_py() or {}
        doc.apply_update(e.update)
        after = objects.to_py() or {}
        rows: list[Statement] = []
        for object_id in before.keys() - after.keys():
            rows.append((_DELETE, {"project": project_id, "object": object_id}))
        for object_id, fields in after.items():
            if before.get(object_id) != fields:
                rows.append((_UPSERT, {
                    "project": project_id, "object": object_id, "name": fields.get("name"),
                    "asset": fields.get("asset"), "blob": fields.get("blob"),
                    "visible": fields.get("visible"), "at": e.timestamp,
                    "position": position,
                }))
        return rows

    def _doc(self, scene_id: UUID, version: int) -> tuple[str, Doc]:
        """The scene's document just before the event of ``version``."""
        cached = self._docs.get(scene_id)
        if cached is None:
            project_id, state = self._scene_at(scene_id, version - 1)
            cached = self._remember(scene_id, project_id, document.load(state))
        self._docs.move_to_end(scene_id)
        return cached

    def _remember(self, scene_id: UUID, project_id: str, doc: Doc) -> tuple[str, Doc]:
        self._docs[scene_id] = (project_id, doc)
        if len(self._docs) > CACHED_SCENES:
            self._docs.popitem(last=False)
        return self._docs[scene_id]
