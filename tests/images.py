"""Images that generation must refuse, built small: a 100-megapixel PNG is 12 kB when it is
one bit deep and all one colour, so the tests can send one without holding its pixels."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def huge_png(width: int, height: int) -> bytes:
    """A valid black PNG of ``width`` x ``height`` one-bit pixels, compressed row by row."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    compressor = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)  # filter byte, then the packed pixels
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
            + chunk(b"IEND", b""))


def transparent_png(size: int = 64) -> bytes:
    return png(Image.new("RGBA", (size, size), (255, 0, 0, 0)))


def blank_png(size: int = 64) -> bytes:
    return png(Image.new("RGB", (size, size), (250, 250, 250)))
