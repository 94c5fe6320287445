"""What a Yjs update (v1 encoding) inserts, read without applying it.

The room must know what an edit would add before pycrdt integrates it: a sub-document, an
XML type or a value nested 3,000 deep is accepted by yrs and then breaks every reader of the
stored scene. pycrdt offers no decoder for updates, so this is one, written from Yjs's
``readClientsStructRefs`` / ``readItemContent`` and lib0's ``readAny``, with bounded work: one
pass, every length checked against the update before it is read (:class:`FrameReader`), plain
values no deeper than ``max_depth``, and at most ``max_items`` structs and values (an 8 MiB
update of one-byte values would otherwise take seconds of Python).

Each inserted item comes out as an :class:`Insert`: its parent where the update names it (a
root by name, or an existing type by id; Yjs leaves it out when the item has a neighbour, the
parent is then the neighbour's), its map key, and its content.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any, NamedTuple

from core.errors import InvalidInput
from core.scene.lib0 import FrameReader

# Yjs's item info byte: the low five bits name the content; the high bits say what follows.
_CONTENT_BITS = 0x1F
_HAS_ORIGIN = 0x80
_HAS_RIGHT_ORIGIN = 0x40
_HAS_PARENT_SUB = 0x20


class Content(IntEnum):
    """Yjs's content references (``contentRefs`` in yjs/src/structs/Item.js)."""

    GC = 0
    DELETED = 1
    JSON = 2
    BINARY = 3
    STRING = 4
    EMBED = 5
    FORMAT = 6
    TYPE = 7
    ANY = 8
    DOC = 9
    SKIP = 10


class TypeRef(IntEnum):
    """Shared types (``typeRefs`` in yjs/src/structs/ContentType.js)."""

    ARRAY = 0
    MAP = 1
    TEXT = 2
    XML_ELEMENT = 3
    XML_FRAGMENT = 4
    XML_HOOK = 5
    XML_TEXT = 6


class Insert(NamedTuple):
    """One inserted item of an update (a tuple: an edit of thousands of objects makes
    thousands of these, and a frozen dataclass takes three times as long to build)."""

    content: int  # a :class:`Content`
    root: str | None  # the parent root's name, where the update names one
    has_parent: bool  # the update names the parent (a root or an existing type by id)
    key: str | None  # the map key (``parentSub``), where the update names it
    type_ref: int | None = None  # a :class:`TypeRef`, for Content.TYPE
    values: tuple[Any, ...] = ()  # for Content.ANY: the plain values


# lib0 ``writeAny`` type tags.
_UNDEFINED, _NULL, _INT, _FLOAT32, _FLOAT64, _BIGINT = 127, 126, 125, 124, 123, 122
_FALSE, _TRUE, _STRING, _OBJECT, _ARRAY, _BYTES = 121, 120, 119, 118, 117, 116


class Binary(bytes):
    """A ``Uint8Array`` inside a plain value (kept apart so that a check can name it)."""


class BigInt(int):
    """A JavaScript ``BigInt`` inside a plain value."""


class _Budget:
    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.left = self.limit = limit

    def spend(self, count: int = 1) -> None:
        self.left -= count
        if self.left < 0:
            raise InvalidInput(f"an edit of more than {self.limit:,} changes and values; "
                               "send it in parts")


def read_update(update: bytes, *, max_depth: int, max_items: int) -> list[Insert]:
    """Every item ``update`` inserts (GC and skip structs and the delete set are read and
    left out). Raises :class:`InvalidInput` for anything that is not a v1 update, for plain
    values nested deeper than ``max_depth`` and past ``max_items`` structs and values."""
    reader = FrameReader(update)
    budget = _Budget(max_items)
    inserts: list[Insert] = []
    for _ in range(reader.var_uint()):  # clients
        structs = reader.var_uint()
        budget.spend(structs)
        reader.var_uint()  # client
        reader.var_uint()  # first clock
        for _ in range(structs):
            insert = _read_struct(reader, budget, max_depth)
            if insert is not None:
                inserts.append(insert)
    _read_delete_set(reader, budget)
    reader.end()
    return inserts


def read_deletions(update: bytes, *, max_depth: int, max_items: int
                   ) -> tuple[int, dict[int, list[tuple[int, int]]]]:
    """How many structs ``update`` carries, and its delete set: client id -> deleted
    ``(clock, length)`` ranges. Bounded and refused as :func:`read_update` is."""
    reader = FrameReader(update)
    budget = _Budget(max_items)
    structs = 0
    for _ in range(reader.var_uint()):  # clients
        count = reader.var_uint()
        budget.spend(count)
        structs += count
        reader.var_uint()  # client
        reader.var_uint()  # first clock
        for _ in range(count):
            _read_struct(reader, budget, max_depth)
    deleted = _read_delete_set(reader, budget)
    reader.end()
    return structs, deleted


def _read_struct(reader: FrameReader, budget: _Budget, max_depth: int) -> Insert | None:
    info = reader.byte()
    kind = info & _CONTENT_BITS
    if kind in (Content.GC, Content.SKIP):
        reader.var_uint()  # length
        return None
    if info & _HAS_ORIGIN:
        reader.var_uint()
        reader.var_uint()
    if info & _HAS_RIGHT_ORIGIN:
        reader.var_uint()
        reader.var_uint()
    root: str | None = None
    has_parent = not info & (_HAS_ORIGIN | _HAS_RIGHT_ORIGIN)
    key: str | None = None
    if has_parent:
        if reader.var_uint() == 1:
            root = reader.var_string()
        else:  # the parent is a type nested somewhere, by its item's id
            reader.var_uint()
            reader.var_uint()
        if info & _HAS_PARENT_SUB:
            key = reader.var_string()
    return _read_content(reader, kind, root, has_parent, key, budget, max_depth)


_KNOWN_CONTENT = frozenset(Content) - {Content.GC, Content.SKIP}


def _read_content(reader: FrameReader, kind: int, root: str | None, has_parent: bool,
                  key: str | None, budget: _Budget, max_depth: int) -> Insert:
    if kind == Content.ANY:  # first: nearly every item of a scene edit is a plain value
        count = reader.var_uint()
        budget.spend(count)
        values = tuple(_read_any(reader, budget, max_depth) for _ in range(count))
        return Insert(kind, root, has_parent, key, None, values)
    if kind not in _KNOWN_CONTENT:
        raise InvalidInput(f"unknown Yjs content type {kind}")
    type_ref: int | None = None
    if kind == Content.DELETED:
        reader.var_uint()
    elif kind == Content.JSON:
        count = reader.var_uint()
        budget.spend(count)
        for _ in range(count):
            reader.var_string()
    elif kind == Content.BINARY:
        reader.var_bytes()
    elif kind in (Content.STRING, Content.EMBED):
        reader.var_string()
    elif kind == Content.FORMAT:
        reader.var_string()
        reader.var_string()
    elif kind == Content.TYPE:
        type_ref = reader.var_uint()
        if type_ref in (TypeRef.XML_ELEMENT, TypeRef.XML_HOOK):
            reader.var_string()  # the element's name
    elif kind == Content.DOC:
        reader.var_string()  # guid
        _read_any(reader, budget, max_depth)  # options
    return Insert(kind, root, has_parent, key, type_ref)


def _read_any(reader: FrameReader, budget: _Budget, depth_left: int) -> Any:
    tag = reader.byte()
    if tag in (_UNDEFINED, _NULL):
        return None
    if tag == _INT:
        return _read_var_int(reader)
    if tag == _FLOAT32:
        return struct.unpack(">f", reader.take(4))[0]
    if tag == _FLOAT64:
        return struct.unpack(">d", reader.take(8))[0]
    if tag == _BIGINT:
        return BigInt(struct.unpack(">q", reader.take(8))[0])
    if tag in (_FALSE, _TRUE):
        return tag == _TRUE
    if tag == _STRING:
        return reader.var_string()
    if tag == _BYTES:
        return Binary(reader.var_bytes())
    if tag in (_OBJECT, _ARRAY):
        if depth_left <= 0:
            raise InvalidInput("a value nested deeper than the scene allows")
        count = reader.var_uint()
        if count > reader.remaining:  # each entry takes a byte at least
            raise InvalidInput(f"{count} entries declared where {reader.remaining} bytes "
                               "are left")
        budget.spend(count)
        if tag == _ARRAY:
            return [_read_any(reader, budget, depth_left - 1) for _ in range(count)]
        return {reader.var_string(): _read_any(reader, budget, depth_left - 1)
                for _ in range(count)}
    raise InvalidInput(f"unknown value type {tag} in a Yjs update")


def _read_var_int(reader: FrameReader) -> int:
    """lib0's signed varint: the first byte holds a sign bit and six bits of the value."""
    first = reader.byte()
    value = first & 0x3F
    negative = bool(first & 0x40)
    shift = 6
    byte = first
    while byte & 0x80:
        if shift > 64:
            raise InvalidInput("a varint longer than 10 bytes in a Yjs update")
        byte = reader.byte()
        value |= (byte & 0x7F) << shift
        shift += 7
    return -value if negative else value


def _read_delete_set(reader: FrameReader, budget: _Budget) -> dict[int, list[tuple[int, int]]]:
    deleted: dict[int, list[tuple[int, int]]] = {}
    for _ in range(reader.var_uint()):
        client = reader.var_uint()
        ranges = reader.var_uint()
        if ranges * 2 > reader.remaining:
            raise InvalidInput(f"{ranges} deleted ranges declared where {reader.remaining} "
                               "bytes are left")
        budget.spend(ranges)
        deleted.setdefault(client, []).extend(
            (reader.var_uint(), reader.var_uint()) for _ in range(ranges))
    return deleted
