"""A generation image is decoded in a bounded child when decoding it would cost the API
process more than its upload budget: a 36-megapixel PNG is 144 MB as RGBA."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from core.errors import InvalidInput
from core.upload_check import IN_PROCESS_PIXELS, MIB, check_generation_image
from tests.images import huge_png, png

ALLOWED_GROWTH = 64 * MIB


@contextlib.contextmanager
def peak_growth() -> Iterator[list[int]]:
    """This process's peak resident memory during the block, above where it began (Linux's
    high-water mark, reset first), as the one item of the yielded list."""
    status = Path("/proc/self/status")
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pytest.skip("this kernel cannot reset the resident-memory high-water mark")

    def kib(field: str) -> int:
        line = next(x for x in status.read_text().splitlines() if x.startswith(field))
        return int(line.split()[1]) * 1024

    result = [0]
    before = kib("VmRSS:")
    yield result
    result[0] = kib("VmHWM:") - before


def test_a_large_image_is_decoded_out_of_this_process() -> None:
    data = huge_png(6_000, 6_000)  # black: refused as blank once decoded
    with peak_growth() as growth, pytest.raises(InvalidInput, match="blank"):
        check_generation_image(io.BytesIO(data), "night.png")
    assert growth[0] < ALLOWED_GROWTH, f"grew by {growth[0] / MIB:.0f} MiB"


def _dot(width: int, height: int) -> bytes:
    image = Image.new("RGB", (width, height), (255, 255, 255))
    image.putpixel((width // 2, height // 2), (255, 0, 0))
    return png(image)


def test_large_and_small_images_are_accepted_and_measured_alike(tmp_path: Path) -> None:
    side = int(IN_PROCESS_PIXELS ** 0.5) + 10  # decoded in a child
    path = tmp_path / "dot.png"
    path.write_bytes(_dot(side, side))
    assert check_generation_image(path, "dot.png") == (side, side)
    assert check_generation_image(io.BytesIO(path.read_bytes()), "dot.png") == (side, side)
    assert check_generation_image(io.BytesIO(_dot(64, 48)), "small.png") == (64, 48)
