"""The ``Scene`` aggregate: the project's CRDT document as a log of Yjs updates.

Each accepted update is a ``Scene.Updated`` event. Every so often the accumulated updates are
merged into one ``Scene.Compacted`` state, so that loading the scene, or travelling back in
time, replays at most a bounded tail; the library's aggregate snapshots then only ever copy a
small object. Nothing is ever deleted: compaction is itself an event.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from core.crdt import document
from core.errors import InvalidInput

COMPACT_EVERY_UPDATES = 200
COMPACT_EVERY_BYTES = 1024 * 1024
MAX_UPDATE_BYTES = 8 * 1024 * 1024


class Scene(Aggregate):
    class Created(Aggregate.Created):
        project_id: str

    class Updated(Aggregate.Event):
        update: bytes
        actor: str
        origin: str

    class Compacted(Aggregate.Event):
        state: bytes
        actor: str

    @staticmethod
    def create_id(project_id: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"orfeas:scene:{project_id}")

    @event(Created)
    def __init__(self, project_id: str) -> None:
        self.project_id = project_id
        self.base = b""
        self.tail: list[bytes] = []
        self.tail_bytes = 0

    @property
    def state(self) -> bytes:
        """The whole document as one update (garbage-collected: see ``document.compact``)."""
        if not self.tail:
            return self.base
        return document.compact([self.base, *self.tail])

    @property
    def needs_compaction(self) -> bool:
        return len(self.tail) >= COMPACT_EVERY_UPDATES or self.tail_bytes >= COMPACT_EVERY_BYTES

    def record(self, update: bytes, actor: str, origin: str) -> None:
        if not isinstance(update, bytes | bytearray) or not update:
            raise InvalidInput("a scene update must be non-empty bytes")
        if len(update) > MAX_UPDATE_BYTES:
            raise InvalidInput(f"a scene update has at most {MAX_UPDATE_BYTES} bytes")
        self._updated(update=bytes(update), actor=actor, origin=origin)

    def compact(self, actor: str) -> None:
        if self.tail:
            self._compacted(state=self.state, actor=actor)

    @event(Updated)
    def _updated(self, update: bytes, actor: str, origin: str) -> None:
        self.tail.append(update)
        self.tail_bytes += len(update)

    @event(Compacted)
    def _compacted(self, state: bytes, actor: str) -> None:
        self.base = state
        self.tail = []
        self.tail_bytes = 0
