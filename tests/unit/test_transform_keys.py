"""An object's placement is three keys (:mod:`core.scene.transform_keys`): scenes stored with one
``transform`` value read as if split, and the one update that splits them keeps what newer
clients wrote and changes nothing the second time."""

from __future__ import annotations

from pycrdt import Doc, Map

from core.scene import document, origins, transform_keys
from core.scene.scene_schema import OBJECTS

LEGACY = {"position": [1, 2, 3], "rotation": [0, 0, 0, 1], "scale": [2, 2, 2]}


def _stored(objects: dict[str, dict[str, object]]) -> bytes:
    doc: Doc = Doc()
    root = doc.get(OBJECTS, type=Map)
    with doc.transaction():
        for object_id, fields in objects.items():
            root[object_id] = Map(fields)
    return bytes(doc.get_update())


def test_readers_take_a_legacy_transform_as_the_three_keys() -> None:
    state = _stored({"lamp": {"name": "lamp", "transform": LEGACY},
                     "cup": {"transform": LEGACY, "position": [9, 9, 9]}})
    objects = document.snapshot(state)[OBJECTS]
    assert objects["lamp"] == {"name": "lamp", **LEGACY}
    assert objects["cup"] == {**LEGACY, "position": [9, 9, 9]}  # the newer key wins
    assert transform_keys.placement({"transform": {"position": [1, 2]}}) == \
        transform_keys.identity()


def test_the_split_keeps_newer_keys_and_runs_once() -> None:
    state = _stored({"lamp": {"name": "lamp", "transform": LEGACY},
                     "cup": {"transform": LEGACY, "scale": [5, 5, 5]},
                     "new": {"position": [0, 0, 1]}})
    update = transform_keys.split_update(state, origins.SPLIT_TRANSFORMS)
    assert update is not None
    split = document.merge([state, update])
    doc = document.load(split)
    lamp = doc.get(OBJECTS, type=Map)["lamp"]
    assert "transform" not in lamp and lamp["position"] == [1.0, 2.0, 3.0]
    assert document.snapshot(split)[OBJECTS]["cup"] == {**LEGACY, "scale": [5, 5, 5]}
    assert document.snapshot(split)[OBJECTS]["new"] == {"position": [0, 0, 1]}
    assert transform_keys.split_update(split, origins.SPLIT_TRANSFORMS) is None
    assert transform_keys.split_update(_stored({"new": {"position": [0, 0, 1]}}), "x") is None


def test_a_malformed_legacy_transform_is_dropped_not_copied() -> None:
    state = _stored({"lamp": {"transform": {"position": [0, 1]}, "name": "lamp"}})
    update = transform_keys.split_update(state, origins.SPLIT_TRANSFORMS)
    assert update is not None
    assert document.snapshot(document.merge([state, update]))[OBJECTS]["lamp"] == {
        "name": "lamp"}
