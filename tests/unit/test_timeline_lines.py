"""Scene edits in the timeline read as what they did to which object, never as bytes or ids."""

from __future__ import annotations

from core.projections.timeline_lines import (
    describe,
    member_ids,
    named_members,
    named_versions,
    reverted_versions,
    scene_edit_line,
)

TEAPOT = {"name": "Teapot", "position": [0, 0, 0], "rotation": [0, 0, 0, 1],
          "scale": [1, 1, 1], "visible": True}


def test_each_kind_of_change_is_said_with_the_object_name() -> None:
    moved = TEAPOT | {"position": [5, 0, 0]}
    assert describe([("o1", TEAPOT, moved)]) == "moved Teapot"
    assert describe([("o1", None, TEAPOT)]) == "added Teapot"
    assert describe([("o1", TEAPOT, None)]) == "deleted Teapot"
    assert describe([("o1", TEAPOT, TEAPOT | {"name": "Kettle"})]) == "renamed Teapot to Kettle"
    assert describe([("o1", TEAPOT, TEAPOT | {"material": {"colour": [1, 0, 0]}})]) == \
        "recoloured Teapot"
    assert describe([("o1", TEAPOT, TEAPOT | {"visible": False, "scale": [2, 2, 2]})]) == \
        "scaled and hid Teapot"
    assert describe([("o1", TEAPOT, TEAPOT | {"blob": "k", "stage": "final"})]) == \
        "showed the final stage of Teapot"


def test_an_object_stored_with_one_transform_value_is_compared_by_its_parts() -> None:
    legacy = {"name": "cup", "transform": {"position": [1, 2, 3], "rotation": [0, 0, 0, 1],
                                           "scale": [1, 1, 1]}}
    split = {"name": "cup", "position": [1, 2, 3], "rotation": [0, 0, 0, 1],
             "scale": [1, 1, 1]}
    assert describe([("c", legacy, split | {"rotation": [0, 1, 0, 0]})]) == "rotated cup"


def test_many_objects_are_counted_and_unnamed_ones_said_so() -> None:
    added = [(f"o{i}", None, {"name": f"ball {i}"}) for i in range(5)]
    assert describe(added) == "added ball 0, ball 1, ball 2 and 2 more"
    assert describe([("3f2a9c1e-0000", None, {"blob": "k"})]) == "added an unnamed object"


def test_the_stored_placeholder_gives_the_origin_and_never_shows() -> None:
    change = [("o1", TEAPOT, TEAPOT | {"position": [1, 0, 0]})]
    assert scene_edit_line("edited the scene (ws, 976 bytes)", change) == "moved Teapot"
    assert scene_edit_line("edited the scene (undo:12, 40 bytes)", change) == \
        "undid a change: moved Teapot"
    assert scene_edit_line("edited the scene (ws, 976 bytes)", None) == "edited the scene"
    assert "bytes" not in scene_edit_line("edited the scene (server:split-transforms, 9 bytes)",
                                          None)


def test_membership_lines_name_people_not_ids() -> None:
    bob, gone = "3f2a9c1e-1111-4f44-9d67-4b3f8a0c2d11", "3f2a9c1e-2222-4f44-9d67-4b3f8a0c2d11"
    rows = [{"kind": "Project.MemberInvited", "summary": f"added member {bob} as editor"},
            {"kind": "Project.MemberRemoved", "summary": f"removed member {gone}"},
            {"kind": "Project.Renamed", "summary": f"renamed the project to “{bob}”"}]
    assert member_ids(rows) == [bob, gone]
    assert [r["summary"] for r in named_members(rows, {bob: "bob"})] == [
        "added member bob as editor", "removed member (a deleted account)",
        f"renamed the project to “{bob}”"]


def test_a_revert_names_the_version_by_its_message() -> None:
    version = "9d2a9c1e-1111-4f44-9d67-4b3f8a0c2d11"
    rows = [{"kind": "Project.RevertedTo",
             "summary": f"reverted to version {version} (position 12)"}]
    assert reverted_versions(rows) == [version]
    assert named_versions(rows, {version: "first"})[0]["summary"] == \
        "reverted to the version “first”"
