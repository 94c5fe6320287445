"""A room peer over a real Starlette WebSocket, whose ASGI server here is a tiny one that can
stall its writes the way uvicorn does when a socket's buffer is full (``pause_writing``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.websockets import WebSocket

from api.ws_peer import OUTBOX_BYTES, SLOW_CONSUMER, PeerState, WebSocketPeer


class StallingServer:
    """The ASGI side of one WebSocket: ``writable`` cleared makes every send wait, as
    uvicorn's does while the transport is paused; ``gone`` makes sends fail."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.gone = False
        self.sent: list[Any] = []  # frames' bytes, and ("close", code, reason)
        self.sends_cancelled = 0

    async def receive(self) -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(self, message: dict[str, Any]) -> None:
        try:
            await self.writable.wait()
        except asyncio.CancelledError:
            self.sends_cancelled += 1
            raise
        if self.gone:
            raise OSError("the client went away")
        if message["type"] == "websocket.send":
            self.sent.append(message["bytes"])
        elif message["type"] == "websocket.close":
            self.sent.append(("close", message["code"], message["reason"]))


def scenario(test: Callable[[StallingServer, WebSocketPeer, asyncio.Task[None]], Awaitable[None]]
             ) -> None:
    async def run() -> None:
        server = StallingServer()
        websocket = WebSocket({"type": "websocket", "path": "/ws", "headers": []},
                              server.receive, server.send)
        await websocket.accept()
        peer = WebSocketPeer(websocket, "alice", can_edit=True)
        writer = asyncio.create_task(peer.write_forever())
        await asyncio.sleep(0)
        try:
            await asyncio.wait_for(test(server, peer, writer), 5)
        finally:
            writer.cancel()
    asyncio.run(run())


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def test_a_frame_for_an_idle_socket_is_written_during_the_send_call() -> None:
    async def test(server: StallingServer, peer: WebSocketPeer, writer: asyncio.Task[None]) -> None:
        peer.send(b"one")
        assert server.sent == [b"one"]  # no await in between: no task switch per peer
        peer.send(b"two")
        assert server.sent == [b"one", b"two"]
    scenario(test)


def test_frames_that_wait_go_out_once_in_order_when_the_socket_drains() -> None:
    async def test(server: StallingServer, peer: WebSocketPeer, writer: asyncio.Task[None]) -> None:
        server.writable.clear()
        for frame in (b"a", b"b", b"c"):
            peer.send(frame)
        await settle()
        assert server.sent == []
        server.writable.set()
        await settle()
        assert server.sent == [b"a", b"b", b"c"]
        peer.send(b"d")  # idle again: written at once
        assert server.sent == [b"a", b"b", b"c", b"d"]
    scenario(test)


def test_a_peer_that_stops_reading_is_closed_once_its_bytes_are_over_budget() -> None:
    async def test(server: StallingServer, peer: WebSocketPeer, writer: asyncio.Task[None]) -> None:
        server.writable.clear()
        frame = bytes(1024 * 1024)
        for _ in range(OUTBOX_BYTES // len(frame)):
            peer.send(frame)
        assert peer.state is PeerState.OPEN  # the first half-sent plus the queued: at the budget
        peer.send(b"x")
        assert peer.state is PeerState.CLOSING
        peer.send(b"after")  # dropped: the peer is closing
        server.writable.set()
        await asyncio.wait_for(writer, 1)
        # the frame the server had begun is finished, the queued ones dropped, then the close
        assert server.sent == [frame, ("close", SLOW_CONSUMER, "too slow; reconnect to resync")]
        assert peer.state is PeerState.CLOSED
    scenario(test)


def test_a_send_to_a_socket_that_went_away_stops_the_writer() -> None:
    async def test(server: StallingServer, peer: WebSocketPeer, writer: asyncio.Task[None]) -> None:
        server.gone = True
        peer.send(b"lost")
        assert peer.state is PeerState.CLOSED
        await asyncio.wait_for(writer, 1)
        peer.send(b"later")  # ignored, raises nothing
        assert server.sent == []
    scenario(test)


def test_cancelling_the_writer_reaches_a_send_that_waits() -> None:
    async def test(server: StallingServer, peer: WebSocketPeer, writer: asyncio.Task[None]) -> None:
        server.writable.clear()
        peer.send(b"stuck")
        await settle()
        writer.cancel()
        await asyncio.wait([writer], timeout=1)
        assert writer.cancelled()
        assert server.sends_cancelled == 1  # the send the writer took over saw the cancellation
        assert server.sent == []
    scenario(test)
