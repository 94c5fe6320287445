"""An object's placement as three keys of its map: ``position``, ``rotation`` and ``scale``.

Yjs merges a map key by key: of two concurrent writes to one key, one wins whole. When the
placement was one ``transform`` value, a collaborator's offline move silently wiped another's
concurrent rotation or scaling of the same object. As three keys, edits of different parts all
survive. The keys stop at that grain on purpose: a rotation is a quaternion whose four numbers
only mean something together (merged number by number, two rotations give a third nobody chose,
and not a unit one), and the viewport moves an object as one point on the ground plane, so a
position merged per axis from two drags would be a place neither collaborator put it.

Scenes stored before hold ``transform`` ({position, rotation, scale}). Every reader takes such an
object as if split (:func:`core.scene.scene_schema.split_transform`; the three keys win over a
``transform`` beside them), and a room that loads such a scene first commits one server-made
update that splits its objects (:func:`split_update`, through ``Studio.split_transforms``). The
legacy key stays in the schema so that old documents still conform and time travel shows them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pycrdt import Map

from core.scene import document
from core.scene.scene_schema import (
    LEGACY_TRANSFORM,
    OBJECTS,
    VECTOR_LENGTHS,
    field_problem,
    split_transform,
)

KEYS = tuple(VECTOR_LENGTHS)  # position, rotation, scale


def identity() -> dict[str, list[float]]:
    """At the origin, unrotated (the quaternion ``[x, y, z, w]``), at scale 1."""
    return {"position": [0.0, 0.0, 0.0], "rotation": [0.0, 0.0, 0.0, 1.0],
            "scale": [1.0, 1.0, 1.0]}


def placement(fields: Mapping[str, Any]) -> dict[str, list[float]]:
    """The object's position, rotation and scale from either layout; the identity's part
    where a part is missing or malformed."""
    split = split_transform(dict(fields))
    default = identity()
    return {key: list(split[key]) if key in split and field_problem(key, split[key]) is None
            else default[key] for key in KEYS}


def split_update(state: bytes, origin: str) -> bytes | None:
    """The update that splits every legacy ``transform`` of the scene at ``state`` into the
    three keys (keeping those a newer client already wrote), or None where there is none, so
    that running it again changes nothing."""
    doc = document.load(state)
    objects = doc.get(OBJECTS, type=Map)
    made: list[bytes] = []
    subscription = doc.observe(lambda event: made.append(event.update))
    try:
        with doc.transaction(origin=origin):
            for value in objects.values():
                if isinstance(value, Map) and LEGACY_TRANSFORM in value:
                    _split(value)
    finally:
        doc.unobserve(subscription)
    return document.merge(made) if made else None


def _split(fields: Map) -> None:
    legacy = fields[LEGACY_TRANSFORM]
    if isinstance(legacy, dict) and field_problem(LEGACY_TRANSFORM, legacy) is None:
        for key, vector in legacy.items():
            if key not in fields:
                fields[key] = [float(v) for v in vector]
    del fields[LEGACY_TRANSFORM]
