"""What keeps an upload's check cheap for the API process: a generation image is decoded in a
bounded child when decoding it would cost more than the upload budget (a 36-megapixel PNG is
144 MB as RGBA), a mesh that places one geometry thousands of times is refused by its count
before the placed copies are built, and one uploader's checks wait for each other rather than
for everyone's."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import trimesh
from PIL import Image

from core.errors import InvalidInput, TooLarge
from core.meshio import check_mesh
from core.upload_check import IN_PROCESS_PIXELS, MIB, UploadChecker, check_generation_image
from tests.images import huge_png, png
from tests.stl import binary_stl

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


def test_a_mesh_placed_thousands_of_times_is_refused_before_it_is_built() -> None:
    """A 0.5 MB GLB whose 1,280-face sphere sits on 4,000 nodes is 5.1M faces once placed:
    building them first took ~670 MB before the face limit applied."""
    sphere = trimesh.creation.icosphere(subdivisions=3)
    scene = trimesh.Scene()
    scene.add_geometry(sphere, geom_name="ball", node_name="n0")
    for i in range(1, 4_000):
        scene.graph.update(frame_to=f"n{i}", frame_from=scene.graph.base_frame,
                           geometry="ball",
                           matrix=trimesh.transformations.translation_matrix([i, 0, 0]))
    glb = scene.export(file_type="glb")
    with peak_growth() as growth, pytest.raises(TooLarge, match="5120000 faces once"):
        check_mesh(glb, file_type="glb", name="balls.glb")
    assert growth[0] < ALLOWED_GROWTH, f"grew by {growth[0] / MIB:.0f} MiB"


def test_one_uploaders_checks_take_turns_and_leave_room_for_others(tmp_path: Path) -> None:
    """Two checks may run at once. Uploader a sends two 20 MiB STLs, then b a small box: b's
    check runs beside a's first and ends first. Had a's two checks taken both places, b's
    would have waited for one of them."""
    heavy = []
    for seed in range(2):
        heavy.append(tmp_path / f"heavy{seed}.stl")
        heavy[-1].write_bytes(binary_stl(20 * MIB // 50, seed))
    small = tmp_path / "box.stl"
    small.write_bytes(trimesh.creation.box().export(file_type="stl"))
    finished: list[str] = []

    async def check(checker: UploadChecker, path: Path, uploader: str) -> None:
        info = await checker.sniff(path, path.name, uploader=uploader)
        assert info.kind == "mesh"
        finished.append(f"{uploader}:{path.name}")

    async def main() -> None:
        checker = UploadChecker()
        assert checker.limits.at_once == 2
        await check(checker, small, "warm-up")  # the fork server starts once, before
        finished.clear()
        first = [asyncio.create_task(check(checker, path, "a")) for path in heavy]
        await asyncio.sleep(0)  # a's first holds its turn and a place; its second waits
        await asyncio.gather(*first, check(checker, small, "b"))

    asyncio.run(main())
    assert finished == ["b:box.stl", "a:heavy0.stl", "a:heavy1.stl"]
