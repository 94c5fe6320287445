"""The scene schema: which edits it refuses from the update alone, which only once applied, and
how the readers of stored documents (snapshot, revert) take what conforms from anything."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text, XmlFragment

from core.errors import InvalidInput
from core.scene import document, scene_schema

ROOT = Path(__file__).resolve().parents[2]


def _made(change: Callable[[Doc], None], base: Doc | None = None) -> bytes:
    doc = base or Doc()
    state = doc.get_state()
    change(doc)
    return doc.get_update(state)


def _objects(doc: Doc) -> Map:
    return doc.get("objects", type=Map)


def _set(key: str, value: Any) -> Callable[[Doc], None]:
    return lambda doc: _objects(doc).__setitem__(key, value)


def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


GOOD = {
    "an object as the studio writes it": _set("lamp", Map({
        "name": "lamp", "asset": "a1", "blob": "blobs/sha256/ab/cd", "stage": "final",
        "position": [0, 1.5, 2], "rotation": [0, 0, 0, 1], "scale": [1, 1, 1],
        "material": {"kind": "metal", "colour": [1, 0.5, 0]}, "style": "", "visible": True,
        "locked": False, "created_by": "u1", "cached_from": None})),
    "an object as stored before its placement was split": _set("lamp", Map({
        "transform": {"position": [0, 1.5, 2], "rotation": [0, 0, 0, 1], "scale": [1, 1, 1]}})),
    "a client's own fields": _set("lamp", Map({"caption": "x" * 100_000, "k0": [1, "a"]})),
    "a setting": lambda doc: doc.get("meta", type=Map).__setitem__("units", "m"),
}

REFUSED = {
    "binary value": (_set("evil", b"\x01\x02\x03"), "object 'evil'"),
    "string as object": (_set("evil", "hello"), "object 'evil'"),
    "sub-document": (_set("evil", Doc()), "sub-document"),
    "XML fragment": (_set("evil", XmlFragment()), "XML_FRAGMENT"),
    "array": (_set("evil", Array([1, 2])), "ARRAY"),
    "text root": (lambda doc: doc.get("notes", type=Text).insert(0, "hi"), "text"),
    "other root": (lambda doc: doc.get("other", type=Map).__setitem__("k", 1), "root 'other'"),
    "nested arrays": (_set("tower", Map({"floors": _deep(3_000)})), "nested deeper"),
    "nested map": (_set("lamp", Map({"parts": Map({"a": 1})})), "map nested"),
    "binary field": (_set("lamp", Map({"thumbnail": b"\x89PNG"})), "binary"),
    "non-finite number": (_set("lamp", Map({"weight": float("inf")})), "non-finite"),
    "wrong type of a known field": (_set("lamp", Map({"visible": "yes"})), "'visible'"),
    "a bad transform": (_set("lamp", Map({"transform": {"position": [0, 1]}})), "transform"),
    "a short position": (_set("lamp", Map({"position": [0, 1]})), "'position'"),
    "a rotation of text": (_set("lamp", Map({"rotation": ["a", 0, 0, 1]})), "'rotation'"),
    "a scale that is a map": (_set("lamp", Map({"scale": {"x": 1}})), "'scale'"),
    "a long id": (_set("lamp", Map({"blob": "b" * 5_000})), "'blob'"),
    "a huge name": (_set("lamp", Map({"name": "n" * (scene_schema.MAX_TEXT_CHARS + 1)})),
                    "'name'"),
    "a long object id": (_set("x" * 1_000, Map({"name": "x"})), "key longer"),
    "a map as a setting": (lambda doc: doc.get("meta", type=Map).__setitem__(
        "grid", Map({"a": 1})), "map nested"),
}


@pytest.mark.parametrize("change", list(GOOD.values()), ids=list(GOOD))
def test_the_scene_takes_what_the_studio_writes(change: Callable[[Doc], None]) -> None:
    scene_schema.check_update(_made(change))


@pytest.mark.parametrize(("change", "why"), list(REFUSED.values()), ids=list(REFUSED))
def test_an_update_that_inserts_what_the_scene_cannot_hold_is_refused(
        change: Callable[[Doc], None], why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        scene_schema.check_update(_made(change))


def _applied(base: bytes, update: bytes) -> str | None:
    """Apply ``update`` to a document at ``base``, as the room does, and judge what changed."""
    doc: Doc = Doc()
    doc.apply_update(base)
    with scene_schema.changes_of(doc) as changes:
        doc.apply_update(update)
    return changes.problem()


def test_what_depends_on_where_an_edit_lands_is_judged_once_applied() -> None:
    """Replacing an existing object or field leaves its parent out of the update: only the
    document can say that a plain value now stands where an object belongs."""
    base: Doc = Doc()
    _objects(base)["lamp"] = Map({"name": "lamp", "visible": True})
    base.get("meta", type=Map)["units"] = "m"
    state = base.get_update()

    def edited(change: Callable[[Doc], None]) -> bytes:
        doc: Doc = Doc()
        doc.apply_update(state)
        update = _made(change, doc)
        scene_schema.check_update(update)  # nothing to see in the update alone
        return update

    assert _applied(state, edited(_set("lamp", "gone"))) == \
        "object 'lamp': a str where an object (a map of fields) belongs"
    visible = edited(lambda doc: _objects(doc)["lamp"].__setitem__("visible", "no"))
    assert "field 'visible'" in str(_applied(state, visible))
    meta = edited(lambda doc: doc.get("meta", type=Map).__setitem__("units", Map({"a": 1})))
    assert "setting 'units'" in str(_applied(state, meta))
    fine = edited(lambda doc: _objects(doc)["lamp"].__setitem__("name", "chair"))
    assert _applied(state, fine) is None


def test_an_edit_is_judged_on_the_fields_it_changes() -> None:
    """A field stored before the schema does not make every later edit of its object fail."""
    old: Doc = Doc()
    _objects(old)["lamp"] = Map({"name": "lamp", "thumbnail": b"\x89PNG"})
    state = old.get_update()
    doc: Doc = Doc()
    doc.apply_update(state)
    update = _made(lambda d: _objects(d)["lamp"].__setitem__("name", "chair"), doc)
    assert _applied(state, update) is None


def _hostile_document() -> bytes:
    """A scene as stock clients could store it before the schema was enforced."""
    doc: Doc = Doc()
    objects = _objects(doc)
    objects["ok"] = Map({"name": "fine", "visible": True, "thumbnail": b"\x89PNG",
                         "weight": float("nan"), "tower": _deep(3_000)})
    objects["bytes"] = b"\x01\x02\x03"
    objects["sub"] = Doc()
    objects["xml"] = XmlFragment()
    objects["deep"] = Array([_deep(3_000)])
    objects["nested"] = Map({"name": "n", "parts": Map({"a": Map({"b": 1})})})
    meta = doc.get("meta", type=Map)
    meta["units"] = "m"
    meta["bad"] = _deep(3_000)
    return doc.get_update()


def test_a_snapshot_of_a_stored_bad_document_holds_what_conforms() -> None:
    scene = document.snapshot(_hostile_document())
    assert scene == {"objects": {"ok": {"name": "fine", "visible": True},
                                 "nested": {"name": "n"}},
                     "meta": {"units": "m"}}
    json.dumps(scene, allow_nan=False)  # what GET .../state answers with


def test_reverting_a_bad_document_removes_what_does_not_conform() -> None:
    target: Doc = Doc()
    _objects(target)["ok"] = Map({"name": "before"})
    hostile = _hostile_document()
    reverted = document.merge([hostile, document.revert_update(hostile, target.get_update())])
    restored: Doc = Doc()
    restored.apply_update(reverted)
    assert _objects(restored).to_py() == {"ok": {"name": "before"}}
    assert restored.get("meta", type=Map).to_py() == {}


def test_the_browser_reads_the_same_schema() -> None:
    """``frontend/src/sceneSchema.json`` is what ``python -m core.scene.scene_schema`` writes."""
    shipped = json.loads((ROOT / "frontend" / "src" / "sceneSchema.json").read_text())
    assert shipped == json.loads(json.dumps(scene_schema.json_schema())), \
        "regenerate it: python -m core.scene.scene_schema > frontend/src/sceneSchema.json"
    assert set(shipped["properties"]) == set(scene_schema.FIELDS)
