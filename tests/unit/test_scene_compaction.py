"""When a scene compacts, and what its merged state is, on the aggregate alone (no database).

The log keeps every compaction, so the rule decides how much of a scene's storage is edits and
how much is copies of the document; the integration tests check that resuming from whatever
compactions there are gives the replayed document.
"""

from __future__ import annotations

import copy
import random

import pytest
from pycrdt import Doc, Map, TransactionEvent

import core.events.scene
from core.crdt import document
from core.events.scene import (
    COMPACT_AT_MOST_UPDATES,
    COMPACT_EVERY_UPDATES,
    COMPACT_TAIL_FRACTION,
    Scene,
)


class Peer:
    """A browser's live document: each edit yields the bytes of its one transaction."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.doc: Doc = Doc()
        self.objects = self.doc.get(document.OBJECTS, type=Map)
        self.sent: list[bytes] = []
        self._subscription = self.doc.observe(self._collect)

    def _collect(self, event: TransactionEvent) -> None:
        self.sent.append(bytes(event.update))

    def add_objects(self, count: int) -> bytes:
        with self.doc.transaction():
            for i in range(count):
                self.objects[f"o{i}"] = Map({
                    "name": f"object {i}", "style": "organic", "visible": True,
                    "transform": {"position": [self.random.uniform(-5, 5) for _ in range(3)],
                                  "rotation": [0.0, 0.0, 0.0, 1.0], "scale": [1.0, 1.0, 1.0]}})
        return self.sent[-1]

    def rename_one(self, serial: int) -> bytes:
        target = self.objects[f"o{self.random.randrange(len(self.objects))}"]
        target["name"] = f"renamed {serial}"
        return self.sent[-1]


def run(scene: Scene, updates: list[bytes]) -> tuple[int, int]:
    """Record each update, compacting when the scene asks as the room does; returns the bytes
    of the edits and of the compactions stored."""
    edit_bytes = snapshot_bytes = 0
    for update in updates:
        scene.record(update, actor="u", origin="t")
        edit_bytes += len(update)
        if scene.needs_compaction:
            scene.compact(actor="server")
            snapshot_bytes += len(scene.base)
    return edit_bytes, snapshot_bytes


def test_a_small_scene_compacts_every_200_edits() -> None:
    peer, scene = Peer(seed=1), Scene(project_id="p")
    run(scene, [peer.add_objects(5)]
        + [peer.rename_one(i) for i in range(COMPACT_EVERY_UPDATES - 2)])
    assert scene.base == b"" and len(scene.tail) == COMPACT_EVERY_UPDATES - 1
    run(scene, [peer.rename_one(-1)])
    assert scene.tail == [] and scene.base
    assert document.snapshot(scene.state) == document.snapshot(bytes(peer.doc.get_update()))


def test_a_big_scene_waits_until_its_tail_is_a_fair_share_of_the_document() -> None:
    peer, scene = Peer(seed=2), Scene(project_id="p")
    run(scene, [peer.add_objects(700)])
    scene.compact(actor="server")
    base = len(scene.base)
    renames = [peer.rename_one(i) for i in range(COMPACT_EVERY_UPDATES * 8)]
    needed = next(i for i in range(len(renames))
                  if sum(map(len, renames[:i + 1])) >= COMPACT_TAIL_FRACTION * base)
    assert COMPACT_EVERY_UPDATES <= needed < COMPACT_AT_MOST_UPDATES  # the fraction decides
    run(scene, renames[:needed])
    assert len(scene.tail) == needed and not scene.needs_compaction
    assert document.snapshot(scene.state) == document.snapshot(
        document.merge([scene.base, *renames[:needed]]))
    run(scene, [renames[needed]])
    assert scene.tail == []
    assert document.snapshot(scene.state) == document.snapshot(
        document.load(*peer.sent[:needed + 2]).get_update())


def test_on_a_big_scene_the_snapshots_stay_in_proportion_to_the_edits() -> None:
    """Every 200 edits, these 5,000 renames stored 25 copies of the document, 13 times the
    edits' bytes; now the copies hold at most 1 / fraction of the edits' bytes (2.6 times),
    plus the one document that the first compaction writes whatever the rule."""
    peer, scene = Peer(seed=3), Scene(project_id="p")
    first = peer.add_objects(1000)
    edits, snapshots = run(scene, [first] + [peer.rename_one(i) for i in range(5_000)])
    assert snapshots > 0  # it compacted at all
    assert snapshots <= edits / COMPACT_TAIL_FRACTION + len(scene.base) * 1.1
    assert document.snapshot(scene.state) == document.snapshot(bytes(peer.doc.get_update()))


def test_a_big_scene_compacts_at_the_cap_whatever_its_bytes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The tail is merged update by update on every load, so its length has a ceiling."""
    monkeypatch.setattr(core.events.scene, "COMPACT_AT_MOST_UPDATES", 250)
    peer, scene = Peer(seed=6), Scene(project_id="p")
    run(scene, [peer.add_objects(3000)])
    scene.compact(actor="server")
    run(scene, [peer.rename_one(i) for i in range(249)])
    assert len(scene.tail) == 249
    assert sum(map(len, scene.tail)) < COMPACT_TAIL_FRACTION * len(scene.base)
    run(scene, [peer.rename_one(249)])
    assert scene.tail == []


def test_the_byte_rule_still_compacts_a_tail_of_few_big_edits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core.events.scene, "COMPACT_EVERY_BYTES", 20_000)
    peer, scene = Peer(seed=4), Scene(project_id="p")
    run(scene, [peer.add_objects(n) for n in (50, 100, 150, 200)])
    assert scene.base and len(scene.tail) < 4


@pytest.mark.parametrize("count", [0, 1, 2, 63, 64, 65, 64 * 64 + 1])
def test_merging_in_groups_gives_the_document_of_all_the_updates(count: int) -> None:
    peer = Peer(seed=5)
    updates = [peer.add_objects(20)] + [peer.rename_one(i) for i in range(count - 1)]
    merged = document.merge(updates[:count])
    expected = document.load(*updates[:count]).get_update() if count else b""
    assert document.snapshot(merged) == document.snapshot(bytes(expected))
    assert (merged == b"") == (count == 0)
    if count == 1:
        assert merged == updates[0]  # one update is returned as it is
    assert document.load(merged).get_state() == document.load(*updates[:count]).get_state()


def test_the_merged_state_is_computed_once_per_version(monkeypatch: pytest.MonkeyPatch) -> None:
    peer, scene = Peer(seed=7), Scene(project_id="p")
    run(scene, [peer.add_objects(10), peer.rename_one(0), peer.rename_one(1)])
    merges: list[int] = []
    merge = document.merge
    monkeypatch.setattr(document, "merge", lambda updates: merges.append(1) or merge(updates))
    first = scene.state
    assert scene.state is first and len(merges) == 1
    run(scene, [peer.rename_one(2)])  # a new version: merged again, and right
    assert document.snapshot(scene.state) == document.snapshot(bytes(peer.doc.get_update()))
    assert len(merges) == 2
    copied = copy.deepcopy(scene)  # commands work on copies: theirs changes, ours stays
    copied.record(peer.rename_one(3), actor="u", origin="t")
    assert document.snapshot(copied.state) == document.snapshot(bytes(peer.doc.get_update()))
    assert document.snapshot(scene.state) != document.snapshot(copied.state)
