"""Realistic scene updates: a few peers moving, restyling and adding a handful of objects.

Each update is what a browser peer sends over y-websocket: the bytes of one transaction, from a
doc that lives across edits (a stable Yjs client id). The edit itself follows
``core.scene.document.edit``: whole object maps set or deleted under ``objects``.

``document.edit`` itself is not used to mass-produce updates: it loads the whole state into a
new doc (a new client id) and returns ``get_update(before)``, which carries the document's whole
delete set, so its updates grow with the scene's history (see :func:`edit_update_sizes`).
"""

from __future__ import annotations

import random
from typing import Any

from pycrdt import Doc, Map, TransactionEvent

from core.scene import document

SCENE_OBJECTS = 40
OBJECTS_PER_EDIT = (1, 4)


class SceneEditor:
    """One peer's live document that turns random small edits into update bytes."""

    def __init__(self, seed: int, objects: int = SCENE_OBJECTS) -> None:
        self._random = random.Random(seed)
        self._object_ids = [f"obj-{i:03d}" for i in range(objects)]
        self._doc: Doc = Doc()
        self._updates: list[bytes] = []
        self._subscription = self._doc.observe(self._collect)
        self._objects = self._doc.get(document.OBJECTS, type=Map)
        self._serial = 0

    def _collect(self, event: TransactionEvent) -> None:
        self._updates.append(bytes(event.update))

    def next_update(self) -> bytes:
        """One transaction touching one to four objects (mostly rewrites, sometimes a delete)."""
        changes: dict[str, dict[str, Any] | None] = {}
        for object_id in self._random.sample(self._object_ids,
                                             self._random.randint(*OBJECTS_PER_EDIT)):
            self._serial += 1
            deleting = self._random.random() < 0.05 and object_id in self._objects
            changes[object_id] = None if deleting else self._fields(object_id)
        return self.apply(changes)

    def apply(self, changes: dict[str, dict[str, Any] | None]) -> bytes:
        """The update of one transaction that sets or deletes objects, as ``document.edit``."""
        self._updates.clear()
        with self._doc.transaction(origin="bench"):
            for object_id, fields in changes.items():
                if fields is None:
                    del self._objects[object_id]
                else:
                    self._objects[object_id] = Map(fields)
        return document.merge(self._updates)

    def _fields(self, object_id: str) -> dict[str, Any]:
        r = self._random
        return {
            "name": f"{object_id} #{self._serial}",
            "asset": f"asset-{r.randint(0, 9)}",
            "blob": f"blobs/sha256/{r.getrandbits(64):016x}",
            "position": [r.uniform(-5, 5) for _ in range(3)],
            "rotation": [0.0, 0.0, 0.0, 1.0],
            "scale": [1.0, 1.0, 1.0],
            "material": {"color": f"#{r.getrandbits(24):06x}", "roughness": r.random()},
            "visible": True,
            "locked": False,
            "created_by": "bench",
        }


def edit_update_sizes(checkpoints: list[int]) -> dict[int, tuple[int, int]]:
    """Update bytes after n edits: ``document.edit`` on the merged state vs a live peer's."""
    editor = SceneEditor(seed=0, objects=8)
    state = b""
    sizes: dict[int, tuple[int, int]] = {}
    for n in range(1, max(checkpoints) + 1):
        changes: dict[str, dict[str, Any] | None] = {
            f"obj-{n % 8:03d}": {"name": f"n{n}", "visible": True}}
        update = document.edit(state, changes)
        state = document.merge([state, update])
        live = editor.apply(dict(changes))
        if n in checkpoints:
            sizes[n] = (len(update), len(live))
    return sizes
