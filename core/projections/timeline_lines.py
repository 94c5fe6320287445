"""Timeline lines a person reads: "moved Teapot", "renamed cube to Teapot", "deleted cup".

A scene edit's event holds CRDT bytes, so the history model stores a placeholder line for it
(its origin and size). What the edit did is known by the scene objects model, which keeps one
``rm_scene_history`` row per object whose value an edit changed (and the row before it); the
timeline reads those rows at query time for the page it answers (:data:`SCENE_CHANGES`) and
says in words what changed. Working from the touched objects alone keeps a page's cost bounded
by its edits, not by the scene, and adds nothing to the projection's work per edit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from core.scene import origins
from core.scene.transform_keys import placement

SCENE_EDIT = "Scene.Updated"
SCENE_CHANGES = (
    "SELECT h.from_position AS position, h.key, h.value, before.value AS before"
    " FROM rm_scene_history h LEFT JOIN LATERAL ("
    "  SELECT p.value FROM rm_scene_history p WHERE p.project_id = h.project_id"
    "  AND p.root = h.root AND p.key = h.key AND p.from_position < h.from_position"
    "  ORDER BY p.from_position DESC LIMIT 1) before ON true"
    " WHERE h.project_id = %s AND h.root = 'objects' AND h.from_position = ANY(%s)"
    " ORDER BY h.from_position, h.key"
)
"""The objects each of a page's scene edits changed: (position, object id, value after and
before as JSON text, NULL where there was none)."""

SHOWN_OBJECTS = 3  # objects named in one line; the rest are counted
_STORED_EDIT = re.compile(r"^edited the scene \((?P<origin>.*), \d+ bytes\)$")
_BY_ORIGIN = {origins.Kind.UNDO: "undid a change: ", origins.Kind.REDO: "redid a change: ",
              origins.Kind.REVERT: "reverted: ", origins.Kind.JOB_UNDO: "undid a job: "}
_TOGGLES = {"visible": ("showed", "hid"), "locked": ("locked", "unlocked")}


def readable(rows: Iterable[dict[str, Any]], changes: Iterable[dict[str, Any]]
             ) -> list[dict[str, Any]]:
    """The timeline ``rows`` with each scene edit's summary said in words, from the
    :data:`SCENE_CHANGES` rows of the same page."""
    by_position: dict[int, list[tuple[str, Any, Any]]] = {}
    for change in changes:
        by_position.setdefault(change["position"], []).append(
            (change["key"], _json(change["before"]), _json(change["value"])))
    return [row | {"summary": scene_edit_line(row["summary"], by_position.get(row["position"]))}
            if row["kind"] == SCENE_EDIT else row for row in rows]


MEMBER_LINES = frozenset({"Project.MemberInvited", "Project.MemberRoleChanged",
                          "Project.MemberRemoved"})
_USER_ID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def member_ids(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The user ids the page's membership lines name (they store ids, not names)."""
    return sorted({found for row in rows if row["kind"] in MEMBER_LINES
                   for found in _USER_ID.findall(row["summary"])})


def named_members(rows: Iterable[dict[str, Any]], usernames: Mapping[str, str]
                  ) -> list[dict[str, Any]]:
    """``rows`` with the user ids of membership lines replaced by usernames (looked up as the
    page is read, so a renamed account reads as it is named now)."""
    def name(found: re.Match[str]) -> str:
        return usernames.get(found[0], "(a deleted account)")
    return [row | {"summary": _USER_ID.sub(name, row["summary"])}
            if row["kind"] in MEMBER_LINES else row for row in rows]


REVERT_LINE = "Project.RevertedTo"
_REVERTED = re.compile(r"^reverted to version (?P<id>\S+) \(position \d+\)$")


def reverted_versions(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The version ids the page's revert lines name."""
    return sorted({found["id"] for row in rows if row["kind"] == REVERT_LINE
                   and (found := _REVERTED.match(row["summary"]))})


def named_versions(rows: Iterable[dict[str, Any]], messages: Mapping[str, str]
                   ) -> list[dict[str, Any]]:
    """``rows`` with revert lines naming the version by its message: reverted to “first”."""
    def line(row: dict[str, Any]) -> dict[str, Any]:
        found = _REVERTED.match(row["summary"]) if row["kind"] == REVERT_LINE else None
        if found is None or found["id"] not in messages:
            return row
        return row | {"summary": f"reverted to the version “{messages[found['id']]}”"}
    return [line(row) for row in rows]


def scene_edit_line(stored: str, changes: list[tuple[str, Any, Any]] | None) -> str:
    """What one scene edit did, from the objects it changed (object id, before, after)."""
    match = _STORED_EDIT.match(stored)
    origin = origins.parse(match["origin"]) if match else None
    if origin is not None and origin.reference == "split-transforms":
        return "kept position, rotation and scale apart so that concurrent edits all survive"
    said = describe(changes or [])
    prefix = _BY_ORIGIN.get(origin.kind, "") if origin is not None else ""
    return f"{prefix}{said}" if said else (prefix.removesuffix(": ") or "edited the scene")


def describe(changes: list[tuple[str, Any, Any]]) -> str:
    """``moved Teapot``, ``added cup and deleted bowl``; empty where nothing readable changed."""
    phrases: dict[str, list[str]] = {}
    for _, before, after in changes:
        verb, name = _verb(before, after)
        if verb:
            phrases.setdefault(verb, []).append(name)
    parts = [_with_objects(verb, names) for verb, names in phrases.items()]
    if len(parts) > SHOWN_OBJECTS:
        return f"{'; '.join(parts[:SHOWN_OBJECTS])} and {len(parts) - SHOWN_OBJECTS} more changes"
    return "; ".join(parts)


def _verb(before: Any, after: Any) -> tuple[str, str]:
    old = before if isinstance(before, dict) else None
    new = after if isinstance(after, dict) else None
    name = _name(new or old or {})
    if old is None and new is None:
        return "", name
    if old is None:
        return "added", name
    if new is None:
        return "deleted", name
    if old.get("name") != new.get("name") and new.get("name"):
        return f"renamed {_name(old)} to", name
    verbs = _field_verbs(old, new)
    return (" and ".join(verbs) if verbs else "edited"), name


def _field_verbs(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    verbs = []
    was, now = placement(old), placement(new)
    verbs += [verb for key, verb in (("position", "moved"), ("rotation", "rotated"),
                                     ("scale", "scaled")) if was[key] != now[key]]
    if old.get("material") != new.get("material"):
        verbs.append("recoloured")
    if old.get("style") != new.get("style"):
        verbs.append("restyled")
    if old.get("blob") != new.get("blob"):
        stage = new.get("stage")
        verbs.append(f"showed the {stage} stage of" if stage else "changed the mesh of")
    for key, (on, off) in _TOGGLES.items():
        if bool(old.get(key, key == "visible")) != bool(new.get(key, key == "visible")):
            verbs.append(on if new.get(key) else off)
    return verbs


def _with_objects(verb: str, names: list[str]) -> str:
    if len(names) > SHOWN_OBJECTS:
        shown = [*names[:SHOWN_OBJECTS], f"{len(names) - SHOWN_OBJECTS} more"]
    else:
        shown = names
    listed = ", ".join(shown[:-1]) + f" and {shown[-1]}" if len(shown) > 1 else shown[0]
    return f"{verb} {listed}"


def _name(fields: Mapping[str, Any]) -> str:
    name = fields.get("name")
    return name.strip()[:80] if isinstance(name, str) and name.strip() else "an unnamed object"


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)
