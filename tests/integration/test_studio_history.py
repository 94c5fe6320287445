"""Versions, time travel and revert on the real event store."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput, NotFound
from core.events.scene import COMPACT_EVERY_UPDATES
from core.events.studio import Studio
from core.scene import document
from core.settings import Settings


@pytest.fixture
def studio(prepared: Settings):
    assert prepared.database_url is not None
    app = Studio.connect(prepared.database_url)
    yield app
    app.close()


def _objects(studio: Studio, project_id, position=None) -> dict:
    return document.snapshot(studio.state_at(project_id, position).scene)["objects"]


def test_state_at_each_position_and_revert(studio: Studio):
    pid = studio.create_project("v0", actor="u1")
    studio.edit_scene(pid, {"a": {"name": "cube", "blob": "b1"}}, actor="u1", origin="t")
    v1, p1 = studio.tag_version(pid, "first", actor="u1")
    studio.rename_project(pid, "v1", actor="u1")
    studio.edit_scene(pid, {"a": {"name": "cube", "blob": "b2"}, "b": {"name": "ball"}},
                      actor="u2", origin="t")
    assert _objects(studio, pid, p1) == {"a": {"name": "cube", "blob": "b1"}}
    assert studio.state_at(pid, p1).name == "v0"
    assert set(_objects(studio, pid)) == {"a", "b"}

    studio.revert(pid, v1, actor="u1")
    now = studio.state_at(pid)
    assert now.name == "v0"
    assert document.snapshot(now.scene)["objects"] == {"a": {"name": "cube", "blob": "b1"}}
    # the revert appended events: the state before it is still there
    assert set(_objects(studio, pid, now.position - 2)) == {"a", "b"}


def test_time_travel_crosses_compactions_and_snapshots(studio: Studio):
    pid = studio.create_project("long", actor="u1")
    positions = []
    for i in range(COMPACT_EVERY_UPDATES * 2 + 7):
        positions.append(studio.edit_scene(pid, {f"o{i % 5}": {"name": str(i)}}, actor="u",
                                           origin="t"))
    assert studio.scene(pid).tail  # compacted at least twice, with a tail after
    for i in (0, 150, COMPACT_EVERY_UPDATES - 1, COMPACT_EVERY_UPDATES, len(positions) - 1):
        objects = _objects(studio, pid, positions[i])
        assert objects[f"o{i % 5}"] == {"name": str(i)}


def test_bad_positions_and_versions(studio: Studio):
    pid = studio.create_project("p", actor="u1")
    head = studio.max_position()
    with pytest.raises(InvalidInput):
        studio.state_at(pid, head + 1)
    with pytest.raises(InvalidInput):
        studio.state_at(pid, 0)
    other = studio.create_project("later", actor="u1")
    with pytest.raises(NotFound):
        studio.state_at(other, head)
    with pytest.raises(NotFound):
        studio.revert(pid, "no-such-version", actor="u1")
