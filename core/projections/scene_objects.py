"""The mesh catalogue: which asset and blob each scene object shows, per project.

Scene updates are CRDT deltas, so the read model keeps each scene's document in memory and
applies the updates in log order; on a cold start (or a cache eviction) it loads the scene as
it was just before the event from the event store, which is cheap thanks to compaction and
snapshots. A cached document is only used for the event right after the one it last saw: when
another runner (or a rebuild) processed the events in between, it is stale and is loaded again.
Only the objects an update touches are compared, so an update costs the same in a big scene as
in a small one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass
class _Scene:
    project_id: str
    doc: Doc
    version: int  # the scene version the document is at
    objects: dict[str, Any]  # the document's objects as plain values, as the rows show them


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
        objects = scene.doc.get(document.OBJECTS, type=Map)
        touched: set[str] = set()

        def collect(events: list[Any]) -> None:
            for event in events:  # a nested change has the object id first in its path
                touched.update([str(event.path[0])] if event.path else event.keys)

        subscription = objects.observe_deep(collect)
        try:
            scene.doc.apply_update(e.update)
        finally:
            objects.unobserve(subscription)
        scene.version = e.originator_version
        rows: list[Statement] = []
        for object_id in sorted(touched):
            before = scene.objects.get(object_id)
            if object_id not in objects:
                if before is not None:
                    del scene.objects[object_id]
                    rows.append((_DELETE, {"project": scene.project_id, "object": object_id}))
                continue
            value = objects[object_id]
            fields: Any = value.to_py() if isinstance(value, Map) else value
            if before != fields:
                scene.objects[object_id] = fields
                rows.append((_UPSERT, {
                    "project": scene.project_id, "object": object_id,
                    "name": fields.get("name"), "asset": fields.get("asset"),
                    "blob": fields.get("blob"), "visible": fields.get("visible"),
                    "at": e.timestamp, "position": position,
                }))
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
        objects = doc.get(document.OBJECTS, type=Map).to_py() or {}
        self._docs[scene_id] = scene = _Scene(project_id, doc, version, objects)
        if len(self._docs) > CACHED_SCENES:
            self._docs.popitem(last=False)
        return scene
