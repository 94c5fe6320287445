"""One constructor builds a scene object (:mod:`core.scene.scene_object`): what it builds is an
object the room would take from a client, it refuses what the scene schema refuses, and no
module of the server builds an object's fields by hand beside it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core.errors import InvalidInput
from core.scene import document
from core.scene.scene_object import scene_object, shown_mesh
from core.scene.transform_keys import identity

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ("scene_object.py", "scene_schema.py")  # the constructor, and the rules it follows


def test_an_object_reads_back_as_it_was_built_and_conforms():
    fields = scene_object(name="lamp", asset="a1", blob="blobs/sha256/ab/cd", stage="preview",
                          created_by="u1", transform={"position": [1, 2, 3],
                                                      "rotation": [0, 0, 0, 1],
                                                      "scale": [2, 2, 2]})
    state = document.edit(b"", {"lamp": fields}, origin="test")
    stored = document.snapshot(state)[document.OBJECTS]["lamp"]
    assert stored == fields
    assert (stored["position"], stored["scale"]) == ([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    assert "transform" not in stored
    assert (stored["material"], stored["style"], stored["visible"], stored["locked"]) == (
        {}, "", True, False)


def test_the_default_transform_is_the_identity_and_not_shared():
    first = scene_object(name="a", asset=None, blob=None, created_by=None)
    second = scene_object(name="b", asset=None, blob=None, created_by=None)
    assert {key: first[key] for key in ("position", "rotation", "scale")} == identity()
    first["position"][0] = 5.0
    assert second["position"] == identity()["position"]


@pytest.mark.parametrize(("given", "named"), [
    ({"transform": {"position": [0, 0]}}, "position is 3 finite numbers"),
    ({"transform": {"skew": [0, 0, 0]}}, "skew"),
    ({"material": {"kind": float("nan")}}, "material"),
    ({"name": "x" * (2 * 1024 * 1024 + 1)}, "name"),
    ({"blob": "b" * 1025}, "blob"),
])
def test_fields_the_scene_schema_refuses_are_refused(given, named):
    arguments = {"name": "lamp", "asset": "a1", "blob": "k", "created_by": "u1"} | given
    with pytest.raises(InvalidInput, match=named):
        scene_object(**arguments)


def test_showing_another_mesh_changes_the_mesh_fields_alone():
    assert shown_mesh(blob="k2", stage="medium") == {"blob": "k2", "stage": "medium"}
    assert shown_mesh(blob="k3", asset="a2") == {"blob": "k3", "stage": "", "asset": "a2"}
    with pytest.raises(InvalidInput, match="stage"):
        shown_mesh(blob="k", stage=["final"])  # type: ignore[arg-type]


def _hand_built_objects(path: Path) -> list[int]:
    """Lines of dict literals that spell out a whole object (a placement beside its creator)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Dict):
            keys = {key.value for key in node.keys if isinstance(key, ast.Constant)}
            if "created_by" in keys and keys & {"position", "transform"}:
                lines.append(node.lineno)
    return lines


def test_no_server_module_builds_an_object_by_hand():
    built = {str(path.relative_to(ROOT)): lines
             for folder in ("core", "api", "workers")
             for path in sorted((ROOT / folder).rglob("*.py"))
             if path.name not in SCHEMA and (lines := _hand_built_objects(path))}
    assert built == {}
