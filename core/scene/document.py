"""The scene document: a Yjs doc with two top-level maps, and the pure operations on its bytes.

Schema (:mod:`core.scene.scene_schema` has the rules, which the browser reads too):

- ``objects``: object id → map of ``name`` (str), ``asset`` (asset id), ``blob`` (mesh blob key),
  ``position`` [x,y,z], ``rotation`` [x,y,z,w], ``scale`` [x,y,z] (each its own key, see
  :mod:`core.scene.transform_keys`; older scenes hold one ``transform``), ``material`` (map),
  ``style`` (str), ``visible`` (bool), ``locked`` (bool), ``created_by`` (user id), ``stage``
  and ``cached_from`` (a generated object's job), and plain-valued fields of a client's own.
- ``meta``: free scene-wide settings (units, up axis, background).

Documents stored before the schema was enforced may hold anything a Yjs client can write
(binary values, sub-documents, XML, values nested thousands deep); the readers here take what
conforms and leave the rest out, so such a scene still shows, reverts and edits.

Everything here works on update bytes (the Yjs v1 encoding), so the event log, snapshots and
the wire protocol all speak the same format.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pycrdt import Doc, Map, merge_updates

from core.errors import InvalidInput
from core.scene import scene_schema
from core.scene.scene_schema import META as META
from core.scene.scene_schema import OBJECTS as OBJECTS


def load(*updates: bytes) -> Doc:
    """A doc with every update applied (an invalid update raises :class:`InvalidInput`)."""
    doc: Doc = Doc()
    for update in updates:
        if update:
            try:
                doc.apply_update(update)
            except Exception as e:  # pycrdt raises plain exceptions for bad encodings
                raise InvalidInput(f"not a Yjs update: {e}") from None
    return doc


EMPTY_UPDATE = b"\x00\x00"  # no structs, empty delete set


def is_empty(update: bytes) -> bool:
    return update in (b"", EMPTY_UPDATE)


def compact(updates: Iterable[bytes]) -> bytes:
    """One update equal to all of ``updates``, with deleted content garbage-collected.

    ``merge`` keeps everything ever written (deleted map values included), so a long-lived
    scene's merged state grows without bound; loading into a document and encoding it again
    keeps only what the document still holds, plus tombstones.
    """
    return bytes(load(*updates).get_update())


# yrs merges updates in time that grows faster than their number once there are many: 20,000
# small edits on an 800 KB scene take 1.6 s in one call, 0.05 s in groups of 64 whose results
# are merged in turn. Up to a few hundred, one call is the fastest (each group's result is
# decoded again), and that is a scene's usual tail; big scenes edited in small steps have tails
# of thousands (see ``core.events.scene.COMPACT_TAIL_FRACTION``).
MERGE_AT_ONCE = 512
MERGE_GROUP = 64


def merge(updates: Iterable[bytes]) -> bytes:
    """One update equal to all of ``updates`` together, built byte-wise (no document)."""
    present = [u for u in updates if u]
    if not present:
        return b""
    while len(present) > MERGE_AT_ONCE:
        present = [group[0] if len(group) == 1 else bytes(merge_updates(*group))
                   for group in (present[i:i + MERGE_GROUP]
                                 for i in range(0, len(present), MERGE_GROUP))]
    return present[0] if len(present) == 1 else bytes(merge_updates(*present))


def snapshot(state: bytes) -> dict[str, Any]:
    """The document as plain JSON: ``{"objects": {...}, "meta": {...}}``, its conforming
    objects, fields and settings only."""
    return scene_schema.conforming_scene(load(state))


def edit(state: bytes, changes: dict[str, dict[str, Any] | None], *, exact: bool = False,
         meta: dict[str, Any] | None = None, origin: str = "server") -> bytes:
    """The update that applies ``changes`` (object id → fields, or None to delete) to ``state``.

    Objects are patched key by key rather than replaced, so that a collaborator editing
    another key of the same object at the same time keeps their edit. With ``exact`` the keys
    not named are removed too, which restores an object to a recorded value.
    """
    doc = load(state)
    objects = doc.get(OBJECTS, type=Map)
    made: list[bytes] = []
    # The transaction's own update, not a diff against the state before: a diff carries the
    # document's whole delete set, which grows with its history.
    subscription = doc.observe(lambda event: made.append(event.update))
    try:
        with doc.transaction(origin=origin):
            for object_id, fields in changes.items():
                _set_object(objects, object_id, fields, exact)
            if meta is not None:
                _patch(doc.get(META, type=Map), meta, exact)
    finally:
        doc.unobserve(subscription)
    return merge(made) if made else EMPTY_UPDATE


def revert_update(current: bytes, target: bytes, origin: str = "revert") -> bytes:
    """The update that makes a doc at ``current`` equal to ``target`` (no history removed).
    What does not conform, in either, is not restored and is removed."""
    doc, then = load(current), snapshot(target)
    present = doc.get(OBJECTS, type=Map)
    now = scene_schema.conforming_objects(present)
    changes: dict[str, dict[str, Any] | None] = {
        oid: None for oid in present if oid not in then[OBJECTS]
    }
    for oid, fields in then[OBJECTS].items():
        if now.get(oid) != fields or len(present[oid]) != len(fields):
            changes[oid] = fields
    return edit(current, changes, exact=True, meta=then[META], origin=origin)


def _set_object(objects: Map, object_id: str, fields: dict[str, Any] | None,
                exact: bool) -> None:
    if fields is None:
        if object_id in objects:
            del objects[object_id]
        return
    existing = objects.get(object_id)
    if not isinstance(existing, Map):
        objects[object_id] = Map(fields)
        return
    _patch(existing, fields, exact)


def _patch(target: Map, fields: dict[str, Any], exact: bool) -> None:
    # Key by key, never ``to_py``: a value stored before the schema may not convert.
    keys = list(target.keys())
    if exact:
        for key in [k for k in keys if k not in fields]:
            del target[key]
    for key, value in fields.items():
        if key not in keys or not _equal(target[key], value):
            target[key] = value


def _equal(stored: Any, value: Any) -> bool:
    """Whether a stored value is ``value`` (a shared type or a value that does not conform
    never is: it is to be replaced)."""
    return scene_schema.plain_problem(stored) is None and stored == value


def diff_objects(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Objects added, removed and changed (with the names of the fields that changed)."""
    added = sorted(k for k in new if k not in old)
    removed = sorted(k for k in old if k not in new)
    changed = {}
    for oid in sorted(k for k in new if k in old and new[k] != old[k]):
        fields = sorted(f for f in set(old[oid]) | set(new[oid])
                        if old[oid].get(f) != new[oid].get(f))
        changed[oid] = fields
    return {"added": added, "removed": removed, "changed": changed}
