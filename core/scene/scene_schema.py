"""The scene model: what the shared document may hold, in one place.

A scene is a Yjs document with two root maps (see :mod:`core.scene.document`):

- ``objects``: object id → a ``Y.Map`` of fields. The fields the studio writes have fixed
  types (:data:`FIELDS`); other fields (a client's own annotations) hold plain JSON values.
- ``meta``: scene settings, name → plain JSON value.

A plain value is null, a boolean, a finite number, a string, or a list or string-keyed map
of plain values, nested at most :data:`MAX_DEPTH` deep. Nothing else belongs in a scene:
no sub-documents, XML or text types, binary values, nested shared types or other roots.

Three readers share these rules. The room checks every edit against them before it is stored
(:func:`check_update` on the update itself, then :func:`object_problem` and
:func:`meta_problem` on what it changed); the scene's readers (snapshots, revert, the scene
projection) take from any stored document only what conforms (:func:`conforming_object`,
:func:`conforming_scene`), since documents stored before these rules may hold anything; and
the browser reads the same rules from ``frontend/src/sceneSchema.json``, which
:func:`json_schema` generates (``python -m core.scene.scene_schema``; a test keeps the two
equal).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pycrdt import Doc, Map

from core.errors import InvalidInput
from core.scene.update_reader import BigInt, Content, Insert, TypeRef, read_update

OBJECTS = "objects"
META = "meta"
ROOTS = (OBJECTS, META)

MAX_DEPTH = 8  # nesting of a plain value (a legacy transform is 2 deep, a material 2 or 3)
MAX_KEY_CHARS = 256  # object ids, field names, map keys, setting names
MAX_ID_CHARS = 1024  # asset ids, blob keys, user ids, stage and style names
# Free text (names, annotations). Bounded by what an edit can carry anyway (8 MiB frames);
# collaborators keep megabyte captions (the 1.5 MB one of the interop test) and names.
MAX_TEXT_CHARS = 2 * 1024 * 1024
MAX_FIELDS = 256  # fields of one object, entries of one plain map or list
MAX_ENTRIES = 10_000  # entries of one plain list or map
# Structs and values one edit may carry. A client pasting 1,000 objects of eleven fields at once
# (bench.workspace does) sends ~35,000 (460 KB), read and judged here in 80 ms on a loaded
# 2-core machine, where yrs applies them in 14 ms. 100,000 bounds a hostile edit to ~0.3 s of
# Python, which the room spends off its event loop (``core.collab.room.CHECK_IN_THREAD_BYTES``).
MAX_UPDATE_ITEMS = 100_000

_Check = Callable[[Any], str | None]


def _is_number(value: Any) -> bool:
    kind = type(value)  # exactly: a bool or a BigInt is an int too
    return kind is int or (kind is float and math.isfinite(value))


def plain_problem(value: Any, depth: int = MAX_DEPTH) -> str | None:
    """Why ``value`` is not a plain value, or None if it is."""
    if value is None or isinstance(value, bool) or _is_number(value):
        return None
    if isinstance(value, str):
        return None if len(value) <= MAX_TEXT_CHARS else \
            f"a text of {len(value):,} characters (at most {MAX_TEXT_CHARS:,})"
    if isinstance(value, list | dict):
        if depth <= 0:
            return f"a value nested more than {MAX_DEPTH} deep"
        if len(value) > MAX_ENTRIES:
            return f"{len(value):,} entries in one value (at most {MAX_ENTRIES:,})"
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str) or len(key) > MAX_KEY_CHARS:
                    return f"a key longer than {MAX_KEY_CHARS} characters"
                if (problem := plain_problem(item, depth - 1)) is not None:
                    return problem
            return None
        for item in value:
            if (problem := plain_problem(item, depth - 1)) is not None:
                return problem
        return None
    return f"a {_kind(value)}, not a plain value"


def _kind(value: Any) -> str:
    if isinstance(value, float):
        return "non-finite number"
    if isinstance(value, BigInt):
        return "BigInt"
    if isinstance(value, bytes):
        return "binary value (Uint8Array)"
    if isinstance(value, Doc):
        return "sub-document"
    name = type(value).__name__
    return f"shared {name}" if type(value).__module__.startswith("pycrdt") else name


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"a {_kind(value)} where a text belongs"
    return plain_problem(value)


def _identifier(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return f"a {_kind(value)} where an id belongs"
    return None if len(value) <= MAX_ID_CHARS else \
        f"an id of {len(value):,} characters (at most {MAX_ID_CHARS})"


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"a {_kind(value)} where true or false belongs"


# An object's placement: position (x, y, z), rotation (a quaternion x, y, z, w), scale
# (x, y, z), each a key of its own so that concurrent edits of different parts all survive
# (core.scene.transform_keys says why, and why no finer).
VECTOR_LENGTHS = {"position": 3, "rotation": 4, "scale": 3}
LEGACY_TRANSFORM = "transform"  # the three as one value, in scenes stored before


def _vector(key: str) -> _Check:
    length = VECTOR_LENGTHS[key]

    def check(value: Any) -> str | None:
        if isinstance(value, list) and len(value) == length and all(map(_is_number, value)):
            return None
        return f"a {key} is {length} finite numbers"
    return check


def _vector_schema(n: int) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "number"}, "minItems": n, "maxItems": n}


def _transform(value: Any) -> str | None:
    if not isinstance(value, dict):
        return f"a {_kind(value)} where a transform belongs"
    for key, item in value.items():
        length = VECTOR_LENGTHS.get(key)
        if length is None:
            return f"a transform has position, rotation and scale, not {str(key)[:40]!r}"
        if not (isinstance(item, list) and len(item) == length and all(map(_is_number, item))):
            return f"a transform's {key} is {length} finite numbers"
    return None


def split_transform(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with a legacy ``transform`` read into ``position``, ``rotation`` and
    ``scale`` (keys already there win) and left out; ``fields`` itself where it has none.
    Every reader of stored objects goes through this, so old scenes read as new ones."""
    if LEGACY_TRANSFORM not in fields:
        return fields
    legacy = fields[LEGACY_TRANSFORM]
    split = {name: value for name, value in fields.items() if name != LEGACY_TRANSFORM}
    if isinstance(legacy, dict) and _transform(legacy) is None:
        for key, vector in legacy.items():
            split.setdefault(key, list(vector))
    return split


def _material(value: Any) -> str | None:
    if not isinstance(value, dict):
        return f"a {_kind(value)} where a material (a map) belongs"
    return plain_problem(value)


# The fields the studio itself writes (core.events.studio, api.routes.generation, the GPU
# worker, frontend/src/scene.ts), with their checks and JSON Schema.
FIELDS: dict[str, tuple[_Check, dict[str, Any]]] = {
    "name": (_text, {"type": "string", "maxLength": MAX_TEXT_CHARS}),
    "asset": (_identifier, {"type": ["string", "null"], "maxLength": MAX_ID_CHARS}),
    "blob": (_identifier, {"type": ["string", "null"], "maxLength": MAX_ID_CHARS}),
    "stage": (_identifier, {"type": ["string", "null"], "maxLength": MAX_ID_CHARS}),
    "cached_from": (_identifier, {"type": ["string", "null"], "maxLength": MAX_ID_CHARS}),
    "style": (_identifier, {"type": ["string", "null"], "maxLength": MAX_ID_CHARS}),
    "created_by": (_identifier, {"type": ["string", "null"], "maxLength": MAX_ID_CHARS}),
    "visible": (_flag, {"type": "boolean"}),
    "locked": (_flag, {"type": "boolean"}),
    **{key: (_vector(key), _vector_schema(n)) for key, n in VECTOR_LENGTHS.items()},
    LEGACY_TRANSFORM: (_transform, {
        "type": "object", "additionalProperties": False, "deprecated": True,
        "description": "scenes stored before position, rotation and scale were keys of their "
                       "own; read as if split, written by nobody",
        "properties": {key: _vector_schema(n) for key, n in VECTOR_LENGTHS.items()}}),
    "material": (_material, {"type": "object", "additionalProperties": {"$ref": "#/$defs/plain"}}),
}


def field_problem(name: Any, value: Any) -> str | None:
    """Why ``value`` cannot be field ``name`` of an object, or None."""
    if not isinstance(name, str) or len(name) > MAX_KEY_CHARS:
        return f"a field name longer than {MAX_KEY_CHARS} characters"
    known = FIELDS.get(name)
    problem = known[0](value) if known else plain_problem(value)
    return None if problem is None else f"field {name!r}: {problem}"


def object_problem(value: Any) -> str | None:
    """Why ``value`` (a value of the ``objects`` map, as pycrdt gives it) is not an object."""
    if not isinstance(value, Map):
        return f"a {_kind(value)} where an object (a map of fields) belongs"
    if len(value) > MAX_FIELDS:
        return f"{len(value)} fields (at most {MAX_FIELDS})"
    for name, field in value.items():
        if (problem := field_problem(name, field)) is not None:
            return problem
    return None


def meta_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a scene setting."""
    return plain_problem(value)


def key_problem(key: Any) -> str | None:
    """Why ``key`` cannot name an object, a field or a setting."""
    if not isinstance(key, str) or len(key) > MAX_KEY_CHARS:
        return f"a key longer than {MAX_KEY_CHARS} characters"
    return None


# -- edits ------------------------------------------------------------------------------------


def check_update(update: bytes) -> None:
    """Refuse (:class:`InvalidInput`) an update that inserts anything a scene cannot hold,
    judged from the update alone: its content types, roots, keys and plain values. What
    depends on where an item lands in the document (a value replacing an object, a field's
    type) is judged after it is applied, by :func:`object_problem` and :func:`meta_problem`.
    """
    for insert in read_update(update, max_depth=MAX_DEPTH, max_items=MAX_UPDATE_ITEMS):
        problem = _insert_problem(insert)
        if problem is not None:
            raise InvalidInput(f"not part of the scene: {problem}")


_FOREIGN_CONTENT: dict[int, str] = {
    Content.DOC: "a sub-document",
    Content.BINARY: "a binary value (Uint8Array)",
    Content.STRING: "text (Y.Text or a string in a Y.Array)",
    Content.EMBED: "a text embed",
    Content.FORMAT: "text formatting",
    Content.JSON: "a legacy JSON value",
}


def _insert_problem(insert: Insert) -> str | None:
    where = f" at {insert.key[:60]!r}" if insert.key is not None else ""
    foreign = _FOREIGN_CONTENT.get(insert.content)
    if foreign is not None:
        return foreign + where
    if insert.content == Content.TYPE and insert.type_ref != TypeRef.MAP:
        known: dict[int | None, str] = {t.value: t.name for t in TypeRef}
        return f"a shared {known.get(insert.type_ref, str(insert.type_ref))} type{where}"
    if insert.root is not None and insert.root not in ROOTS:
        return f"a root {insert.root[:60]!r} (a scene has {OBJECTS!r} and {META!r})"
    if insert.has_parent and insert.key is None:
        return "a list entry in a map"
    if insert.key is not None and (problem := key_problem(insert.key)) is not None:
        return problem
    if insert.root == OBJECTS and insert.content == Content.ANY:
        return f"a plain value where object {insert.key[:60]!r} (a map of fields) belongs" \
            if insert.key is not None else "a plain value in the objects map"
    if insert.content == Content.TYPE and insert.has_parent and insert.root != OBJECTS:
        return f"a map nested in a map{where}"
    for value in insert.values:
        if insert.key is not None and insert.has_parent and insert.root is None:
            problem = field_problem(insert.key, value)  # the item's parent is an object
        else:
            problem = None if (found := plain_problem(value)) is None else found + where
        if problem is not None:
            return problem
    return None


@contextmanager
def changes_of(doc: Doc) -> Iterator[SceneChanges]:
    """What is applied to ``doc`` inside the block changes.

    The roots' deep events come from yrs directly (``integrated``): pycrdt's own
    ``observe_deep`` reads the callback's signature on every subscription and rebuilds each
    event's values in recursive Python, 300 µs of a 400 µs check of one transform edit, and
    past the recursion limit for a value stored nested thousands deep.
    """
    changes = SceneChanges(doc.get(OBJECTS, type=Map), doc.get(META, type=Map))
    subscriptions = [changes.roots[0].integrated.observe_deep(changes.on_objects),
                     changes.roots[1].integrated.observe_deep(changes.on_meta)]
    try:
        yield changes
    finally:
        for subscription in subscriptions:
            subscription.drop()


class SceneChanges:
    """What transactions changed in a scene document, collected from its roots' deep
    observers: objects replaced, added or removed whole (None) or by field, and settings.
    Checking these alone keeps the cost of an edit's check proportional to the edit, and
    leaves alone what an older document holds that the edit does not touch."""

    def __init__(self, objects: Map, meta: Map) -> None:
        self.roots = (objects, meta)
        self.objects: dict[str, set[str] | None] = {}
        self.meta: set[str] = set()

    def on_objects(self, events: list[Any]) -> None:
        for event in events:
            path = event.path
            if not path:
                for object_id in event.keys:
                    self.objects[str(object_id)] = None
            else:
                object_id = str(path[0])
                fields = self.objects.setdefault(object_id, set())
                if fields is not None:
                    fields.update([str(path[1])] if len(path) > 1 else map(str, event.keys))

    def on_meta(self, events: list[Any]) -> None:
        for event in events:
            self.meta.update([str(event.path[0])] if event.path else map(str, event.keys))

    def problem(self) -> str | None:
        """Why the changed part of the document does not conform, or None."""
        objects, meta = self.roots
        for object_id, fields in self.objects.items():
            if object_id not in objects:
                continue
            value = objects[object_id]
            if fields is None or not isinstance(value, Map):
                problem = key_problem(object_id) or object_problem(value)
            else:
                problem = _fields_problem(value, fields)
            if problem is not None:
                return f"object {object_id[:60]!r}: {problem}"
        for key in self.meta:
            if key in meta and (problem := key_problem(key) or meta_problem(meta[key])):
                return f"setting {key[:60]!r}: {problem}"
        return None


def _fields_problem(value: Map, fields: set[str]) -> str | None:
    if len(value) > MAX_FIELDS:
        return f"{len(value)} fields (at most {MAX_FIELDS})"
    for name in fields:
        if name in value and (problem := field_problem(name, value[name])) is not None:
            return problem
    return None


# -- readers of stored documents ----------------------------------------------------------------


def conforming_object(value: Any) -> dict[str, Any] | None:
    """An object's fields as plain values, leaving out those that do not conform; None
    where ``value`` is not an object at all. For documents stored before the rules."""
    if not isinstance(value, Map):
        return None
    fields: dict[str, Any] = {}
    for name, field in value.items():
        if field_problem(name, field) is None:
            fields[name] = field
    return split_transform(fields)


def conforming_fields(fields: Any) -> dict[str, Any] | None:
    """The conforming fields of an object given as plain JSON (a stored copy of one)."""
    if not isinstance(fields, dict):
        return None
    return split_transform({name: value for name, value in fields.items()
                            if field_problem(name, value) is None})


def conforming_meta(meta: Map) -> dict[str, Any]:
    return {key: value for key, value in meta.items()
            if key_problem(key) is None and meta_problem(value) is None}


def conforming_objects(objects: Map) -> dict[str, dict[str, Any]]:
    result = {}
    for object_id, value in objects.items():
        fields = conforming_object(value) if key_problem(object_id) is None else None
        if fields is not None:
            result[object_id] = fields
    return result


def conforming_scene(doc: Doc) -> dict[str, Any]:
    """``{"objects": ..., "meta": ...}`` of ``doc``: every conforming object and setting."""
    return {OBJECTS: conforming_objects(doc.get(OBJECTS, type=Map)),
            META: conforming_meta(doc.get(META, type=Map))}


# -- the browser's copy -------------------------------------------------------------------------


def json_schema() -> dict[str, Any]:
    """The scene object as JSON Schema (2020-12), with the limits the checks use."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "orfeas:scene-object",
        "title": "A scene object: the fields of one entry of the scene's objects map",
        "description": "Generated by `python -m core.scene.scene_schema`; do not edit.",
        "type": "object",
        "maxProperties": MAX_FIELDS,
        "propertyNames": {"maxLength": MAX_KEY_CHARS},
        "properties": {name: spec for name, (_, spec) in FIELDS.items()},
        "additionalProperties": {"$ref": "#/$defs/plain"},
        "$defs": {"plain": {
            "description": "null, a boolean, a finite number, a string, or a list or map of "
                           f"plain values, nested at most {MAX_DEPTH} deep",
            "type": ["null", "boolean", "number", "string", "array", "object"],
            "maxLength": MAX_TEXT_CHARS,
        }},
        "x-limits": {"max_depth": MAX_DEPTH, "max_key_chars": MAX_KEY_CHARS,
                     "max_id_chars": MAX_ID_CHARS, "max_text_chars": MAX_TEXT_CHARS,
                     "max_fields": MAX_FIELDS, "max_entries": MAX_ENTRIES,
                     "vector_lengths": VECTOR_LENGTHS},
    }


if __name__ == "__main__":
    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
