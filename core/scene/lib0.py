"""Reading lib0-encoded values (Yjs's binary encoding) with bounded work, for the socket's
frames (``core.collab.protocol``) and the updates inside them (:mod:`core.scene.update_reader`).

pycrdt's ``Decoder`` adds each 7-bit group of a varint into a Python int shifted ever further,
so a frame of 300,000 ``0xff`` bytes took 17.9 s (each step copies a longer int: the square of
the length), and it reads lengths past the end of the frame. Here a varint has at most 10 bytes
(64 bits; lib0 writes 53 at most), every length is checked against what is left before it is
read, and the work is one pass.
"""

from __future__ import annotations

from core.errors import InvalidInput

MAX_VARINT_BYTES = 10  # 64 bits; lib0 writes at most 8 (53-bit integers)


class FrameReader:
    """Reads lib0-encoded values from one frame; any malformation raises
    :class:`InvalidInput` after a bounded amount of work."""

    __slots__ = ("_at", "_data")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._at

    def var_uint(self) -> int:
        data, at = self._data, self._at
        if at < len(data) and data[at] < 0x80:  # one byte: most of what a frame holds
            self._at = at + 1
            return data[at]
        value = shift = 0
        for index in range(at, min(at + MAX_VARINT_BYTES, len(data))):
            byte = data[index]
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                self._at = index + 1
                return value
            shift += 7
        if len(data) - at >= MAX_VARINT_BYTES:
            raise InvalidInput(f"a varint longer than {MAX_VARINT_BYTES} bytes at byte {at}")
        raise InvalidInput(f"a varint cut off by the end of the frame at byte {at}")

    def byte(self) -> int:
        if self._at >= len(self._data):
            raise InvalidInput("the frame ends where a byte was expected")
        self._at += 1
        return self._data[self._at - 1]

    def take(self, length: int) -> bytes:
        """The next ``length`` bytes, refused before reading if the frame has fewer."""
        at = self._at
        end = at + length
        if end > len(self._data):
            raise InvalidInput(f"a length of {length} bytes where {self.remaining} are left")
        self._at = end
        return self._data[at:end]

    def var_bytes(self) -> bytes:
        return self.take(self.var_uint())

    def var_string(self) -> str:
        raw = self.var_bytes()
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise InvalidInput("a string that is not UTF-8") from None

    def end(self) -> None:
        if self.remaining:
            raise InvalidInput(f"{self.remaining} bytes after the end of the message")
