"""A WebSocket connection as a room peer: an explicit lifecycle and one writer per socket.

Rooms send from several tasks (a peer's own replies, broadcasts, NATS callbacks). A frame for
an idle socket is written at once, in the sender's own step, as ``websockets.broadcast`` does,
so a broadcast reaches every socket in one pass instead of one task switch per peer. A frame
that must wait (the socket is being written, or its buffer is full) goes through a queue
drained by one writer task, so frames never reorder or interleave; the queue is bounded in
frames and bytes, and a peer that stops reading is closed instead of growing the server's
memory.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Coroutine, Generator
from enum import Enum
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

log = logging.getLogger(__name__)

OUTBOX_FRAMES = 4096
# Bytes waiting for a socket beyond which its peer counts as too slow: two frames of the
# largest size a client may send (a broadcast can be bigger than the queue: it always fits an
# empty one).
OUTBOX_BYTES = 16 * 1024 * 1024
SLOW_CONSUMER = 1013  # "try again later": the client reconnects and resyncs
_GONE = (WebSocketDisconnect, RuntimeError, OSError)  # what a send to a closed socket raises

_ids = itertools.count(1)


class PeerState(Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


_TRANSITIONS = {
    PeerState.OPEN: {PeerState.CLOSING, PeerState.CLOSED},
    PeerState.CLOSING: {PeerState.CLOSED},
    PeerState.CLOSED: set(),
}


class _UnfinishedSend:
    """A send started in :meth:`WebSocketPeer.send` that had to wait (the transport paused
    writing). The writer task awaits the rest of that same coroutine, so the frame is neither
    lost nor written twice, wherever in the server's send it stopped."""

    def __init__(self, send: Coroutine[Any, Any, None], waiting_for: Any, size: int) -> None:
        self._send = send
        self._waiting_for = waiting_for
        self.size = size

    def __await__(self) -> Generator[Any, None, None]:
        waiting_for = self._waiting_for
        while True:  # what ``yield from`` does, for a coroutine already under way
            try:
                try:
                    yield waiting_for
                except BaseException as error:  # cancelled while it waits: pass it on
                    waiting_for = self._send.throw(error)
                else:
                    waiting_for = self._send.send(None)
            except StopIteration:
                return


_Item = bytes | _UnfinishedSend | tuple[int, str] | None  # a frame, a close, or stop


class WebSocketPeer:
    def __init__(self, websocket: WebSocket, user_id: str, can_edit: bool) -> None:
        self.id = next(_ids)
        self.user_id = user_id
        self.can_edit = can_edit
        self.state = PeerState.OPEN
        self._websocket = websocket
        self._outbox: asyncio.Queue[_Item] = asyncio.Queue(OUTBOX_FRAMES)
        self._outbox_bytes = 0
        self._writing = False  # the writer task holds a frame it has not finished sending

    def _move(self, target: PeerState) -> bool:
        if target not in _TRANSITIONS[self.state]:
            return False
        self.state = target
        return True

    def send(self, frame: bytes) -> None:
        if self.state is not PeerState.OPEN:
            return
        if not self._writing and self._outbox.empty():
            self._send_now(frame)
        elif self._outbox.full() or (not self._outbox.empty()
                                     and self._outbox_bytes + len(frame) > OUTBOX_BYTES):
            log.warning("peer %s of user %s is too slow; closing", self.id, self.user_id)
            self._request_close(SLOW_CONSUMER, "too slow; reconnect to resync")
        else:
            self._queue(frame)

    def _send_now(self, frame: bytes) -> None:
        """Run the server's send up to where it would wait; usually it writes and finishes."""
        send = self._websocket.send_bytes(frame)
        try:
            waiting_for = send.send(None)
        except StopIteration:
            return
        except _GONE:
            self._move(PeerState.CLOSED)
            self._outbox.put_nowait(None)  # the writer stops; the reader sees the close
            return
        self._queue(_UnfinishedSend(send, waiting_for, len(frame)))

    def _queue(self, item: bytes | _UnfinishedSend) -> None:
        self._outbox_bytes += _size(item)
        self._outbox.put_nowait(item)

    async def close(self, code: int, reason: str) -> None:
        self._request_close(code, reason)

    def _request_close(self, code: int, reason: str) -> None:
        if not self._move(PeerState.CLOSING):
            return
        unfinished = None
        while True:  # the close goes ahead of anything queued, but after a half-sent frame
            try:
                item = self._outbox.get_nowait()
            except asyncio.QueueEmpty:
                break
            if isinstance(item, _UnfinishedSend):
                unfinished = item
        self._outbox_bytes = 0
        if unfinished is not None:
            self._queue(unfinished)
        self._outbox.put_nowait((code, reason))

    async def write_forever(self) -> None:
        """Drain the outbox to the socket until a close is sent or the socket goes away."""
        try:
            while True:
                item = await self._outbox.get()
                if item is None:
                    return
                if isinstance(item, tuple):
                    await self._websocket.close(code=item[0], reason=item[1])
                    return
                self._outbox_bytes -= _size(item)
                self._writing = True
                await (item if isinstance(item, _UnfinishedSend)
                       else self._websocket.send_bytes(item))
                self._writing = False
        except _GONE:
            return  # the client went away; the reader notices too
        finally:
            self._move(PeerState.CLOSED)


def _size(item: bytes | _UnfinishedSend) -> int:
    return item.size if isinstance(item, _UnfinishedSend) else len(item)
