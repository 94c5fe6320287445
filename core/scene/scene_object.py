"""The one constructor of a scene object's fields, for everything on the server that makes one.

A generation's stages, a cache hit answered from another job and a mesh job shown on an object
all write objects into the scene as server-made edits. Built by hand in each place, their
fields drifted (a default transform here, no material there); built here, they are the same
everywhere and hold to :mod:`core.scene.scene_schema`, the rules the room holds every client's
edit to, so a server-made object is never one that a client could not have written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.errors import InvalidInput
from core.scene.scene_schema import field_problem
from core.scene.transform_keys import KEYS, identity

Vector = Sequence[float]


def scene_object(*, name: str, asset: str | None, blob: str | None, created_by: str | None,
                 stage: str = "", transform: Mapping[str, Vector] | None = None,
                 material: Mapping[str, Any] | None = None, style: str = "",
                 visible: bool = True, locked: bool = False) -> dict[str, Any]:
    """The fields of a new scene object that shows mesh ``blob`` of ``asset``.

    Parameters
    ----------
    name
        What the workspace calls it.
    asset, blob
        The asset it shows and the blob key of the mesh drawn (a stage's mesh may come
        before the asset that holds the final one).
    created_by
        The user it is shown for (a job's requester).
    stage
        ``preview``, ``medium`` or ``final`` for a generation's stage mesh, else ``""``.
    transform
        ``position : (3,)``, ``rotation : (4,)`` quaternion ``[x, y, z, w]``, ``scale : (3,)``
        (any left out: the identity's), stored as three keys of the object
        (:mod:`core.scene.transform_keys`).
    material, style, visible, locked
        As the workspace sets them; a new object has no material and no style.

    Raises
    ------
    InvalidInput
        A field the scene schema refuses, named.
    """
    unknown = sorted(set(transform or {}) - set(KEYS))
    if unknown:
        raise InvalidInput(f"not a scene object: a placement has position, rotation and "
                           f"scale, not {unknown[0][:40]!r}")
    placement = identity() | dict(transform or {})
    return checked_fields({
        "name": name, "asset": asset, "blob": blob, "stage": stage,
        **{key: [float(v) for v in vector] for key, vector in placement.items()},
        "material": dict(material or {}), "style": style, "visible": visible,
        "locked": locked, "created_by": created_by,
    })


def shown_mesh(*, blob: str, stage: str = "", asset: str | None = None) -> dict[str, Any]:
    """The fields that make an existing object show another mesh: a later stage of its
    generation, or a mesh job's result (with its new ``asset``). Nothing else of the object
    changes, so a collaborator may move it or rename it meanwhile."""
    fields: dict[str, Any] = {"blob": blob, "stage": stage}
    if asset is not None:
        fields["asset"] = asset
    return checked_fields(fields)


def checked_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` unchanged, or :class:`InvalidInput` naming the first the schema refuses."""
    for name, value in fields.items():
        problem = field_problem(name, value)
        if problem is not None:
            raise InvalidInput(f"not a scene object: {problem}")
    return fields
