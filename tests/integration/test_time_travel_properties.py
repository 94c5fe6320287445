"""Time travel as a property: for random histories and random positions, ``Studio.state_at``
equals a replay of the log from scratch in a fresh process; and a revert to a tagged version
brings back that version's name and scene (but not its membership); and the scene history
read model gives the same scene as ``state_at`` at every position.

The studio here snapshots every few versions and compacts every few scene updates, so short
random histories cross snapshots and compactions; the reference replay uses neither.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import core.events.scene
from core.events.job import Job
from core.events.project import Project
from core.events.roles import Role
from core.events.scene import Scene
from core.events.studio import Studio
from core.projections.runner import ProjectionRunner
from core.projections.scene_objects import SCENE_AT, scene_from_rows
from core.scene import document
from core.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]

# A fresh process reads the events up to each position through a new Studio (only to decode
# them) and folds them itself: no repository, no snapshots, no compaction.
REPLAY = r"""
import json, sys
from uuid import UUID
from pycrdt import Doc, Map
from core.events.project import Project
from core.events.scene import Scene
from core.events.studio import Studio

url, project_id, positions = sys.argv[1], UUID(sys.argv[2]), sorted(json.loads(sys.argv[3]))
scene_id = Scene.create_id(str(project_id))
studio = Studio.connect(url)
name, members, deleted, doc = None, {}, False, Doc()
out, i = {}, 0
notifications = studio.recorder.select_notifications(start=1, limit=10**9, stop=positions[-1])
def plain(root):
    return doc.get(root, type=Map).to_py() or {}
def record(p):
    out[str(p)] = {"exists": name is not None and not deleted, "name": name,
                   "members": dict(members),
                   "scene": {"objects": plain("objects"), "meta": plain("meta")}}
for n in notifications:
    while i < len(positions) and positions[i] < n.id:
        record(positions[i]); i += 1
    if n.originator_id not in (project_id, scene_id):
        continue
    e = studio.mapper.to_domain_event(n)
    if isinstance(e, Project.Created):
        name, members = e.name, {e.owner: "owner"}
    elif isinstance(e, Project.Renamed):
        name = e.name
    elif isinstance(e, (Project.MemberInvited, Project.MemberRoleChanged)):
        members[e.user] = e.role
    elif isinstance(e, Project.MemberRemoved):
        del members[e.user]
    elif isinstance(e, Project.Deleted):
        deleted = True
    elif isinstance(e, Scene.Updated):
        doc.apply_update(e.update)
    elif isinstance(e, Scene.Compacted):
        merged = Doc()
        merged.apply_update(e.state)
        for root in ("objects", "meta"):
            assert (merged.get(root, type=Map).to_py() or {}) == plain(root), (
                f"compaction at {n.id} is not the merge of the updates before it")
while i < len(positions):
    record(positions[i]); i += 1
studio.close()
print(json.dumps(out))
"""


class SmallStudio(Studio):
    name = "Studio"  # the same tables (a subclass would otherwise get its own)
    snapshotting_intervals = {Project: 3, Job: 3, Scene: 4}  # type: ignore[dict-item]


@pytest.fixture
def studio(prepared: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Studio]:
    assert prepared.database_url is not None
    monkeypatch.setattr(core.events.scene, "COMPACT_EVERY_UPDATES", 5)
    app = SmallStudio.connect(prepared.database_url)
    yield app
    app.close()


def replay(url: str, project_id: UUID, positions: list[int]) -> dict[int, dict[str, Any]]:
    done = subprocess.run([sys.executable, "-c", REPLAY, url, str(project_id),
                           json.dumps(positions)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, f"the replay process failed:\n{done.stderr}"
    return {int(p): state for p, state in json.loads(done.stdout).items()}


def observed(studio: Studio, project_id: UUID, position: int) -> dict[str, Any]:
    state = studio.state_at(project_id, position)
    return {"exists": True, "name": state.name, "members": state.members,
            "scene": document.snapshot(state.scene)}


# -- random histories ------------------------------------------------------------------------

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
                max_size=12).filter(lambda s: bool(s.strip()))
fields = st.fixed_dictionaries(
    {"name": st.text(max_size=6)},
    optional={
        "visible": st.booleans(),
        "blob": st.sampled_from(["blobs/a", "blobs/b", ""]),
        "position": st.lists(st.integers(-1000, 1000), min_size=3, max_size=3),
        "locked": st.booleans(),
    },
)
object_ids = st.sampled_from(["a", "b", "c", "d", "e"])
operations = st.one_of(
    st.tuples(st.just("rename"), names),
    st.tuples(st.just("edit"), st.dictionaries(object_ids, st.none() | fields, min_size=1,
                                               max_size=3)),
    st.tuples(st.just("edit"), st.dictionaries(object_ids, fields, min_size=1, max_size=2)),
    st.tuples(st.just("invite"), st.sampled_from(["u2", "u3"]),
              st.sampled_from([Role.VIEWER, Role.EDITOR])),
    st.tuples(st.just("remove"), st.sampled_from(["u2", "u3"])),
    st.tuples(st.just("tag"), st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                                      max_size=5)),
)
histories = st.lists(operations, max_size=20)


def apply(studio: Studio, project_id: UUID, history: list[tuple[Any, ...]]) -> None:
    for op, *args in history:
        if op == "rename":
            studio.rename_project(project_id, args[0], actor="owner")
        elif op == "edit":
            studio.edit_scene(project_id, args[0], actor="owner", origin="prop")
        elif op == "invite":
            studio.invite(project_id, args[0], args[1], actor="owner")
        elif op == "remove":
            if args[0] in studio.project(project_id).members:
                studio.remove_member(project_id, args[0], actor="owner")
        elif op == "tag":
            studio.tag_version(project_id, args[0], actor="owner")


def first_position(url: str, project_id: UUID) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT min(notification_id) FROM studio_events"
                           " WHERE originator_id = %s", (project_id,)).fetchone()
    assert row is not None and row[0] is not None
    return int(row[0])


PROPERTY_SETTINGS = settings(max_examples=18, deadline=None, derandomize=False,
                             suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                    HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(history=histories, picks=st.lists(st.integers(0, 10**6), min_size=1, max_size=6))
@example(history=[("edit", {"a": {"name": "x"}})] * 6 + [("edit", {"a": None})],
         picks=[0, 1, 2, 5, 6, 7, 8])  # crosses a compaction and a scene snapshot
@example(history=[("rename", "b"), ("invite", "u2", Role.EDITOR), ("remove", "u2"),
                  ("rename", "c"), ("rename", "d")], picks=[0, 1, 2, 3, 4, 5])
def test_state_at_equals_a_fresh_replay(studio: Studio, prepared: Settings,
                                        history: list[tuple[Any, ...]], picks: list[int]):
    url = prepared.database_url
    assert url is not None
    project_id = studio.create_project("start", actor="owner")
    apply(studio, project_id, history)
    low, high = first_position(url, project_id), studio.max_position()
    positions = sorted({low + pick % (high - low + 1) for pick in picks} | {high})
    expected = replay(url, project_id, positions)
    for position in positions:
        assert expected[position]["exists"], f"replay: no project at {position}"
        assert observed(studio, project_id, position) == expected[position], (
            f"state_at({position}) differs from a replay of the log up to it"
            f" (project positions {low}..{high})")


@PROPERTY_SETTINGS
@given(before=histories, after=histories, members_after=st.lists(
    st.tuples(st.just("invite"), st.sampled_from(["u4", "u5"]), st.sampled_from(list(Role))),
    max_size=2))
@example(before=[("edit", {"a": {"name": "x"}, "b": {"name": "y"}})],
         after=[("edit", {"a": None}), ("rename", "later"), ("edit", {"c": {"name": "z"}})],
         members_after=[("invite", "u4", Role.EDITOR)])
def test_revert_brings_back_name_and_scene_not_members(
        studio: Studio, prepared: Settings, before: list[tuple[Any, ...]],
        after: list[tuple[Any, ...]], members_after: list[tuple[Any, ...]]):
    url = prepared.database_url
    assert url is not None
    project_id = studio.create_project("start", actor="owner")
    apply(studio, project_id, before)
    version, tagged_at = studio.tag_version(project_id, "v", actor="owner")
    apply(studio, project_id, after + members_after)
    members = dict(studio.project(project_id).members)

    studio.revert(project_id, version, actor="owner")
    head = studio.max_position()
    now, then = observed(studio, project_id, head), observed(studio, project_id, tagged_at)
    assert now["name"] == then["name"], "revert did not bring back the version's name"
    assert now["scene"] == then["scene"], "revert did not bring back the version's scene"
    assert now["members"] == members, "revert changed the membership"
    expected = replay(url, project_id, [tagged_at, head])
    assert then == expected[tagged_at], "state_at(version) differs from a fresh replay"
    assert now == expected[head], "state after the revert differs from a fresh replay"


def read_model_scene(url: str, project_id: UUID, position: int) -> dict[str, Any] | None:
    with psycopg.connect(url) as conn:
        rows = conn.execute(SCENE_AT, {"project": project_id, "at": position}).fetchall()
    return scene_from_rows(rows, position)


meta_edits = st.tuples(st.just("meta"), st.dictionaries(
    st.sampled_from(["unit", "up", "grid"]), st.none() | st.integers(-5, 5) | st.text(max_size=3),
    max_size=2), st.booleans())


def apply_with_meta(studio: Studio, project_id: UUID, history: list[tuple[Any, ...]]) -> None:
    for op, *args in history:
        if op != "meta":
            apply(studio, project_id, [(op, *args)])
            continue
        update = document.edit(studio.scene(project_id).state, {}, meta=args[0], exact=args[1])
        if not document.is_empty(update):
            studio.append_scene_updates(project_id, [(update, "owner", "prop")])


@PROPERTY_SETTINGS
@given(history=st.lists(st.one_of(operations, meta_edits), max_size=20))
@example(history=[("edit", {"a": {"name": "x"}})] * 6 + [("edit", {"a": None})])
@example(history=[("meta", {"unit": "m", "up": None}, False), ("meta", {"grid": 1}, True)])
@example(history=[("edit", {"a": {"name": "x"}, "b": {"name": "y"}}), ("tag", "v"),
                  ("edit", {"a": None}), ("edit", {"a": {"name": "again"}})])
def test_scene_history_equals_state_at_everywhere(studio: Studio, prepared: Settings,
                                                  history: list[tuple[Any, ...]]):
    url = prepared.database_url
    assert url is not None
    project_id = studio.create_project("start", actor="owner")
    apply_with_meta(studio, project_id, history)
    tagged = list(studio.project(project_id).versions)
    if tagged:  # a revert to the first version: meta and many objects in one update
        studio.revert(project_id, tagged[0], actor="owner")
    low, high = first_position(url, project_id), studio.max_position()
    runner = ProjectionRunner(url, names=["scene_objects"])
    try:
        runner.catch_up()
    finally:
        runner.close()
    for position in range(low, high + 1):
        expected = document.snapshot(studio.state_at(project_id, position).scene)
        assert read_model_scene(url, project_id, position) == expected, (
            f"the scene history at {position} differs from state_at (positions {low}..{high})")
    assert read_model_scene(url, project_id, high + 1) is None, "answered past its position"
