"""The y-websocket protocol, version 1, as the stock ``WebsocketProvider`` speaks it, plus the
studio's close codes and one extension message.

Frames are ``varUint(messageType)`` then a payload: SYNC carries ``varUint(syncType)`` and a
length-prefixed update or state vector; AWARENESS a length-prefixed awareness update;
QUERY_AWARENESS nothing. The NOTICE extension (type 100, JSON) tells a client why the server
refused something without closing the socket; stock clients ignore message types they do not
know.

Frames are read with :class:`core.scene.lib0.FrameReader`, not pycrdt's ``Decoder``, whose
work on a hostile frame grows with the square of its length (see there).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from pycrdt import (
    YMessageType,
    YSyncMessageType,
    create_awareness_message,
    create_update_message,
    write_message,
    write_var_uint,
)

from core.errors import InvalidInput
from core.scene.lib0 import MAX_VARINT_BYTES, FrameReader

PROTOCOL_VERSION = 1


class MessageType(IntEnum):
    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3
    NOTICE = 100  # studio extension


class SyncType(IntEnum):
    STEP1 = 0
    STEP2 = 1
    UPDATE = 2


class CloseCode(IntEnum):
    """Why the server closed a socket (mirrored in the frontend's protocol module)."""

    GOING_AWAY = 1001  # server shutting down: reconnect
    INTERNAL_ERROR = 1011  # the server failed on a frame it should have handled: reconnect
    BAD_MESSAGE = 4400  # a frame that is not the protocol
    UNAUTHENTICATED = 4401
    FORBIDDEN = 4403  # not a member, or removed from the project
    NOT_FOUND = 4404  # no such project
    TOO_LARGE = 4413  # a frame over the configured limit (Settings.ws_max_frame_bytes)
    STORAGE_FAILED = 4500  # an edit could not be stored: reconnect and it is sent again


@dataclass(frozen=True)
class SyncStep1:
    state_vector: bytes


@dataclass(frozen=True)
class SyncStep2:
    update: bytes


@dataclass(frozen=True)
class SyncUpdate:
    update: bytes


@dataclass(frozen=True)
class Awareness:
    update: bytes


@dataclass(frozen=True)
class QueryAwareness:
    """A client asks for every presence state (no payload)."""


Message = SyncStep1 | SyncStep2 | SyncUpdate | Awareness | QueryAwareness


# Presence entries one awareness message may carry: a client sends its own (y-websocket sends
# one; a server relaying several clients sends a few), so more is a peer making up clients.
MAX_AWARENESS_ENTRIES = 64


def parse(frame: bytes) -> Message | None:
    """One frame from a client; None for messages the server ignores (auth). The frame's
    size is the transport's to limit (see ``api.routes.collab``); the work here is linear in
    it, and anything but exactly one well-formed message raises :class:`InvalidInput`."""
    reader = FrameReader(frame)
    kind = reader.var_uint()
    message: Message | None
    if kind == MessageType.SYNC:
        sync = reader.var_uint()
        payload = reader.var_bytes()
        if sync == SyncType.STEP1:
            _check_state_vector(payload)
            message = SyncStep1(payload)
        elif sync == SyncType.STEP2:
            message = SyncStep2(payload)
        elif sync == SyncType.UPDATE:
            message = SyncUpdate(payload)
        else:
            raise InvalidInput(f"unknown sync message type {sync}")
    elif kind == MessageType.AWARENESS:
        payload = reader.var_bytes()
        _check_awareness(payload)
        message = Awareness(payload)
    elif kind == MessageType.QUERY_AWARENESS:
        message = QueryAwareness()
    elif kind == MessageType.AUTH:
        return None  # y-websocket's auth message: nothing the server acts on
    else:
        raise InvalidInput(f"unknown message type {kind}")
    reader.end()
    return message


_LOW_BYTES = bytes(range(0x80))  # the last byte of a varint, and only that
_TOO_LONG_VARINT = re.compile(rb"[\x80-\xff]{%d}" % MAX_VARINT_BYTES)


def _check_state_vector(payload: bytes) -> None:
    """A Yjs state vector: a count, then (client, clock) pairs, and nothing after. Counted
    in C, not read varint by varint: an 8 MiB one of one-byte pairs took 2.5 s that way."""
    reader = FrameReader(payload)
    count = reader.var_uint()
    pairs = payload[len(payload) - reader.remaining:]
    if pairs and pairs[-1] >= 0x80:
        raise InvalidInput("a state vector cut off inside a varint")
    if _TOO_LONG_VARINT.search(pairs):
        raise InvalidInput(f"a varint longer than {MAX_VARINT_BYTES} bytes in a state vector")
    varints = len(pairs) - len(pairs.translate(None, _LOW_BYTES))
    if varints != 2 * count:
        raise InvalidInput(f"a state vector of {count} clients holding {varints} numbers")


def _check_awareness(payload: bytes) -> None:
    """An awareness update: a count, then (client, clock, JSON state or "") per entry. The
    states are parsed here once, so that what pycrdt's awareness reads again is well-formed."""
    reader = FrameReader(payload)
    count = reader.var_uint()
    if count > MAX_AWARENESS_ENTRIES:
        raise InvalidInput(f"{count} presence entries in one message; at most "
                           f"{MAX_AWARENESS_ENTRIES}")
    for _ in range(count):
        reader.var_uint()
        reader.var_uint()
        state = reader.var_string()
        if state:
            try:
                json.loads(state)
            except (ValueError, RecursionError):
                raise InvalidInput("a presence state that is not JSON") from None
    reader.end()


# pycrdt exports no step 1 or step 2 builder (its own live in the private ``pycrdt._sync``),
# so the two frames are written from its public parts, as y-protocols lays them out.
def sync_step1(state_vector: bytes) -> bytes:
    return bytes([YMessageType.SYNC, YSyncMessageType.SYNC_STEP1]) + write_message(state_vector)


def sync_step2(update: bytes) -> bytes:
    return bytes([YMessageType.SYNC, YSyncMessageType.SYNC_STEP2]) + write_message(update)


def update(data: bytes) -> bytes:
    return create_update_message(data)


def awareness(data: bytes) -> bytes:
    return create_awareness_message(data)


def notice(kind: str, detail: str, **extra: Any) -> bytes:
    body = json.dumps({"type": kind, "detail": detail, **extra}).encode()
    return write_var_uint(MessageType.NOTICE) + write_var_uint(len(body)) + body
