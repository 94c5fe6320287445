"""The studio's storage shortcuts agree with the library's plain paths on a real PostgreSQL.

Scenes resume from their latest compaction, saved aggregates go straight into the cache,
snapshots are taken from memory, and a save is one pipelined round trip; each of these must
give exactly what replaying the log gives, also with two processes' worth of studios writing.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

import core.events.scene
from core.errors import Conflict
from core.events.persistence import VersionClash, eventstore_env
from core.events.project import Project
from core.events.scene import Scene
from core.events.studio import Studio
from core.scene import document
from core.settings import Settings


class ReplayingStudio(Studio):
    """The same tables read the library's way: no cache, no snapshots, scenes from version 1."""

    name = "Studio"
    snapshotting_intervals = {}  # type: ignore[var-annotated]
    resume_scenes = False


@pytest.fixture
def url(prepared: Settings) -> str:
    assert prepared.database_url is not None
    return prepared.database_url


@pytest.fixture
def studio(url: str) -> Iterator[Studio]:
    app = Studio.connect(url)
    yield app
    app.close()


@pytest.fixture
def replaying(url: str) -> Iterator[Studio]:
    app = ReplayingStudio(env=eventstore_env(url, IS_SNAPSHOTTING_ENABLED="n",
                                             AGGREGATE_CACHE_MAXSIZE=""))
    yield app
    app.close()


def test_scene_resumed_from_compaction_equals_replay(studio: Studio, replaying: Studio,
                                                     monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(core.events.scene, "COMPACT_EVERY_UPDATES", 7)
    pid = studio.create_project("resume", actor="u")
    for i in range(40):
        studio.edit_scene(pid, {f"o{i % 4}": {"name": str(i)}}, actor="u", origin="t")
    scene_id = Scene.create_id(str(pid))
    head = studio.scene(pid).version
    compactions = [e.originator_version for e in studio.events.get(scene_id)
                   if isinstance(e, Scene.Compacted)]
    assert len(compactions) >= 4
    for version in [1, 2, *compactions, *(c + 1 for c in compactions), head]:
        resumed: Scene = studio.repository.get(scene_id, version=version)
        replayed: Scene = replaying.repository.get(scene_id, version=version)
        assert resumed.version == replayed.version == version
        assert resumed.project_id == replayed.project_id
        assert document.snapshot(resumed.state) == document.snapshot(replayed.state)
        assert len(resumed.tail) == len(replayed.tail)  # compaction happens at the same versions


def test_a_stale_cached_scene_catches_up_from_the_latest_compaction(
        url: str, replaying: Studio, monkeypatch: pytest.MonkeyPatch):
    """A node's cached scene is old when another node served the room meanwhile: it catches
    up by reading the latest compaction and what follows it, not every update since."""
    monkeypatch.setattr(core.events.scene, "COMPACT_EVERY_UPDATES", 10)
    stale, writer = Studio.connect(url), Studio.connect(url)
    try:
        pid = stale.create_project("stale", actor="u")  # caches the scene at version 1
        stale.scene(pid)
        for i in range(45):
            writer.append_scene_updates(pid, [(document.edit(
                writer.scene(pid).state, {f"o{i % 5}": {"name": str(i)}}), "u", "t")])
        head = writer.scene(pid)
        decoded: list[object] = []
        to_domain_event = stale.mapper.to_domain_event
        monkeypatch.setattr(stale.mapper, "to_domain_event",
                            lambda stored: decoded.append(stored) or to_domain_event(stored))
        caught_up = stale.scene(pid)
        assert caught_up.version == head.version
        assert len(decoded) == len(head.tail) + 1  # the compaction and the updates after it
        replayed: Scene = replaying.repository.get(Scene.create_id(str(pid)))
        assert document.snapshot(caught_up.state) == document.snapshot(replayed.state)
        # and it is cached: the next read decodes nothing
        decoded.clear()
        assert stale.scene(pid).version == head.version and decoded == []
    finally:
        stale.close()
        writer.close()


def test_state_at_equals_replay_at_every_position(studio: Studio, replaying: Studio,
                                                  monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(core.events.scene, "COMPACT_EVERY_UPDATES", 5)
    pid = studio.create_project("p0", actor="u")
    low = studio.max_position() - 1  # the project's and its scene's creation
    for i in range(23):
        if i % 6 == 5:
            studio.rename_project(pid, f"p{i}", actor="u")
        studio.append_scene_updates(pid, [(document.edit(studio.scene(pid).state,
                                                         {f"o{i % 3}": {"name": str(i)}}),
                                           "u", "t")])
    for position in range(low, studio.max_position() + 1):
        ours, theirs = studio.state_at(pid, position), replaying.state_at(pid, position)
        assert (ours.name, ours.members) == (theirs.name, theirs.members)
        assert document.snapshot(ours.scene) == document.snapshot(theirs.scene)


def test_two_studios_see_each_others_writes(url: str, replaying: Studio):
    """Each studio caches what it saved; the other's later events must still be seen."""
    first, second = Studio.connect(url), Studio.connect(url)
    try:
        pid = first.create_project("shared", actor="u")
        for i in range(30):
            writer = (first, second)[i % 2 if i < 20 else i % 3 % 2]
            writer.rename_project(pid, f"n{i}", actor="u")
            writer.append_scene_updates(
                pid, [(document.edit(writer.scene(pid).state, {"a": {"name": str(i)}}),
                       "u", "t")])
        for studio in (first, second):
            assert studio.project(pid).name == "n29"
            assert document.snapshot(studio.scene(pid).state)["objects"]["a"] == {"name": "29"}
        versions = [e.originator_version for e in replaying.events.get(pid)]
        assert versions == list(range(1, len(versions) + 1))
    finally:
        first.close()
        second.close()


def test_snapshot_taken_from_memory_equals_replayed_aggregate(studio: Studio,
                                                              replaying: Studio):
    pid = studio.create_project("snap", actor="u")
    for i in range(Studio.snapshotting_intervals[Project] + 3):
        studio.rename_project(pid, f"n{i}", actor="u")
    assert studio.snapshots is not None
    snapshots = list(studio.snapshots.get(pid))
    assert snapshots, "no snapshot was taken"
    for snapshot in snapshots:
        from_snapshot = snapshot.mutate(None)  # type: ignore[attr-defined]
        replayed = replaying.repository.get(pid, version=snapshot.originator_version)
        assert vars(from_snapshot) == vars(replayed)


def test_version_clash_rolls_back_and_the_connection_stays_usable(studio: Studio):
    pid = studio.create_project("clash", actor="u")
    stale = studio.project(pid)
    studio.rename_project(pid, "fresh", actor="u")
    stale.rename("stale", "u")
    pool_size = studio.recorder.datastore.pool.max_size  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "rolling back" warning from the pool
        with pytest.raises(VersionClash):
            studio._save(stale)
        names = [f"after{i}" for i in range(pool_size + 1)]  # every pooled connection
        for name in names:
            studio.rename_project(pid, name, actor="u")
    assert studio.project(pid).name == names[-1]
    renamed = [e.name for e in studio.events.get(pid) if isinstance(e, Project.Renamed)]
    assert renamed == ["fresh", *names]


def test_conflict_after_retries_is_reported_not_swallowed(studio: Studio,
                                                          monkeypatch: pytest.MonkeyPatch):
    pid = studio.create_project("busy", actor="u")

    def always_clash(*aggregates: object) -> int:
        raise VersionClash("another writer")

    monkeypatch.setattr(studio, "_save", always_clash)
    with pytest.raises(Conflict):
        studio.rename_project(pid, "never", actor="u")
