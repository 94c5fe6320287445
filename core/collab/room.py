"""One project's live scene on one API node: its document, its peers, their presence.

The room's document only ever holds what is stored. An edit from a peer is checked against the
scene schema (:mod:`core.scene.scene_schema`: first the update itself, then what it changed in
the accepted document; a refused edit is taken back out and its socket closed), queued,
and appended to the event log together with whatever else arrived while the previous batch
was being stored (one transaction per batch, one event per author); only after the commit is
it sent to the other peers (not back to its author, who has it), applied to the room's document
and published to the other nodes.

Every change stored elsewhere (another node's room, a route, a worker) reaches the room from the
log: the node's :class:`~core.collab.scene_log.SceneLogFollower` passes on each committed scene
version (:meth:`SceneRoom.log_moved`) and the room reads what it lacks. The other nodes' NATS
messages carry the same edits as a fast path; nothing depends on them arriving.
If the append fails, the authors' sockets are closed with ``STORAGE_FAILED``: their clients
still hold the edits and send them again after reconnecting, so an edit any other peer has
seen is stored.

Presence (awareness) is relayed and never stored.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import anyio
from anyio.abc import TaskStatus
from psycopg_pool import AsyncConnectionPool
from pycrdt import Awareness as AwarenessStates
from pycrdt import Doc, get_update

from core.collab import protocol
from core.collab.fanout import Fanout, PresenceChange, SceneChange
from core.collab.protocol import CloseCode
from core.errors import InvalidInput
from core.events import scene as scene_events
from core.events.scene_writer import SceneWriter
from core.events.studio import Studio
from core.scene import document, scene_schema
from core.scene.update_reader import read_deletions

log = logging.getLogger(__name__)

MAX_BATCH = 500
# Edits waiting for a store, in bytes, beyond which the room stops reading its peers' frames
# until the store catches up: TCP then holds the senders back, and a room's memory stays
# bounded however fast its peers send.
MAX_PENDING_BYTES = 32 * 1024 * 1024
# How many of the room's latest stores its statistics describe: every edit waits for its store
# before anyone else sees it, so a stalling disk shows here before anywhere else.
STORES_TIMED = 1000
# Edits bigger than this are checked against the scene schema in a thread: reading one takes
# about 0.15 ms per KB of Python (a 460 KB paste of 1,000 objects, 80 ms), time the event
# loop would otherwise not serve anyone else.
CHECK_IN_THREAD_BYTES = 64 * 1024
# How long a version the log announced may wait for its fast path (this room's own store, or
# the bytes of another node's room over NATS, which follow the commit by about a millisecond)
# before the room reads it from the log: either way it arrives, this way usually without a read.
FAST_PATH_GRACE_S = 0.05
LOG_RETRY_S = 1.0


class Peer(Protocol):
    """The room's view of one connection (the transport stays in the API layer)."""

    id: int
    user_id: str
    can_edit: bool

    def send(self, frame: bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


@dataclass
class _Pending:
    peer: Peer
    update: bytes


@dataclass
class RoomStats:
    project_id: str
    peers: int
    users: list[str]
    version: int
    document_bytes: int
    pending: int
    pending_bytes: int
    awareness_states: int
    stores_timed: int  # of the room's latest stores (INSERT and commit), at most STORES_TIMED
    store_p50_ms: float | None
    store_p99_ms: float | None
    store_max_ms: float | None


@dataclass
class SceneRoom:
    project_id: UUID
    studio: Studio
    pool: AsyncConnectionPool[Any]
    fanout: Fanout
    on_empty: Callable[[SceneRoom], None] = lambda room: None
    version: int = 0
    peers: dict[int, Peer] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The stored document, as of ``version`` once ``_unapplied`` is applied: a stored edit
        # goes to the peers first and into this document after their writes (see
        # ``_advance``), so everything that reads it goes through :meth:`_stored`.
        self._doc: Doc = Doc()
        self._unapplied: list[bytes] = []
        self.awareness = AwarenessStates(self._doc)
        self.awareness.set_local_state(None)  # the server itself is not a collaborator
        self._owners: dict[int, int] = {}  # awareness client id -> peer id
        self._remote_users: dict[int, str] = {}  # awareness client id -> user (other nodes)
        self._pending: list[_Pending] = []
        self._storing: list[bytes] = []  # the batch being stored (off the queue, not stored)
        self._pending_bytes = 0
        self._room_for_edits = asyncio.Event()
        self._room_for_edits.set()
        # The stored document plus every edit accepted but not stored yet. Each edit is
        # applied here first, and only what it newly integrates is queued for storing: an edit
        # that arrives twice (live, and again in a reconnecting client's sync step 2) or ahead
        # of the edits it depends on is thus stored exactly once, when it fits.
        self._accepted: Doc = Doc()
        self._made: list[bytes] | None = None  # collects what an apply integrates
        self._accepted_subscription = self._accepted.observe(self._on_accepted)
        self._wakeup = asyncio.Event()
        self._advance_lock = asyncio.Lock()
        self._stopped = anyio.Event()
        self._loaded = asyncio.Event()  # other nodes' changes wait for the stored scene
        self._log_head = 0  # the latest version the log announced
        self._log_moved = asyncio.Event()
        self._store_lock = asyncio.Lock()  # a store and its own versions arrive together
        self._tasks: set[asyncio.Task[Any]] = set()  # presence publishes in flight
        self._store_ms = _RecentTimes(STORES_TIMED)
        self.awareness.observe(self._on_awareness)

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Follow the other nodes, load the stored scene, and serve until :meth:`stop`.

        Following first (the node's log follower knows the room before this runs, and the
        fast path subscribes here): a change stored elsewhere while the log is read is then
        either in what was read or announced afterwards (and applied once the load is done).
        """
        subscriptions = await self.fanout.subscribe(
            self.project_id, self._on_scene_change, self._on_presence, self._on_control,
            self.local_users)
        try:
            # Scenes stored with one ``transform`` value are split as they load, once.
            scene = await asyncio.to_thread(self.studio.split_transforms, self.project_id)
            state = scene.state
            if state:
                self._doc.apply_update(state)
                self._accepted.apply_update(state)
            self.version = scene.version
            self._writer = SceneWriter(self.studio, self.pool, self.project_id, scene)
            self._loaded.set()
            async with anyio.create_task_group() as tg:
                await tg.start(self.awareness.start)
                tg.start_soon(self._flush_forever)
                tg.start_soon(self._follow_log)
                task_status.started()
                await self._stopped.wait()
                await self._flush()
                tg.cancel_scope.cancel()
        finally:
            await self.fanout.unsubscribe(subscriptions)

    def stop(self) -> None:
        self._stopped.set()

    def stats(self) -> RoomStats:
        times = self._store_ms.ordered()
        return RoomStats(
            project_id=str(self.project_id), peers=len(self.peers), users=self.online_users(),
            version=self.version, document_bytes=len(self._stored().get_update()),
            pending=len(self._pending), pending_bytes=self._pending_bytes,
            awareness_states=len(self.awareness.states), stores_timed=len(times),
            store_p50_ms=_nearest_rank(times, 50), store_p99_ms=_nearest_rank(times, 99),
            store_max_ms=times[-1] if times else None,
        )

    def online_users(self) -> list[str]:
        users = {p.user_id for p in self.peers.values()} | set(self._remote_users.values())
        return sorted(users)

    def local_users(self) -> list[str]:
        return sorted({p.user_id for p in self.peers.values()})

    # -- peers ------------------------------------------------------------------------------

    def join(self, peer: Peer) -> None:
        self.peers[peer.id] = peer
        peer.send(protocol.sync_step1(self._stored().get_state()))
        others = [c for c in self.awareness.states if c != self.awareness.client_id]
        if others:
            peer.send(protocol.awareness(self.awareness.encode_awareness_update(others)))

    async def leave(self, peer: Peer) -> None:
        self.peers.pop(peer.id, None)
        gone = [client for client, owner in self._owners.items() if owner == peer.id]
        if gone:
            self.awareness.remove_awareness_states(gone, peer.id)
        if not self.peers:
            self.on_empty(self)

    async def receive(self, peer: Peer, frame: bytes) -> None:
        """Handle one frame; raises :class:`InvalidInput` for a frame that breaks protocol."""
        message = protocol.parse(frame)
        if isinstance(message, protocol.SyncStep1):
            try:
                missing = self._stored().get_update(message.state_vector)
            except ValueError:  # pycrdt: "Cannot decode state"
                raise InvalidInput("sync step 1 without a Yjs state vector") from None
            peer.send(protocol.sync_step2(missing))
        elif isinstance(message, protocol.SyncStep2 | protocol.SyncUpdate):
            await self._room_for_edits.wait()
            await self._accept_update(peer, message.update)
        elif isinstance(message, protocol.Awareness):
            self._accept_presence(peer, message.update)
        elif isinstance(message, protocol.QueryAwareness):
            states = [c for c in self.awareness.states if c != self.awareness.client_id]
            peer.send(protocol.awareness(self.awareness.encode_awareness_update(states)))

    async def close_user(self, user_id: str, code: int, reason: str) -> None:
        for peer in [p for p in self.peers.values() if p.user_id == user_id]:
            await peer.close(code, reason)

    # -- edits ------------------------------------------------------------------------------

    async def _accept_update(self, peer: Peer, update: bytes) -> None:
        if document.is_empty(update):
            return
        if not peer.can_edit:
            if self._brings_news(update):
                peer.send(protocol.notice("refused", "viewers cannot edit this project"))
                log.info("refused an update from viewer %s in %s", peer.user_id,
                         self.project_id)
            return
        if len(update) > CHECK_IN_THREAD_BYTES:
            await asyncio.to_thread(scene_schema.check_update, update)
        else:
            scene_schema.check_update(update)
        novel = self._integrate(update)
        if novel:
            self._pending.append(_Pending(peer, novel))
            self._pending_bytes += len(novel)
            if self._pending_bytes > MAX_PENDING_BYTES:
                self._room_for_edits.clear()
            self._wakeup.set()

    def _brings_news(self, update: bytes) -> bool:
        """Whether ``update`` holds an item or a deletion the accepted document lacks, judged
        without applying it (a viewer's update must change nothing, not even held back).

        A stock client answers the room's sync step 1 with what the room's state vector
        lacks plus, always, its whole delete set: a viewer reconnecting to a scene that ever
        had a deletion sends a non-empty update that changes nothing, and must not be told
        it cannot edit.
        """
        try:
            unseen = get_update(update, self._accepted.get_state())
        except Exception as e:  # pycrdt raises plain exceptions for bad encodings
            raise InvalidInput(f"not a Yjs update: {e}") from None
        structs, deleted = read_deletions(unseen, max_depth=scene_schema.MAX_DEPTH,
                                          max_items=scene_schema.MAX_UPDATE_ITEMS)
        if structs:
            return True
        if not deleted:
            return False
        everything = self._accepted.get_update(self._accepted.get_state())
        _, known = read_deletions(everything, max_depth=scene_schema.MAX_DEPTH,
                                  max_items=sys.maxsize)  # the room's own
        return not all(_covered(ranges, known.get(client, []))
                       for client, ranges in deleted.items())

    def _integrate(self, update: bytes) -> bytes:
        """Apply an update that passed :func:`scene_schema.check_update` to the accepted
        document; return what it newly integrated (may be empty). Raises
        :class:`InvalidInput` for an edit the scene cannot hold, and leaves the accepted
        document without it.

        What an update holds was checked before it is applied; where it lands (a plain value
        replacing an object, a field's type) only after. A refusal then rebuilds the accepted
        document (the stored one, the batch being stored and the queue) and tries once
        more: an update can also integrate structs held back from an earlier one that waited
        for it, and if those were the offence the edit itself is accepted on the rebuilt
        document, where they are gone.
        """
        problem = None
        for _ in range(2):
            made, problem = self._apply_checked(update)
            if problem is None:
                novel = [u for u in made if not document.is_empty(u)]
                return document.merge(novel) if novel else b""
            self._rebuild_accepted(keep_storing=True)
        raise InvalidInput(f"not part of the scene: {problem}")

    def _apply_checked(self, update: bytes) -> tuple[list[bytes], str | None]:
        made = self._made = []
        try:
            with scene_schema.changes_of(self._accepted) as changes:
                self._accepted.apply_update(update)
        except Exception as e:  # pycrdt raises plain exceptions for bad encodings
            self._rebuild_accepted(keep_storing=True)  # whatever of it got in
            raise InvalidInput(f"not a Yjs update: {e}") from None
        finally:
            self._made = None
        return made, changes.problem()

    def _on_accepted(self, event: Any) -> None:
        if self._made is not None:
            self._made.append(event.update)

    async def _flush_forever(self) -> None:
        """Store at once when idle; what arrives while a store is in flight waits for it and
        goes as the next batch. Batches thus grow with load, and a lone edit waits for nobody."""
        while True:
            await self._wakeup.wait()
            await self._flush()

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            if not self._pending:
                self._wakeup.clear()
            self._pending_bytes -= sum(len(p.update) for p in batch)
            if self._pending_bytes <= MAX_PENDING_BYTES:
                self._room_for_edits.set()  # edits arriving during the store form the next batch
            await self._store(batch)

    async def _store(self, batch: list[_Pending]) -> None:
        async with self._store_lock:
            await self._store_locked(batch)

    async def _store_locked(self, batch: list[_Pending]) -> None:
        entries = _per_author(batch)
        began = time.perf_counter()
        self._storing = [p.update for p in batch]
        try:
            stored = await self._writer.append(entries)
        except Exception as e:  # any failure: the authors must resend, nothing is broadcast
            log.error("could not store %d scene updates of %s: %s", len(batch),
                      self.project_id, e)
            self._storing = []
            self._rebuild_accepted(keep_storing=False)
            for peer in {p.peer.id: p.peer for p in batch}.values():
                await peer.close(CloseCode.STORAGE_FAILED, "edit not stored; reconnect to resend")
            return
        self._store_ms.add(1000 * (time.perf_counter() - began))
        merged = document.merge(u for u, _, _ in entries)
        # A peer has its own edits: a batch of one peer's goes to everyone else (the reference
        # server sends it back too, one more frame for the author's screen to decode and drop)
        authors = {p.peer.id for p in batch}
        author = next(iter(authors)) if len(authors) == 1 else None
        await self._advance(stored.first_version, stored.last_version, merged, accepted=True,
                            author=author)
        self._storing = []  # in the stored document now (see ``_stored``)
        # The edit is on the wire (an idle peer's socket is written during the broadcast)
        # before the stored document is brought up to date and the other nodes are told:
        # between edits this machine's caches go cold, and every step ahead of the socket
        # writes is a step on the way to everyone's screen.
        self._catch_up()
        await self._tell_other_nodes(stored.first_version, stored.last_version, merged)
        if self._writer.needs_compaction:
            await self._compact()

    async def _compact(self) -> None:
        """Snapshot the document once the edits that filled the tail are out. A failure
        loses nothing (the tail stays and the next store tries again)."""
        try:
            stored = await self._writer.compact()
        except Exception as e:
            log.warning("could not compact the scene of %s: %s", self.project_id, e)
            return
        if stored.last_version >= stored.first_version:  # a version that changes no content
            await self._advance(stored.first_version, stored.last_version, document.EMPTY_UPDATE,
                                accepted=True)
            await self._tell_other_nodes(stored.first_version, stored.last_version,
                                         document.EMPTY_UPDATE)

    async def _tell_other_nodes(self, first: int, last: int, update: bytes) -> None:
        """Publish a stored change. It is stored and sent to this node's peers already, so a
        failure (NATS gone) must not end the room: the other nodes see the versions jump at the
        next change and read what they missed from the log."""
        try:
            await self.fanout.scene_changed(self.project_id, first, last, update)
        except Exception as e:
            log.warning("could not tell other nodes about scene %s versions %d-%d: %s",
                        self.project_id, first, last, e)

    def _rebuild_accepted(self, *, keep_storing: bool) -> None:
        """The accepted document again: the stored one, the batch being stored unless its
        store failed (its authors resend it, and it must count as new then), and the queue.
        Nothing of a refused edit stays."""
        self._accepted.unobserve(self._accepted_subscription)
        self._accepted = Doc()
        self._accepted.apply_update(self._stored().get_update())
        for update in self._storing if keep_storing else ():
            self._accepted.apply_update(update)
        for pending in self._pending:
            self._accepted.apply_update(pending.update)
        self._accepted_subscription = self._accepted.observe(self._on_accepted)

    async def _advance(self, first: int, last: int, update: bytes, *,
                       accepted: bool = False, author: int | None = None) -> None:
        """Bring the document to scene version ``last`` and send the difference to peers.

        ``accepted``: the update was accepted here, so the accepted document has it already.
        ``author``: the peer that sent all of ``update``; it is not sent the update back
        (but is sent whatever else a gap brings).
        """
        async with self._advance_lock:
            if last <= self.version:
                return  # already applied (our own message coming back from NATS)
            if first == self.version + 1 and update:
                # The stored update itself goes out, as the reference server relays what a
                # client sent: a diff against the state vector would carry the document's
                # whole delete set, which grows with every overwritten value, to every peer.
                # It reaches the stored document later (``_catch_up``): the peers first.
                self._unapplied.append(update)
                if not accepted:
                    self._accepted.apply_update(update)
                delta, skip = update, author
            else:  # a gap: read what is missing from the log (it may hold compactions,
                # whole documents, so only the difference goes out)
                stored = self._stored()
                before = stored.get_state()
                for change in await asyncio.to_thread(
                        self.studio.scene_updates_between, self.project_id, self.version, last):
                    stored.apply_update(change)
                    self._accepted.apply_update(change)
                delta, skip = stored.get_update(before), None
            self.version = last
        if not document.is_empty(delta):
            self._broadcast(protocol.update(delta), skip=skip)

    def _stored(self) -> Doc:
        """The stored document at ``version``."""
        self._catch_up()
        return self._doc

    def _catch_up(self) -> None:
        """Apply the stored edits already sent to the peers."""
        updates, self._unapplied = self._unapplied, []
        for update in updates:
            self._doc.apply_update(update)

    def _broadcast(self, frame: bytes, skip: int | None = None) -> None:
        for peer in list(self.peers.values()):
            if peer.id != skip:
                peer.send(frame)

    # -- presence ---------------------------------------------------------------------------

    def _accept_presence(self, peer: Peer, update: bytes) -> None:
        try:
            self.awareness.apply_awareness_update(update, peer.id)
        except (ValueError, IndexError, RuntimeError) as e:
            raise InvalidInput(f"bad awareness update: {e}") from None
        self._broadcast(protocol.awareness(update), skip=peer.id)
        self._spawn(self.fanout.presence(self.project_id, peer.user_id, update))

    def _on_awareness(self, topic: str, change: tuple[dict[str, Any], Any]) -> None:
        if topic != "update":
            return
        changes, origin = change
        if isinstance(origin, int) and origin in self.peers:
            for client in changes["added"] + changes["updated"]:
                self._owners[client] = origin
        for client in changes["removed"]:
            self._owners.pop(client, None)
            self._remote_users.pop(client, None)
        if origin == "timeout" or (isinstance(origin, int) and origin not in self.peers):
            # a client that left or went quiet: tell everyone its state is gone
            update = self.awareness.encode_awareness_update(changes["removed"])
            self._broadcast(protocol.awareness(update))
            if isinstance(origin, int):
                self._spawn(self.fanout.presence(self.project_id, "", update))

    async def _on_presence(self, change: PresenceChange) -> None:
        before = set(self.awareness.states)
        self.awareness.apply_awareness_update(change.update, "remote")
        for client in set(self.awareness.states) - before:
            self._remote_users[client] = change.user
        self._broadcast(protocol.awareness(change.update))

    # -- the log and other nodes ------------------------------------------------------------

    def log_moved(self, version: int) -> None:
        """The log holds this scene up to ``version`` (committed by anyone, anywhere)."""
        if version > self._log_head:
            self._log_head = version
            self._log_moved.set()

    async def _follow_log(self) -> None:
        """Bring the room up to the version the log announced, reading what no fast path
        brought: a worker's result, a revert, an undo, another node's edit whose NATS message
        was lost. Several announcements in a row cost one read."""
        while True:
            await self._log_moved.wait()
            self._log_moved.clear()
            if self._log_head <= self.version:
                continue
            await asyncio.sleep(FAST_PATH_GRACE_S)
            try:
                await self._read_log_head()
            except Exception as e:  # the database away: the room serves on, and retries
                log.warning("could not read scene %s up to version %d from the log: %s",
                            self.project_id, self._log_head, e)
                self._log_moved.set()
                await asyncio.sleep(LOG_RETRY_S)

    async def _read_log_head(self) -> None:
        async with self._store_lock:  # a store in flight brings its own versions
            head = self._log_head
            if head > self.version:
                await self._advance(head, head, b"")
                self._catch_up()

    async def _on_scene_change(self, change: SceneChange) -> None:
        await self._loaded.wait()
        await self._advance(change.first_version, change.last_version, change.update)
        self._catch_up()  # after the broadcast, as after a store of this node's

    async def _on_control(self, message: dict[str, Any]) -> None:
        user = message.get("user")
        if not isinstance(user, str):
            return
        role = message.get("role")
        if role is None:  # removed from the project, or their account disabled: say which
            reason = message.get("reason")
            await self.close_user(user, CloseCode.FORBIDDEN, reason if isinstance(reason, str)
                                  else "removed from the project")
            return
        for peer in self.peers.values():
            if peer.user_id == user:
                peer.can_edit = role in ("editor", "owner")

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _RecentTimes:
    """The latest ``size`` durations, 8 bytes each in an array. A deque of floats takes 32
    each: 32 KB for a busy room's 1,000, about what all the rest of an idle room takes."""

    def __init__(self, size: int) -> None:
        self._times = array("d")
        self._size = size
        self._next = 0

    def add(self, ms: float) -> None:
        if len(self._times) < self._size:
            self._times.append(ms)
        else:
            self._times[self._next] = ms
        self._next = (self._next + 1) % self._size

    def ordered(self) -> list[float]:
        return sorted(self._times)


def _nearest_rank(ordered: list[float], percent: int) -> float | None:
    """The value ``percent`` % of ``ordered`` are at or below: a time that was measured."""
    return ordered[max(0, math.ceil(percent * len(ordered) / 100) - 1)] if ordered else None


def _covered(ranges: list[tuple[int, int]], known: list[tuple[int, int]]) -> bool:
    """Whether every ``(clock, length)`` range lies inside the union of ``known`` ranges."""
    spans: list[tuple[int, int]] = []  # (start, end), sorted and merged
    for start, length in sorted(known):
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], start + length))
        else:
            spans.append((start, start + length))
    starts = [start for start, _ in spans]
    for clock, length in ranges:
        at = bisect.bisect_right(starts, clock) - 1
        if length and (at < 0 or clock + length > spans[at][1]):
            return False
    return True


def _per_author(batch: list[_Pending]) -> list[tuple[bytes, str, str]]:
    """One merged update per author, in the order they first wrote (one event each), split
    where merging would outgrow what one ``Scene.Updated`` may hold: a batch is refused
    whole, so one author's big edits would otherwise cost everyone in it their socket."""
    limit = scene_events.MAX_UPDATE_BYTES
    chunks: dict[str, list[list[bytes]]] = {}  # per author, runs of updates that fit together
    sizes: dict[str, int] = {}  # bytes in each author's last run
    for pending in batch:
        user, update = pending.peer.user_id, pending.update
        runs = chunks.setdefault(user, [[]])
        if runs[-1] and sizes[user] + len(update) > limit:
            runs.append([])
            sizes[user] = 0
        runs[-1].append(update)
        sizes[user] = sizes.get(user, 0) + len(update)
    entries = []
    for user, runs in chunks.items():
        for run in runs:
            merged = document.merge(run)  # about as big as its parts; where it came out
            # bigger (skips over clock gaps), the parts go unmerged
            entries += [(part, user, "ws") for part in ([merged] if len(merged) <= limit else run)]
    return entries
