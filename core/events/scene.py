"""The ``Scene`` aggregate: the project's CRDT document as a log of Yjs updates.

Each accepted update is a ``Scene.Updated`` event. Every so often the accumulated updates are
merged into one ``Scene.Compacted`` state, so that loading the scene, or travelling back in
time, replays a tail bounded in proportion to the document (see :func:`compaction_due`): a
compaction holds the whole document, so it is the scene's snapshot, and nothing before it is
read again (see :meth:`Scene.resumed`). Nothing is ever deleted: compaction is itself an event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from core.errors import InvalidInput
from core.scene import document
from core.settings import WS_FRAME_CEILING_BYTES

# The floor: a tail shorter than this (in updates and in bytes) never compacts, so a small
# scene is not rewritten on every edit.
COMPACT_EVERY_UPDATES = 200
COMPACT_EVERY_BYTES = 1024 * 1024
# A compaction writes the whole document, so a rule in updates stores a copy of it every so
# many edits: on a document that grows with its history that is quadratic. Past the floor, the
# tail must have grown to this fraction of the last snapshot; nothing else counts, and there is
# no cap in updates. A snapshot holds at most the last one plus the tail merged into it, and
# that tail is at least the fraction of the last one, so each snapshot is at most
# (1 + fraction) / fraction = 5 times its tail: the log holds at most 6 times the edits' bytes
# at any length of history. ``python -m bench.scene_storage``, a document that grows by one
# 34-byte setting per edit, bytes stored per edit at 10,000 / 100,000 edits: every 200 updates
# 511 / 4,991; a quarter capped at 1,000 updates (the rule before this one) 159 / 1,020; this
# rule 159 / 177. Replay stays in proportion to the document too: a load, or a trip back in
# time, merges the last snapshot and a tail of at most a quarter of its bytes plus one update
# (or, under the floor, fewer than 200 updates). On a big scene edited in small steps that
# tail is long in updates (11,900 of 34 bytes after the 100,000 edits above): merging goes in
# groups (``core.scene.document.merge``), so it costs 72 ms onto that 1.7 MB snapshot, against
# 25 ms for a tail of 200 updates, and 114 ms to compact.
COMPACT_TAIL_FRACTION = 0.25
MAX_UPDATE_BYTES = WS_FRAME_CEILING_BYTES  # one source: the socket's limit may only lower it


def compaction_due(tail_updates: int, tail_bytes: int, snapshot_bytes: int) -> bool:
    """Whether a tail of ``tail_updates`` updates holding ``tail_bytes`` should be merged into
    a new snapshot after one of ``snapshot_bytes``: past the floor, once the tail is a fixed
    fraction of the snapshot, so snapshots are written in proportion to the edits."""
    past_floor = tail_updates >= COMPACT_EVERY_UPDATES or tail_bytes >= COMPACT_EVERY_BYTES
    return past_floor and tail_bytes >= COMPACT_TAIL_FRACTION * snapshot_bytes


class Scene(Aggregate):
    class Created(Aggregate.Created):
        project_id: str

    # The two content events apply themselves (the library's explicit style) rather than
    # through decorated methods: every live edit records one, and the decorator's argument
    # binding took 40 % of it (113 -> 70 us on this machine's cold caches, 20 ms between edits).
    class Updated(Aggregate.Event):
        update: bytes
        actor: str
        origin: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Scene)
            aggregate.tail.append(self.update)
            aggregate.tail_bytes += len(self.update)

    class Compacted(Aggregate.Event):
        state: bytes
        actor: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, Scene)
            aggregate.base = self.state
            aggregate.tail = []
            aggregate.tail_bytes = 0

    @staticmethod
    def create_id(project_id: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"orfeas:scene:{project_id}")

    @staticmethod
    def may_be_scene_id(aggregate_id: UUID) -> bool:
        """Scene ids are name-based (version 5) and every other aggregate's is random (version
        4), so loaders can tell which aggregates may resume from a compaction before reading."""
        return aggregate_id.version == 5

    @classmethod
    def resumed(cls, events: Sequence[Aggregate.Event]) -> Scene:
        """The scene from its ``Created`` event, optionally its latest compaction, and the
        updates after that: the compaction holds the whole document, so the events between
        creation and compaction add nothing and are skipped."""
        created, *rest = events
        scene = created.mutate(None)
        if not isinstance(scene, cls):
            raise TypeError(f"{created!r} does not create a scene")
        if rest and isinstance(rest[0], cls.Compacted):
            scene.version = rest[0].originator_version - 1
        for later in rest:
            later.mutate(scene)
        return scene

    @event(Created)
    def __init__(self, project_id: str) -> None:
        self.project_id = project_id
        self.base = b""
        self.tail: list[bytes] = []
        self.tail_bytes = 0
        self._merged: tuple[int, bytes] | None = None  # (version, state) last computed

    def __deepcopy__(self, memo: dict[int, Any]) -> Scene:
        """Every command gets a deep copy of the cached scene; its only mutable parts are
        lists of immutable values, so copying those lists is a deep copy, without visiting
        each of the (up to hundreds of) updates in the tail."""
        copied = object.__new__(type(self))
        copied.__dict__.update({key: list(value) if isinstance(value, list) else value
                                for key, value in self.__dict__.items()})
        return copied

    @property
    def state(self) -> bytes:
        """The whole document as one update: the last compaction with the updates since merged
        in byte-wise (no document is built). Deleted content of the tail stays in it until the
        next compaction garbage-collects it. Kept until the next event: a command often reads
        it several times, and on a big scene each merge is tens of milliseconds."""
        if not self.tail:
            return self.base
        if self._merged is None or self._merged[0] != self.version:
            self._merged = (self.version, document.merge([self.base, *self.tail]))
        return self._merged[1]

    @property
    def needs_compaction(self) -> bool:
        return compaction_due(len(self.tail), self.tail_bytes, len(self.base))

    def record(self, update: bytes, actor: str, origin: str) -> None:
        if not isinstance(update, bytes | bytearray) or not update:
            raise InvalidInput("a scene update must be non-empty bytes")
        if len(update) > MAX_UPDATE_BYTES:
            raise InvalidInput(f"a scene update has at most {MAX_UPDATE_BYTES} bytes")
        self.trigger_event(self.Updated, update=bytes(update), actor=actor, origin=origin)

    def compact(self, actor: str) -> None:
        if self.tail:
            self.trigger_event(self.Compacted, state=document.compact([self.base, *self.tail]),
                               actor=actor)
