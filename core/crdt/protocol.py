"""The y-websocket protocol, version 1, as the stock ``WebsocketProvider`` speaks it, plus the
studio's close codes and one extension message.

Frames are ``varUint(messageType)`` then a payload: SYNC carries ``varUint(syncType)`` and a
length-prefixed update or state vector; AWARENESS a length-prefixed awareness update;
QUERY_AWARENESS nothing. pycrdt's codec does the byte work. The NOTICE extension (type 100,
JSON) tells a client why the server refused something without closing the socket; stock
clients ignore message types they do not know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from pycrdt import Decoder, create_awareness_message, create_update_message, write_var_uint
from pycrdt._sync import create_sync_step1_message, create_sync_step2_message

from core.errors import InvalidInput

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


def parse(frame: bytes) -> Message | None:
    """One frame from a client; None for messages the server ignores (auth). The frame's
    size is the transport's to limit (see ``api.routes.collab``)."""
    try:
        decoder = Decoder(frame)
        kind = decoder.read_var_uint()
        if kind == MessageType.SYNC:
            sync = decoder.read_var_uint()
            payload = _payload(decoder)
            if sync == SyncType.STEP1:
                return SyncStep1(payload)
            if sync == SyncType.STEP2:
                return SyncStep2(payload)
            if sync == SyncType.UPDATE:
                return SyncUpdate(payload)
            raise InvalidInput(f"unknown sync message type {sync}")
        if kind == MessageType.AWARENESS:
            return Awareness(_payload(decoder))
        if kind == MessageType.QUERY_AWARENESS:
            return QueryAwareness()
        if kind == MessageType.AUTH:
            return None
    except (IndexError, RuntimeError) as e:
        raise InvalidInput(f"truncated frame: {e}") from None
    raise InvalidInput(f"unknown message type {kind}")


def _payload(decoder: Decoder) -> bytes:
    """The length-prefixed payload. pycrdt's decoder slices whatever is there, so a length
    that runs past the frame would hand on a cut-off payload as if it were whole."""
    payload = decoder.read_message() or b""
    if decoder.length < 0:
        raise InvalidInput("a length beyond the end of the frame")
    return payload


def sync_step1(state_vector: bytes) -> bytes:
    return create_sync_step1_message(state_vector)


def sync_step2(update: bytes) -> bytes:
    return create_sync_step2_message(update)


def update(data: bytes) -> bytes:
    return create_update_message(data)


def awareness(data: bytes) -> bytes:
    return create_awareness_message(data)


def notice(kind: str, detail: str, **extra: Any) -> bytes:
    body = json.dumps({"type": kind, "detail": detail, **extra}).encode()
    return write_var_uint(MessageType.NOTICE) + write_var_uint(len(body)) + body
