"""Bytes a scene's log stores per edit, at 1,000, 10,000 and 100,000 edits (issue 20, part 4).

A scene's log keeps every update and every compaction (a whole copy of the document), so the
compaction rule decides how storage grows with history. One peer's live document makes the
edits, as a browser sends them: each adds one new scene setting (the workload of
``bench.collab``'s clients, whose document grows with every edit), or, in the second table,
rewrites one to four of 40 objects (``bench.scene_edits``: a steady document that grows by
its tombstones only). The same updates go through a ``Scene`` aggregate under each rule, and
the scene compacts whenever the rule says so, as a room does after an edit.

"stored/edit" is the updates' bytes plus the compactions' bytes, divided by the edits so far;
flat down the rows is the goal, and "x prev" is that figure against the row above. "bound" is
what the proportional rule allows: a snapshot holds at most the last one and the tail merged
into it, and that tail is at least a quarter of the last one, so each snapshot is at most five
times its tail, and all that is stored at most six times the edits. A young scene stays under
it (its floor of 200 updates compacts less often than that); an old one nears it and stays
there, at any length of history.

"longest tail" is the longest tail (updates, KiB) a load or a trip back in time would have
merged onto its snapshot so far: the replay bound each rule keeps. The figures are the events'
payloads; each row adds the same fixed columns (ids, versions, topic) under every rule.

The peers are the rules this one replaced: a compaction every 200 updates (the studio before
commit cb6eef0), and a quarter of the snapshot but at most 1,000 updates (cb6eef0), kept here
only. ``--quick`` stops at 10,000 edits.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pycrdt import Doc, Map, TransactionEvent

from bench.scene_edits import SceneEditor
from core.events.scene import COMPACT_TAIL_FRACTION, Scene, compaction_due

Rule = Callable[[int, int, int], bool]
"""``(tail updates, tail bytes, snapshot bytes) -> compact now``, as ``compaction_due``."""

FULL_CHECKPOINTS = (1_000, 10_000, 100_000)
QUICK_CHECKPOINTS = (1_000, 10_000)


def every_200_updates(tail_updates: int, tail_bytes: int, snapshot_bytes: int) -> bool:
    """The studio's rule before cb6eef0: a fixed interval, or a megabyte of tail."""
    return tail_updates >= 200 or tail_bytes >= 1024 * 1024


def quarter_capped_at_1000(tail_updates: int, tail_bytes: int, snapshot_bytes: int) -> bool:
    """cb6eef0's rule: a quarter of the snapshot past the floor, but at most 1,000 updates,
    so a big document is copied every 1,000 edits and storage grows with its square."""
    if tail_updates >= 1000:
        return True
    return every_200_updates(tail_updates, tail_bytes, snapshot_bytes) and (
        tail_bytes >= 0.25 * snapshot_bytes)


RULES: dict[str, Rule] = {
    "proportional (now)": compaction_due,
    "1/4, cap 1,000": quarter_capped_at_1000,
    "every 200": every_200_updates,
}


class GrowingPeer:
    """A client whose every edit adds one new scene setting (a key of ``meta``)."""

    def __init__(self) -> None:
        self._doc: Doc = Doc()
        self._meta = self._doc.get("meta", type=Map)
        self._sent: list[bytes] = []
        self._subscription = self._doc.observe(self._collect)
        self._serial = 0

    def _collect(self, event: TransactionEvent) -> None:
        self._sent.append(bytes(event.update))

    def next_update(self) -> bytes:
        self._serial += 1
        self._meta[f"k{self._serial}"] = self._serial
        return self._sent.pop()


@dataclass
class Ledger:
    """What one rule has stored so far."""

    scene: Scene = field(default_factory=lambda: Scene(project_id="bench"))
    edit_bytes: int = 0
    snapshot_bytes: int = 0
    snapshots: int = 0
    longest_tail: tuple[int, int] = (0, 0)  # updates, bytes
    seconds: float = 0.0

    def record(self, update: bytes, rule: Rule) -> None:
        started = time.perf_counter()
        scene = self.scene
        scene.record(update, actor="bench", origin="bench")
        self.edit_bytes += len(update)
        self.longest_tail = max(self.longest_tail, (len(scene.tail), scene.tail_bytes))
        if rule(len(scene.tail), scene.tail_bytes, len(scene.base)):
            scene.compact(actor="server")
            self.snapshot_bytes += len(scene.base)
            self.snapshots += 1
        scene.collect_events()  # stored, as far as this bench goes
        self.seconds += time.perf_counter() - started


@dataclass(frozen=True)
class Row:
    edits: int
    edit_bytes: int
    stored: dict[str, tuple[int, int, tuple[int, int]]]  # rule -> stored, snapshots, tail


def measure(make_update: Callable[[], bytes], checkpoints: Sequence[int]) -> list[Row]:
    ledgers = {name: Ledger() for name in RULES}
    rows: list[Row] = []
    edit_bytes = 0
    for edits in range(1, max(checkpoints) + 1):
        update = make_update()
        edit_bytes += len(update)
        for name, rule in RULES.items():
            ledgers[name].record(update, rule)
        if edits in checkpoints:
            rows.append(Row(edits, edit_bytes, {
                name: (ledger.edit_bytes + ledger.snapshot_bytes, ledger.snapshots,
                       ledger.longest_tail) for name, ledger in ledgers.items()}))
    return rows


def render(title: str, rows: Sequence[Row]) -> str:
    header = ["edits", "edit B", "bound"]
    for name in RULES:
        header += [f"{name}: stored/edit", "x prev", "snapshots", "longest tail"]
    lines = [header]
    for previous, row in zip([None, *rows], rows, strict=False):
        mean_edit = row.edit_bytes / row.edits
        line = [f"{row.edits:,}", f"{mean_edit:,.0f}",
                f"{mean_edit * (2 + 1 / COMPACT_TAIL_FRACTION):,.0f} B"]
        for name in RULES:
            stored, snapshots, (tail_updates, tail_bytes) = row.stored[name]
            per_edit = stored / row.edits
            ratio = "" if previous is None else (
                f"{per_edit / (previous.stored[name][0] / previous.edits):.2f}x")
            line += [f"{per_edit:,.0f} B", ratio, f"{snapshots:,}",
                     f"{tail_updates:,} / {tail_bytes / 1024:,.0f} KiB"]
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    table = "\n".join("  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True))
                      for line in lines)
    return f"{title}\n{table}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scene_storage", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 edits only")
    args = parser.parse_args(argv)
    checkpoints = QUICK_CHECKPOINTS if args.quick else FULL_CHECKPOINTS
    started = time.perf_counter()
    growing = measure(GrowingPeer().next_update, checkpoints)
    print(render("A growing document: each edit adds a scene setting", growing))
    print()
    steady = measure(SceneEditor(seed=0).next_update, checkpoints)
    print(render("A steady document: each edit rewrites 1-4 of 40 objects", steady))
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
