"""Real sizes, Z-up files upright on the print bed, and offline said at once (issue 21, items
2, 3 and 7), in a real browser.

The package's shared ``orfeas up`` and browser (``conftest.py``). Screenshots go to
``test-artifacts/e2e/``.

Where things stand is read from the camera the viewport reports (``data-camera``) after
framing everything (F): its target is the centre of what is on screen, so an object that
rests on the plate (y = 0) h millimetres tall puts it at y = h / 2.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.pages import (
    CAMERA,
    XYZ_CUBE,
    Browser,
    Page,
    alice_project,
    expect,
    frame_all,
    generate,
    open_project,
    shot,
    signed_in,
    square_png,
)
from tests.integration.test_generation import disc_png
from tests.integration.test_up import Up

pytestmark = pytest.mark.slow

GENERATION_MS = 120_000
OFFLINE_SAID_MS = 4_000
"""The banner must show within 2 s of the drop; 4 s allows for a busy 2-core machine. Before,
nothing showed for y-websocket's 30 s."""


def wait_target_y(page: Page, y: float, tolerance: float = 0.5) -> None:
    page.wait_for_function(f"() => Math.abs(({CAMERA}.target || [0, NaN])[1] - {y}) < {tolerance}")


def tall_box_stl(folder: Path) -> Path:
    """10 x 20 x 40 mm, standing 40 mm tall along Z as an STL does."""
    import trimesh

    path = folder / "tower.stl"
    box = trimesh.creation.box(extents=(10.0, 20.0, 40.0))
    box.apply_translation((60.0, 60.0, 20.0))  # where a slicer left it on its bed
    box.export(path)
    return path


def test_z_up_files_stand_upright_on_the_print_bed(browser: Browser, studio: Up) -> None:
    project_id = alice_project(studio, "Print bed", bob="editor")
    context, alice = signed_in(browser, studio, "alice")
    try:
        open_project(alice, project_id, "Print bed")
        alice.get_by_role("tab", name="Generate").click()
        alice.get_by_test_id("mesh-input").set_input_files(str(XYZ_CUBE))
        cube = alice.locator(".outliner-item", has_text="20mm-xyz-cube")
        expect(cube).to_have_attribute("data-stage", "mesh", timeout=60_000)
        frame_all(alice)
        wait_target_y(alice, 10.0)  # a 20 mm cube resting on the plate, wherever the file had it
        alice.get_by_role("button", name="Flat", exact=True).click()  # the engraved letters
        expect(cube).to_have_attribute("data-stage", "mesh")
        alice.wait_for_timeout(500)  # the flat-shaded copy replaces the smooth one
        shot(alice, "21-03-xyz-cube-upright-on-the-bed")

        # a Z-up box 40 mm tall stands 40 mm tall: lying on its side it would stand 20 mm
        alice.get_by_test_id("mesh-input").set_input_files(
            str(tall_box_stl(studio.data_dir.parent)))
        tower = alice.locator(".outliner-item", has_text="tower")
        expect(tower).to_have_attribute("data-stage", "mesh", timeout=60_000)
        frame_all(alice)
        wait_target_y(alice, 20.0)
        shot(alice, "21-03b-tower-and-cube-on-the-bed")
    finally:
        context.close()


def test_generated_objects_have_a_real_size(browser: Browser, studio: Up) -> None:
    project_id = alice_project(studio, "Real sizes", bob="editor")
    context, alice = signed_in(browser, studio, "alice")
    try:
        open_project(alice, project_id, "Real sizes")
        expect(alice.get_by_label("Height (mm)")).to_have_value("50")  # the default
        generate(alice, "30", "apple", disc_png())
        frame_all(alice)
        wait_target_y(alice, 15.0)  # 30 mm tall, resting on the plate (it was 1 unit: 1 mm)
        shot(alice, "21-02-generated-30mm-on-the-bed")

        # one generated 1 mm tall: the analysis says it is too small to print
        tiny = generate(alice, "1", "tiny", square_png())
        tiny.click()
        alice.get_by_role("tab", name="Mesh").click()
        alice.get_by_role("button", name="Analyse", exact=True).click()
        fits = alice.get_by_test_id("fits-printer")
        expect(fits).to_contain_text("no: too small to print", timeout=GENERATION_MS)
        score = int(alice.get_by_test_id("print-score").inner_text())
        assert score <= 20, score
        expect(alice.locator(".recommendations")).to_contain_text("enlarge it")
        shot(alice, "21-02b-too-small-to-print")
    finally:
        context.close()


class SilentNetwork:
    """bob's scene WebSocket passes through this; `cut` stops every frame both ways without
    closing anything, as a vanished network does (no close frame, no TCP reset)."""

    def __init__(self) -> None:
        self.online = True

    def route(self, ws: Any) -> None:
        if not self.online:
            ws.close()
            return
        server = ws.connect_to_server()
        ws.on_message(lambda message: self.online and server.send(message))
        server.on_message(lambda message: self.online and ws.send(message))


def test_offline_is_said_at_once_and_presence_cleared(browser: Browser, studio: Up) -> None:
    project_id = alice_project(studio, "Offline", bob="editor")
    network = SilentNetwork()
    ctx_a, alice = signed_in(browser, studio, "alice")
    ctx_b, bob = signed_in(browser, studio, "bob")
    ctx_b.route_web_socket(re.compile(r"/ws/projects/"), network.route)
    try:
        for page in (alice, bob):
            open_project(page, project_id, "Offline")
        expect(bob.locator('.presence [data-user="alice"]')).to_be_visible()
        expect(bob.get_by_test_id("connection-banner")).to_have_count(0)

        network.online = False
        banner = bob.get_by_test_id("connection-banner")
        expect(banner).to_contain_text("Offline, your edits will be sent", timeout=OFFLINE_SAID_MS)
        expect(bob.locator('.presence [data-user="alice"]')).to_have_count(0,
                                                                           timeout=OFFLINE_SAID_MS)
        expect(bob.locator('.presence [data-user="bob"]')).to_be_visible()  # bob himself
        bob.get_by_role("tab", name="Generate").click()
        bob.get_by_test_id("mesh-input").set_input_files(str(XYZ_CUBE))  # an offline edit
        expect(bob.locator(".outliner-item", has_text="20mm-xyz-cube")).to_have_count(1)
        shot(bob, "21-07-offline-said-at-once-bob")

        network.online = True  # the next reconnection gets through and sends the edit
        expect(alice.locator(".outliner-item", has_text="20mm-xyz-cube")).to_have_count(
            1, timeout=30_000)
        expect(banner).to_have_count(0, timeout=30_000)
        expect(bob.locator('.presence [data-user="alice"]')).to_be_visible()
        frame_all(bob)
        # and it stays up: a live connection is never taken for dead (longer than SILENT_MS)
        bob.wait_for_timeout(2_500)
        expect(banner).to_have_count(0)
        expect(bob.locator('.presence [data-user="alice"]')).to_be_visible()
        shot(bob, "21-07b-back-online-bob")
    finally:
        ctx_a.close()
        ctx_b.close()
