"""Concurrent edits of one object, a readable timeline, honest availability and chained
operations (issue 21, items 6, 10, 11 and 12), and a viewer's reconnect without a false
"viewers cannot edit", in a real browser.

This module runs its own ``orfeas up`` (the other modules share the package's, in
``conftest.py``): its GPU worker reports its generators every second
(``ORFEAS_GENERATOR_HEARTBEAT_S=1``), so a generator drops out of the menu three seconds after
its worker stops instead of ninety. Screenshots go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.pages import (
    XYZ_CUBE,
    Browser,
    Network,
    Page,
    alice_project,
    expect,
    frame_all,
    generate,
    gpu_worker_paused,
    open_project,
    running_studio,
    shot,
    signed_in,
)
from tests.integration.test_generation import disc_png
from tests.integration.test_up import Up

pytestmark = pytest.mark.slow

HEARTBEAT_S = 1
MESH_JOB_MS = 120_000
RAW_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


@pytest.fixture(scope="module")
def history_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """This module's own studio, not the package's shared one: its GPU worker beats every
    second, a pace the shared studio's tests need not pay for."""
    with running_studio(tmp_path_factory.mktemp("e2e-history"),
                        env={"ORFEAS_GENERATOR_HEARTBEAT_S": str(HEARTBEAT_S)}) as up:
        yield up


def select(page: Page, name: str, tab: str) -> None:
    page.locator(".outliner-item", has_text=name).first.click()
    page.get_by_role("tab", name=tab).click()


def set_field(page: Page, label: str, value: str) -> None:
    page.get_by_label(label, exact=True).fill(value)
    page.get_by_label(label, exact=True).press("Enter")


def test_a_move_and_an_offline_scale_and_turn_of_one_object_all_survive(
        browser: Browser, history_studio: Up) -> None:
    """Position, rotation and scale are keys of their own: bob, offline, scales and turns the
    cube while alice moves it; once bob is back both see all three. (As one value, the last
    writer's whole transform won and one of the edits was lost without a word.)"""
    project_id = alice_project(history_studio, "Both edits", bob="editor")
    network = Network()  # Playwright's offline mode leaves open WebSockets alone: cut it too
    ctx_a, alice = signed_in(browser, history_studio, "alice")
    ctx_b, bob = signed_in(browser, history_studio, "bob")
    ctx_b.route_web_socket(re.compile(r"/ws/projects/"), network.route)
    try:
        open_project(alice, project_id, "Both edits")
        alice.get_by_role("tab", name="Generate").click()
        alice.get_by_test_id("mesh-input").set_input_files(str(XYZ_CUBE))
        cube = "20mm-xyz-cube"
        expect(alice.locator(".outliner-item", has_text=cube)).to_have_attribute(
            "data-stage", "mesh", timeout=60_000)
        open_project(bob, project_id, "Both edits")
        for page in (alice, bob):
            select(page, cube, "Properties")
        expect(bob.get_by_label("Scale X", exact=True)).to_have_value("1")
        start_x = float(alice.get_by_label("Position X", exact=True).input_value())

        ctx_b.set_offline(True)
        network.cut()
        expect(bob.get_by_test_id("connection-banner")).to_contain_text("Offline")
        set_field(bob, "Scale X", "2")
        set_field(bob, "Rotation ° Y", "30")
        set_field(alice, "Position X", f"{start_x + 40:g}")
        alice.wait_for_timeout(500)
        expect(alice.get_by_label("Scale X", exact=True)).to_have_value("1")  # still offline
        shot(bob, "21-06-offline-scale-and-turn-bob")

        ctx_b.set_offline(False)
        network.online = True  # y-websocket's next retry gets through and sends bob's edits
        expect(bob.get_by_test_id("connection-banner")).to_have_count(0, timeout=30_000)
        for page in (alice, bob):
            expect(page.get_by_label("Scale X", exact=True)).to_have_value("2", timeout=30_000)
            expect(page.get_by_label("Rotation ° Y", exact=True)).to_have_value("30")
            expect(page.get_by_label("Position X", exact=True)).to_have_value(
                f"{start_x + 40:g}")
        shot(alice, "21-06b-move-scale-and-turn-all-kept-alice")
    finally:
        ctx_a.close()
        ctx_b.close()


def test_a_viewer_coming_back_is_not_told_it_cannot_edit(
        browser: Browser, history_studio: Up) -> None:
    """carol views; her connection drops and comes back. Her client's sync answer carries the
    scene's whole delete set (alice's move overwrote a value), which changes nothing: the room
    drops it without a word. It used to answer "viewers cannot edit this project"."""
    project_id = alice_project(history_studio, "Viewer back", bob="editor", carol="viewer")
    network = Network()
    ctx_a, alice = signed_in(browser, history_studio, "alice")
    ctx_c, carol = signed_in(browser, history_studio, "carol")
    ctx_c.route_web_socket(re.compile(r"/ws/projects/"), network.route)
    try:
        open_project(alice, project_id, "Viewer back")
        alice.get_by_role("tab", name="Generate").click()
        alice.get_by_test_id("mesh-input").set_input_files(str(XYZ_CUBE))
        cube = "20mm-xyz-cube"
        expect(alice.locator(".outliner-item", has_text=cube)).to_have_attribute(
            "data-stage", "mesh", timeout=60_000)
        select(alice, cube, "Properties")
        set_field(alice, "Position X", "30")
        open_project(carol, project_id, "Viewer back")
        select(carol, cube, "Properties")
        expect(carol.get_by_label("Position X", exact=True)).to_have_value("30")

        network.cut()
        expect(carol.get_by_test_id("connection-banner")).to_contain_text("Offline")
        network.online = True
        expect(carol.get_by_test_id("connection-banner")).to_have_count(0, timeout=30_000)
        set_field(alice, "Position X", "31")  # sent to carol after her sync answer was read
        expect(carol.get_by_label("Position X", exact=True)).to_have_value("31")
        expect(carol.locator("body")).not_to_contain_text("cannot edit")
        expect(carol.get_by_role("alert")).to_have_count(0)
        shot(carol, "21-viewer-back-without-a-notice")
    finally:
        ctx_a.close()
        ctx_c.close()


def generator_option(page: Page) -> Any:
    return page.get_by_label("Generator").locator("option[value=inflate]")


def test_the_generator_menu_follows_the_workers_heartbeat(
        browser: Browser, history_studio: Up) -> None:
    """Listed as available while the GPU worker beats, for many times the freshness window;
    "(no worker)" once it has been silent past it; available again when it beats again."""
    project_id = alice_project(history_studio, "Heartbeat", bob="editor")
    context, alice = signed_in(browser, history_studio, "alice")
    try:
        open_project(alice, project_id, "Heartbeat")
        alice.get_by_role("tab", name="Generate").click()
        option = generator_option(alice)
        expect(option).to_have_text("inflate")
        alice.wait_for_timeout(4 * 3 * HEARTBEAT_S * 1000)  # four freshness windows
        alice.get_by_label("Generator").focus()  # the menu asks again before it is used
        alice.get_by_label("Generator").blur()
        alice.wait_for_timeout(500)
        expect(option).to_have_text("inflate")  # a report at start alone would have lapsed

        with gpu_worker_paused(history_studio):  # the worker stops beating
            def says_no_worker() -> bool:
                alice.get_by_label("Generator").focus()
                alice.get_by_label("Generator").blur()
                alice.wait_for_timeout(500)
                return option.inner_text() == "inflate (no worker)"

            deadline = 60
            while not says_no_worker():
                deadline -= 1
                assert deadline > 0, option.inner_text()
            expect(alice.get_by_test_id("generator-note")).to_contain_text(
                "inflate (no worker): no GPU worker has reported it for")
            shot(alice, "21-11-no-worker-once-the-heartbeat-stops")

        alice.get_by_label("Generator").focus()
        expect(option).to_have_text("inflate", timeout=30_000)
        expect(alice.get_by_test_id("generator-note")).to_have_count(0)
    finally:
        context.close()


def shown_mesh_file(page: Page) -> str:
    return page.get_by_test_id("mesh-file").inner_text()


def run_mesh_job(page: Page, button: str, before: str) -> None:
    """Press an operation's button; wait until it succeeded and the object shows its result
    (the mesh file the panel names changes)."""
    page.get_by_role("button", name=button).click()
    expect(page.get_by_test_id("mesh-job")).to_have_attribute(
        "data-phase", "succeeded", timeout=MESH_JOB_MS)
    expect(page.get_by_test_id("mesh-file")).not_to_have_text(before, timeout=MESH_JOB_MS)


def wears_a_texture(page: Page) -> bool:
    """Whether the GLB the object shows now carries a textured material (downloaded through
    the panel's GLB link, signed in as the page is)."""
    import trimesh

    href = page.get_by_role("link", name="GLB", exact=True).get_attribute("href")
    assert href, "no GLB link"
    response = page.request.get(href)
    assert response.ok, response.status
    loaded = trimesh.load(io.BytesIO(response.body()), file_type="glb")
    geometries = list(loaded.geometry.values()) if isinstance(loaded, trimesh.Scene) \
        else [loaded]
    return any(getattr(getattr(g, "visual", None), "kind", None) == "texture"
               for g in geometries)


def test_timeline_and_chained_operations_read_as_people_say_them(
        browser: Browser, history_studio: Up) -> None:
    """alice generates an apple, moves it, gives it a metal material, repairs it and optimises
    it. The result still wears the material, is named by what was done to it, and the mesh
    panel shows its figures without being asked; the timeline reads as sentences (no "bytes",
    no raw ids)."""
    project_id = alice_project(history_studio, "Chained", bob="editor")
    context, alice = signed_in(browser, history_studio, "alice")
    try:
        open_project(alice, project_id, "Chained")
        generate(alice, "30", "apple", disc_png())
        select(alice, "apple", "Properties")
        set_field(alice, "Position X", "40")

        select(alice, "apple", "Mesh")
        alice.get_by_label("Kind").select_option("metal")
        run_mesh_job(alice, "Apply material", shown_mesh_file(alice))
        assert wears_a_texture(alice)

        run_mesh_job(alice, "Repair for printing", shown_mesh_file(alice))
        expect(alice.get_by_test_id("repair-result")).to_contain_text("Material metal kept")
        stats = alice.get_by_test_id("mesh-stats")
        expect(stats).to_be_visible(timeout=MESH_JOB_MS)  # analysed by the studio, unasked

        optimised_from = shown_mesh_file(alice)
        run_mesh_job(alice, "Optimise for print", optimised_from)
        expect(alice.get_by_test_id("optimise-result")).to_contain_text("Material metal kept")
        expect(alice.get_by_test_id("mesh-file")).to_contain_text("made by optimise")
        expect(stats).to_be_visible(timeout=MESH_JOB_MS)
        expect(alice.get_by_test_id("print-score")).to_have_text(re.compile(r"^\d+$"))
        assert wears_a_texture(alice)
        # the object keeps its name; the file it shows says what was done to it
        expect(alice.locator(".mesh-panel .object-title")).to_have_text("apple")
        expect(alice.get_by_test_id("mesh-file")).to_contain_text(
            re.compile(r"^apple \([a-z, ]*repaired, optimised\)\.glb"))
        assert not RAW_ID.search(shown_mesh_file(alice)), shown_mesh_file(alice)
        expect(alice.locator(".outliner-item", has_text="apple")).not_to_contain_text(
            "loading", timeout=60_000)
        frame_all(alice)
        alice.locator(".outliner-item", has_text="apple").click()
        alice.wait_for_timeout(500)  # the camera's framing animation
        shot(alice, "21-12-material-kept-through-repair-and-optimise")

        alice.get_by_role("tab", name="History").click()
        timeline = alice.locator(".timeline")
        expect(timeline).to_contain_text("alice generated apple (final)", timeout=30_000)
        expect(timeline).to_contain_text("alice moved apple")
        expect(timeline).to_contain_text(
            re.compile(r"[Rr]epair of apple[^:\n]*: score \d+ → \d+"), timeout=30_000)
        text = timeline.inner_text()
        assert "bytes" not in text and not RAW_ID.search(text), text
        shot(alice, "21-10-readable-timeline")
    except BaseException:
        print(history_studio.output[-20_000:])  # the workers' side of the story
        raise
    finally:
        context.close()

