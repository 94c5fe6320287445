"""The scene socket's frames are read with bounded work: varints of at most 10 bytes, every
length checked against the frame before it is read, exactly one message per frame, and the
Yjs update inside read the same way (:mod:`core.scene.update_reader`)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pycrdt import Awareness, Doc, Map, write_var_uint

from core.collab import protocol
from core.errors import InvalidInput
from core.scene.lib0 import FrameReader
from core.scene.update_reader import Content, TypeRef, read_update


def _update() -> bytes:
    doc: Doc = Doc()
    doc.get("objects", type=Map)["lamp"] = Map({"name": "lamp", "visible": True})
    return doc.get_update()


def test_the_messages_a_stock_client_sends_are_read_back() -> None:
    update, doc = _update(), Doc[Any]()
    awareness = Awareness(doc)
    awareness.set_local_state({"user": {"name": "ana"}, "cursor": [1, 2]})
    assert protocol.parse(protocol.sync_step1(doc.get_state())) == \
        protocol.SyncStep1(doc.get_state())
    assert protocol.parse(protocol.sync_step2(update)) == protocol.SyncStep2(update)
    assert protocol.parse(protocol.update(update)) == protocol.SyncUpdate(update)
    presence = awareness.encode_awareness_update([awareness.client_id])
    assert protocol.parse(protocol.awareness(presence)) == protocol.Awareness(presence)
    assert protocol.parse(write_var_uint(protocol.MessageType.QUERY_AWARENESS)) == \
        protocol.QueryAwareness()
    assert protocol.parse(b"\x02\x00") is None  # y-websocket's auth message


def test_a_varint_has_at_most_ten_bytes() -> None:
    ten = write_var_uint(2**63)
    assert len(ten) == 10 and FrameReader(ten).var_uint() == 2**63
    with pytest.raises(InvalidInput, match="longer than 10 bytes"):
        FrameReader(b"\xff" * 10 + b"\x01").var_uint()


# A varint of 300,000 bytes was summed into a Python int one 7-bit group at a time (17.9 s,
# growing with the square of the length), and its value, too long to print, then broke the
# error message itself: the socket closed with 1000, not 4400.
LONG_VARINT_FRAMES = {
    "message type": b"\xff" * 300_000 + b"\x01",
    "sync type": b"\x00" + b"\xff" * 5_000 + b"\x01",
    "update length": b"\x00\x02" + b"\xff" * 5_000 + b"\x01",
    "awareness length": b"\x01" + b"\xff" * 5_000 + b"\x01",
    "awareness client": protocol.awareness(b"\x01" + b"\xff" * 5_000 + b"\x01\x00\x00"),
    "state vector": protocol.sync_step1(b"\x01" + b"\xff" * 5_000 + b"\x01\x00"),
}


@pytest.mark.parametrize("frame", list(LONG_VARINT_FRAMES.values()), ids=list(LONG_VARINT_FRAMES))
def test_frames_with_long_varints_are_refused(frame: bytes) -> None:
    with pytest.raises(InvalidInput, match="varint longer than 10 bytes") as refused:
        protocol.parse(frame)
    assert len(str(refused.value)) < 120  # a close reason can carry it


MALFORMED_FRAMES = {
    "empty": (b"", "cut off"),
    "a length past the end": (b"\x00\x02" + write_var_uint(2**40) + _update(), "are left"),
    "a length one past the end": (b"\x00\x02\x05abcd", "5 bytes where 4 are left"),
    "bytes after the message": (protocol.update(_update()) + b"\x00", "after the end"),
    "unknown message type": (write_var_uint(42) + b"\x00", "unknown message type 42"),
    "unknown sync type": (b"\x00\x07\x00", "unknown sync message type 7"),
    "state vector of more clients than bytes": (protocol.sync_step1(b"\x7f\x01"), "state vector"),
    "awareness of too many clients": (protocol.awareness(write_var_uint(10_000)), "presence"),
    "awareness state not JSON": (protocol.awareness(b"\x01\x01\x01\x03{x}"), "not JSON"),
    "awareness state nested past json's limit": (
        protocol.awareness(b"\x01\x01\x01" + write_var_uint(40_000) + b"[" * 40_000), "not JSON"),
    "awareness state not UTF-8": (protocol.awareness(b"\x01\x01\x01\x02\xff\xfe"), "UTF-8"),
}


@pytest.mark.parametrize(("frame", "why"), list(MALFORMED_FRAMES.values()),
                         ids=list(MALFORMED_FRAMES))
def test_malformed_frames_are_refused_with_a_reason(frame: bytes, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        protocol.parse(frame)


def test_an_update_is_read_item_by_item() -> None:
    doc: Doc = Doc()
    objects = doc.get("objects", type=Map)
    objects["lamp"] = Map({"name": "lamp", "transform": {"position": [0, 1.5, 2]}})
    first = read_update(doc.get_update(), max_depth=8, max_items=100)
    assert [(i.content, i.root, i.has_parent, i.key, i.type_ref) for i in first] == [
        (Content.TYPE, "objects", True, "lamp", TypeRef.MAP),
        (Content.ANY, None, True, "name", None), (Content.ANY, None, True, "transform", None)]
    assert first[2].values == ({"position": [0, 1.5, 2]},)
    state = doc.get_state()
    objects["lamp"]["name"] = "chair"  # beside the old value: the parent goes unnamed
    assert [(i.content, i.has_parent, i.key, i.values) for i in
            read_update(doc.get_update(state), max_depth=8, max_items=100)] == [
        (Content.ANY, False, None, ("chair",))]


def test_an_update_nested_too_deep_or_too_big_is_refused_while_it_is_read() -> None:
    deep: list[object] = []
    for _ in range(3_000):
        deep = [deep]
    doc: Doc = Doc()
    doc.get("objects", type=Map)["tower"] = Map({"floors": deep})
    with pytest.raises(InvalidInput, match="nested deeper"):
        read_update(doc.get_update(), max_depth=8, max_items=100)
    many: Doc = Doc()
    many.get("objects", type=Map)["crowd"] = Map({f"f{i}": i for i in range(200)})
    with pytest.raises(InvalidInput, match="more than 100 changes"):
        read_update(many.get_update(), max_depth=8, max_items=100)


@pytest.mark.parametrize("cut", [1, 5, 17, 40, -1])
def test_a_cut_off_update_is_refused(cut: int) -> None:
    with pytest.raises(InvalidInput):
        read_update(_update()[:cut], max_depth=8, max_items=1000)


def test_an_update_declaring_more_entries_than_it_holds_is_refused_before_reading() -> None:
    # one client, one struct: a plain value that is an array of 2**40 entries
    update = b"\x01\x01\x05\x00\x28\x01\x07objects\x04lamp\x01\x75" + write_var_uint(2**40)
    with pytest.raises(InvalidInput, match="entries declared"):
        read_update(update + b"\x00", max_depth=8, max_items=10**12)


def test_the_awareness_check_accepts_what_pycrdt_writes() -> None:
    doc: Doc = Doc()
    awareness = Awareness(doc)
    awareness.set_local_state({"name": "x" * 1000, "nested": json.loads("[[[1]]]")})
    frame = protocol.awareness(awareness.encode_awareness_update([awareness.client_id]))
    assert isinstance(protocol.parse(frame), protocol.Awareness)


def test_a_state_vector_is_counted_whole() -> None:
    pairs = 100_000
    vector = write_var_uint(pairs) + b"\x01\x02" * pairs
    assert protocol.parse(protocol.sync_step1(vector)) == protocol.SyncStep1(vector)
    many = Doc[Any]()
    for client in (1, 300, 2**40):
        other = Doc[Any](client_id=client)
        other.get("objects", type=Map)["o"] = Map({"name": "x"})
        many.apply_update(other.get_update())
    assert isinstance(protocol.parse(protocol.sync_step1(many.get_state())), protocol.SyncStep1)
    with pytest.raises(InvalidInput, match="holding 199999 numbers"):
        protocol.parse(protocol.sync_step1(vector[:-1]))
