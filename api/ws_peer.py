"""A WebSocket connection as a room peer: an explicit lifecycle and one writer per socket.

Rooms send from several tasks (a peer's own replies, broadcasts, NATS callbacks); frames go
through a queue drained by one writer task, so sends never interleave; the queue is bounded in
frames and bytes, and a peer that stops reading is closed instead of growing the server's
memory.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from enum import Enum

from starlette.websockets import WebSocket, WebSocketDisconnect

log = logging.getLogger(__name__)

OUTBOX_FRAMES = 4096
# Bytes waiting for a socket beyond which its peer counts as too slow: two frames of the
# largest size a client may send (a broadcast can be bigger than the queue: it always fits an
# empty one).
OUTBOX_BYTES = 16 * 1024 * 1024
SLOW_CONSUMER = 1013  # "try again later": the client reconnects and resyncs

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


class WebSocketPeer:
    def __init__(self, websocket: WebSocket, user_id: str, can_edit: bool) -> None:
        self.id = next(_ids)
        self.user_id = user_id
        self.can_edit = can_edit
        self.state = PeerState.OPEN
        self._websocket = websocket
        self._outbox: asyncio.Queue[bytes | tuple[int, str]] = asyncio.Queue(OUTBOX_FRAMES)
        self._outbox_bytes = 0

    def _move(self, target: PeerState) -> bool:
        if target not in _TRANSITIONS[self.state]:
            return False
        self.state = target
        return True

    def send(self, frame: bytes) -> None:
        if self.state is not PeerState.OPEN:
            return
        if self._outbox.full() or (not self._outbox.empty()
                                   and self._outbox_bytes + len(frame) > OUTBOX_BYTES):
            log.warning("peer %s of user %s is too slow; closing", self.id, self.user_id)
            self._request_close(SLOW_CONSUMER, "too slow; reconnect to resync")
            return
        self._outbox_bytes += len(frame)
        self._outbox.put_nowait(frame)

    async def close(self, code: int, reason: str) -> None:
        self._request_close(code, reason)

    def _request_close(self, code: int, reason: str) -> None:
        if not self._move(PeerState.CLOSING):
            return
        while True:  # the close goes ahead of anything still queued
            try:
                self._outbox.get_nowait()
            except asyncio.QueueEmpty:
                break
        self._outbox_bytes = 0
        self._outbox.put_nowait((code, reason))

    async def write_forever(self) -> None:
        """Drain the outbox to the socket until a close is sent or the socket goes away."""
        try:
            while True:
                item = await self._outbox.get()
                if isinstance(item, tuple):
                    await self._websocket.close(code=item[0], reason=item[1])
                    return
                self._outbox_bytes -= len(item)
                await self._websocket.send_bytes(item)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the client went away; the reader notices too
        finally:
            self._move(PeerState.CLOSED)


