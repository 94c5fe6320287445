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
from core.events.scene import (
    COMPACT_EVERY_BYTES,
    COMPACT_EVERY_UPDATES,
    COMPACT_TAIL_FRACTION,
    Scene,
    compaction_due,
)
from core.scene import document


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
                    "position": [self.random.uniform(-5, 5) for _ in range(3)],
                    "rotation": [0.0, 0.0, 0.0, 1.0], "scale": [1.0, 1.0, 1.0]})
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
    assert needed >= COMPACT_EVERY_UPDATES  # the fraction decides
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
    edits' bytes; now the copies hold at most 1 / fraction times the edits' bytes, plus the
    one document that the first compaction writes whatever the rule."""
    peer, scene = Peer(seed=3), Scene(project_id="p")
    first = peer.add_objects(1000)
    edits, snapshots = run(scene, [first] + [peer.rename_one(i) for i in range(5_000)])
    assert snapshots > 0  # it compacted at all
    assert snapshots <= edits / COMPACT_TAIL_FRACTION + len(scene.base) * 1.1
    assert document.snapshot(scene.state) == document.snapshot(bytes(peer.doc.get_update()))


@pytest.mark.parametrize(("tail_updates", "tail_bytes", "snapshot_bytes", "due"), [
    (0, 0, 0, False),
    (COMPACT_EVERY_UPDATES - 1, 5_000, 0, False),  # under the floor: a small scene waits
    (COMPACT_EVERY_UPDATES, 5_000, 0, True),
    (COMPACT_EVERY_UPDATES, 5_000, 20_000, True),  # exactly the fraction
    (COMPACT_EVERY_UPDATES, 4_999, 20_000, False),
    (1, COMPACT_EVERY_BYTES, 0, True),  # one big edit is past the floor too
    (1, COMPACT_EVERY_BYTES, 8 * COMPACT_EVERY_BYTES, False),
    (1_000, 40_000, 800_000, False),  # no cap in updates: cb6eef0 compacted here
    (50_000, 199_999, 800_000, False),
    (50_000, 200_000, 800_000, True),
])
def test_a_tail_compacts_past_the_floor_once_it_is_a_fraction_of_the_snapshot(
        tail_updates: int, tail_bytes: int, snapshot_bytes: int, due: bool) -> None:
    assert COMPACT_TAIL_FRACTION == 0.25  # the table's bytes are written for a quarter
    assert compaction_due(tail_updates, tail_bytes, snapshot_bytes) is due


def test_a_big_scene_keeps_a_long_tail_of_small_edits_until_its_fraction() -> None:
    """A rule capped at 1,000 updates copied a big document every 1,000 small edits, so a
    document growing with its history was stored in quadratic bytes."""
    peer, scene = Peer(seed=6), Scene(project_id="p")
    run(scene, [peer.add_objects(3000)])
    scene.compact(actor="server")
    run(scene, [peer.rename_one(i) for i in range(1_500)])
    assert len(scene.tail) == 1_500 and scene.tail_bytes < COMPACT_TAIL_FRACTION * len(
        scene.base)
    assert document.snapshot(scene.state) == document.snapshot(bytes(peer.doc.get_update()))


def test_the_replayed_tail_stays_in_proportion_to_the_document() -> None:
    """What a load or a trip back in time merges onto its snapshot: under the floor, or at
    most the fraction of the snapshot plus the one update that crossed it, at every version
    of a document that grows with each edit."""
    doc: Doc = Doc()
    settings = doc.get(document.META, type=Map)
    sent: list[bytes] = []
    subscription = doc.observe(lambda event: sent.append(bytes(event.update)))
    scene = Scene(project_id="p")
    for serial in range(6_000):
        settings[f"k{serial}"] = serial
        run(scene, [sent[-1]])
        under_floor = (len(scene.tail) < COMPACT_EVERY_UPDATES
                       and scene.tail_bytes < COMPACT_EVERY_BYTES)
        assert under_floor or scene.tail_bytes < (
            COMPACT_TAIL_FRACTION * len(scene.base) + len(sent[-1]))
    doc.unobserve(subscription)
    assert scene.base and len(scene.tail) > COMPACT_EVERY_UPDATES  # both cases were met
    assert document.snapshot(scene.state) == document.snapshot(bytes(doc.get_update()))


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
