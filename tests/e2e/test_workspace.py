"""The web workspace in a real browser: two people in one project, end to end.

The package's shared ``orfeas up`` (``conftest.py``: real PostgreSQL, NATS, S3, API, workers)
serves the built workspace (``frontend/dist``) at ``/``. Debian's Chromium, driven
by Playwright, opens two browser contexts signed in as two users. One generates an object from
an image and both see it arrive; one moves it and the other sees it move and sees who is there;
the history slider shows an older state; undo takes the move back. Screenshots of the key
screens go to ``test-artifacts/e2e/``.

The first generation from ``disc_png`` at the panel's defaults must be the studio's first (a
cache hit shows no coarser stage): other modules generate from it only at other sizes.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
from typing import Any

import httpx
import pytest
from PIL import Image, ImageChops, ImageDraw

from tests.e2e.pages import (
    GENERATION_S,
    USERS,
    Browser,
    Network,
    Page,
    api_client,
    camera_of,
    expect,
    gpu_worker_paused,
    new_project,
    open_project,
    open_sphere_stl,
    shot,
    sign_in,
    signed_in,
    square_png,
)
from tests.integration.helpers import poll
from tests.integration.test_generation import disc_png
from tests.integration.test_up import Up, token_for

pytestmark = pytest.mark.slow


# Records each stage the viewport shows for an object, as the outliner reports it.
RECORD_STAGES = """() => {
  window.stagesShown = []
  new MutationObserver(() => {
    for (const el of document.querySelectorAll('.outliner-item')) {
      const stage = el.dataset.stage
      const seen = window.stagesShown
      if (stage && seen[seen.length - 1] !== stage) seen.push(stage)
    }
  }).observe(document.body, { subtree: true, childList: true, attributes: true,
                              attributeFilter: ['data-stage'] })
}"""


def eye_distance(camera: dict[str, Any]) -> float:
    """How far the camera's eye is from the world's origin."""
    a, b, r = camera["alpha"], camera["beta"], camera["radius"]
    tx, ty, tz = camera["target"]
    eye = (tx + r * math.cos(a) * math.sin(b), ty + r * math.cos(b),
           tz + r * math.sin(a) * math.sin(b))
    return math.sqrt(sum(x * x for x in eye))


def screen_point(box: dict[str, float], world: tuple[float, float, float],
                 camera: dict[str, Any] | None = None) -> tuple[float, float]:
    """Where a world point appears in the viewport with ``camera`` (alpha, beta, radius,
    target of the ArcRotateCamera, as ``camera_of`` reads it), by default the workspace's
    initial one (alpha=pi/4, beta=pi/3, radius 6 at the origin); vertical fov 0.8,
    right-handed, Y up."""
    view = camera or {"alpha": math.pi / 4, "beta": math.pi / 3, "radius": 6.0,
                      "target": [0.0, 0.0, 0.0]}
    alpha, beta, radius, fov = view["alpha"], view["beta"], view["radius"], 0.8
    tx, ty, tz = view["target"]
    eye = (tx + radius * math.cos(alpha) * math.sin(beta), ty + radius * math.cos(beta),
           tz + radius * math.sin(alpha) * math.sin(beta))

    def unit(v: tuple[float, float, float]) -> tuple[float, float, float]:
        n = math.sqrt(sum(x * x for x in v))
        return (v[0] / n, v[1] / n, v[2] / n)

    def cross(a: tuple[float, float, float], b: tuple[float, float, float]
              ) -> tuple[float, float, float]:
        return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])

    def dot(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    forward = unit((tx - eye[0], ty - eye[1], tz - eye[2]))
    right = unit(cross(forward, (0.0, 1.0, 0.0)))
    up = cross(right, forward)
    d = (world[0] - eye[0], world[1] - eye[1], world[2] - eye[2])
    depth, tan = dot(d, forward), math.tan(fov / 2)
    w, h = box["width"], box["height"]
    x = dot(d, right) / (depth * tan * w / h)
    y = dot(d, up) / (depth * tan)
    return box["x"] + (x + 1) / 2 * w, box["y"] + (1 - y) / 2 * h


def test_sign_in_is_refused_with_a_readable_message(browser: Browser, studio: Up) -> None:
    context, page = sign_in(browser, studio, "alice", "not the password")
    expect(page.get_by_role("alert")).to_contain_text("wrong username or password")
    shot(page, "00-sign-in-refused")
    context.close()


def test_two_people_generate_move_travel_and_undo(browser: Browser, studio: Up) -> None:
    ctx_a, alice = signed_in(browser, studio, "alice")
    ctx_b, bob = signed_in(browser, studio, "bob")
    try:
        # -- the project list: create, rename, invite --------------------------------------
        alice.get_by_placeholder("New project name").fill("Lamp")
        alice.get_by_role("button", name="Create project").click()
        row = alice.locator(".project-row").first  # the form replaces the name while renaming
        expect(row).to_contain_text("Lamp")
        row.get_by_role("button", name="Rename").click()
        row.get_by_label("Project name").fill("Desk lamp")
        row.get_by_role("button", name="Save").click()
        expect(alice.get_by_role("link", name="Desk lamp")).to_be_visible()
        row = alice.locator(".project-row", has_text="Desk lamp")
        row.get_by_role("button", name="Invite").click()
        row.get_by_label("User name or email").fill("bob")
        row.get_by_label("Role").select_option("editor")
        row.get_by_role("button", name="Invite", exact=True).last.click()
        expect(row.get_by_role("status")).to_contain_text("bob now has the editor role")
        shot(alice, "00-projects")

        # -- both open the workspace and see each other ------------------------------------
        alice.get_by_role("link", name="Desk lamp").click()
        expect(alice.get_by_test_id("project-title")).to_have_text("Desk lamp")
        bob.reload()
        bob.get_by_role("link", name="Desk lamp").click()
        expect(bob.get_by_test_id("project-title")).to_have_text("Desk lamp")
        expect(alice.locator('.presence [data-user="bob"]')).to_be_visible()
        expect(bob.locator('.presence [data-user="alice"]')).to_be_visible()
        expect(alice.get_by_test_id("connection-banner")).to_have_count(0)

        # -- bob follows alice's view (her camera is shared by awareness); his own orbit
        # -- takes the camera back ---------------------------------------------------------
        follow = bob.get_by_role("button", name="alice")
        expect(follow).to_be_enabled()  # enabled once her camera has arrived
        follow.click()
        expect(follow).to_have_attribute("aria-pressed", "true")
        box = bob.get_by_test_id("viewport").bounding_box()
        assert box is not None
        bob.mouse.move(box["x"] + 40, box["y"] + 40)
        bob.mouse.down()
        bob.mouse.move(box["x"] + 90, box["y"] + 60, steps=4)
        bob.mouse.up()
        expect(follow).to_have_attribute("aria-pressed", "false")

        # -- alice generates from an image; both see the object, preview then final --------
        for page in (alice, bob):
            page.evaluate(RECORD_STAGES)
        image = studio.data_dir.parent / "disc.png"
        image.write_bytes(disc_png())
        alice.get_by_test_id("image-input").set_input_files(str(image))
        progress = alice.get_by_test_id("job-progress")
        for page in (alice, bob):
            expect(page.locator(".outliner-item")).to_have_count(1, timeout=GENERATION_S * 1000)
        expect(alice.locator(".outliner-item")).to_have_attribute(
            "data-stage", re.compile("preview|medium|final"), timeout=GENERATION_S * 1000)
        shot(alice, "01-generating-alice")
        expect(progress).to_have_attribute("data-phase", "final", timeout=GENERATION_S * 1000)
        for page in (alice, bob):
            expect(page.locator(".outliner-item")).to_have_attribute(
                "data-stage", "final", timeout=60_000)
        for page in (alice, bob):  # progressive: a coarser stage was on screen before final
            shown = page.evaluate("window.stagesShown")
            assert shown[-1] == "final" and len(shown) >= 2, shown
            assert shown == [s for s in ("preview", "medium", "final") if s in shown], shown
        shot(alice, "02-generated-alice")
        shot(bob, "03-generated-bob")
        alice.get_by_role("tab", name="History").click()
        alice.get_by_placeholder("Name this version").fill("as generated")
        alice.get_by_role("button", name="Save version").click()
        expect(alice.locator(".versions")).to_contain_text("as generated")

        # -- alice turns and moves it (numeric fields write the Y.Map); bob sees it ---------
        alice.locator(".outliner-item").click()
        alice.get_by_role("tab", name="Properties").click()
        bob.locator(".outliner-item").click()
        bob.get_by_role("tab", name="Properties").click()
        expect(bob.get_by_label("Position X")).to_have_value("0")
        alice.get_by_label("Rotation ° Y").fill("45")
        alice.get_by_label("Rotation ° Y").press("Enter")
        expect(bob.get_by_label("Rotation ° Y")).to_have_value("45")
        alice.get_by_label("Position X").fill("2")
        alice.get_by_label("Position X").press("Enter")
        expect(bob.get_by_label("Position X")).to_have_value("2")
        # bob sees alice online and her colour on the object she selected
        expect(bob.locator('.presence [data-user="alice"]')).to_be_visible()
        expect(bob.locator(".outliner-item")).to_have_attribute("style", re.compile("inset"))
        shot(bob, "04-moved-seen-by-bob")

        # -- alice scrubs the history slider back to the empty scene -----------------------
        alice.get_by_role("tab", name="History").click()
        slider = alice.get_by_test_id("history-slider")
        expect(slider).to_be_enabled()
        slider.focus()
        alice.keyboard.press("Home")
        expect(alice.get_by_test_id("time-travel-banner")).to_be_visible()
        expect(alice.locator(".outliner-item")).to_have_count(0)
        shot(alice, "05-time-travel-start")
        alice.keyboard.press("End")
        expect(alice.get_by_test_id("time-travel-banner")).to_have_count(0)
        expect(alice.locator(".outliner-item")).to_have_count(1)

        # -- undo takes alice's last change (the move) back, for bob too; redo restores it --
        # (the transform is one value in the Y.Map, so each undo reverts one whole transform)
        alice.evaluate("document.activeElement && document.activeElement.blur()")
        alice.keyboard.press("Control+z")
        expect(bob.get_by_label("Position X")).to_have_value("0")
        expect(bob.get_by_label("Rotation ° Y")).to_have_value("45")
        shot(bob, "06-after-undo-bob")
        alice.keyboard.press("Control+Shift+z")
        expect(bob.get_by_label("Position X")).to_have_value("2")

        # -- revert to the version saved after generation ------------------------------------
        alice.get_by_role("tab", name="History").click()
        version = alice.locator(".versions li", has_text="as generated")
        # compared with that version, the object has moved: it is outlined as changed
        version.get_by_role("button", name="Compare").click()
        expect(alice.get_by_test_id("comparison")).to_contain_text("0 added")
        expect(alice.get_by_test_id("comparison")).to_contain_text("1 changed")
        shot(alice, "06b-compare-with-version-alice")
        alice.get_by_role("button", name="Clear comparison").click()
        version.get_by_role("button", name="Revert").click()
        expect(bob.get_by_label("Position X")).to_have_value("0")
        expect(bob.get_by_label("Rotation ° Y")).to_have_value("0")
        expect(alice.locator(".timeline")).to_contain_text("revert", ignore_case=True)
        shot(alice, "07-history-after-revert-alice")

        # -- alice drags the move gizmo's X arrow: bob sees the drag live, then the result ----
        alice.get_by_role("tab", name="Properties").click()
        box = alice.get_by_test_id("viewport").bounding_box()
        assert box is not None
        camera = camera_of(alice)  # framed on the object when time travel came back
        # the gizmo keeps its size on screen: its X arrow reaches about 0.6 units at 6 away
        reach = 0.6 * eye_distance(camera) / 6.0
        start = screen_point(box, (reach, 0.0, 0.0), camera)  # on the X arrow at 0,0,0
        end = screen_point(box, (reach + 1.0, 0.0, 0.0), camera)
        halfway = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        alice.mouse.move(*start)
        alice.mouse.down()
        alice.mouse.move(*halfway, steps=8)
        # bob sees the drag while it happens (awareness), before anything is stored
        expect(bob.get_by_label("Position X")).to_have_value(re.compile(r"^0\.[2-8]"))
        shot(bob, "08-gizmo-drag-live-bob")
        alice.mouse.move(*end, steps=8)
        alice.mouse.up()
        expect(bob.get_by_label("Position X")).to_have_value(re.compile(r"^(0\.[6-9]|1(\.|$))"))
        assert alice.get_by_label("Position Y").input_value() == "0"
        alice.evaluate("document.activeElement && document.activeElement.blur()")
        alice.keyboard.press("Control+z")  # one undo takes back the whole drag
        expect(bob.get_by_label("Position X")).to_have_value("0")

        # -- a second generation, cancelled while it waits ---------------------------------
        alice.get_by_role("tab", name="Generate").click()
        square = studio.data_dir.parent / "square.png"
        square.write_bytes(square_png())
        with gpu_worker_paused(studio):
            alice.get_by_test_id("image-input").set_input_files(str(square))
            expect(progress).to_have_attribute("data-phase", "queued")
            alice.get_by_role("button", name="Cancel").click()
            expect(progress).to_have_attribute("data-phase", "cancelled", timeout=60_000)
        expect(alice.get_by_role("button", name="Cancel")).to_have_count(0)
        expect(progress).to_have_attribute("data-phase", "cancelled")  # the worker skips it

        # -- the help dialog -----------------------------------------------------------------
        alice.keyboard.press("?")
        expect(alice.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
        shot(alice, "09-help")
        alice.keyboard.press("Escape")
    finally:
        ctx_a.close()
        ctx_b.close()


def project_with_object(studio: Up, name: str) -> str:
    """A project of alice's with bob as editor and one generated object (through the API)."""
    with api_client(studio, "alice", timeout=GENERATION_S) as http:
        project_id = new_project(http, name, bob="editor", carol="viewer")
        with http.stream("POST", f"/api/v1/projects/{project_id}/generate-progressive",
                         files={"image": ("disc.png", disc_png(), "image/png")}) as stream:
            assert stream.status_code == 200, stream.read()
            events = [line for line in stream.iter_lines() if line]
        assert '"final"' in events[-2] and '"succeeded"' in events[-1], events
    return project_id


def test_connection_lost_banner_and_offline_edits(browser: Browser, studio: Up) -> None:
    project_id = project_with_object(studio, "Offline edits")
    network = Network()
    ctx_a, alice = signed_in(browser, studio, "alice")
    ctx_b, bob = signed_in(browser, studio, "bob")
    ctx_b.route_web_socket(re.compile(r"/ws/projects/"), network.route)
    try:
        for page in (alice, bob):
            open_project(page, project_id, "Offline edits")
            page.locator(".outliner-item").click()
            page.get_by_role("tab", name="Properties").click()
            expect(page.get_by_label("Position Y")).to_have_value("0")
        expect(bob.get_by_test_id("connection-banner")).to_have_count(0)

        network.cut()
        banner = bob.get_by_test_id("connection-banner")
        expect(banner).to_contain_text("Offline")
        bob.get_by_label("Position Y").fill("1.5")
        bob.get_by_label("Position Y").press("Enter")
        expect(banner).to_contain_text("will be sent when the connection is back")
        shot(bob, "10-offline-bob")
        alice.wait_for_timeout(1000)
        expect(alice.get_by_label("Position Y")).to_have_value("0")

        network.online = True  # y-websocket's next retry gets through and sends the edit
        expect(alice.get_by_label("Position Y")).to_have_value("1.5", timeout=30_000)
        expect(banner).to_have_count(0)
        expect(alice.locator('.presence [data-user="bob"]')).to_be_visible()  # bob is back
        shot(alice, "11-offline-edit-arrived-alice")

        # -- a viewer sees the scene and the edit, and can change nothing --------------------
        ctx_c, carol = signed_in(browser, studio, "carol")
        carol.goto(f"/projects/{project_id}")
        expect(carol.locator(".header-middle .role")).to_have_text("viewer")
        carol.locator(".outliner-item").click()
        carol.get_by_role("tab", name="Properties").click()
        expect(carol.get_by_label("Position Y")).to_have_value("1.5")
        expect(carol.get_by_label("Position Y")).to_be_disabled()
        expect(carol.get_by_role("button", name="Undo")).to_be_disabled()
        carol.get_by_role("tab", name="Generate").click()
        expect(carol.get_by_role("button", name="Choose an image…")).to_be_disabled()
        expect(alice.locator('.presence [data-user="carol"]')).to_be_visible()
        expect(carol.locator('.presence [data-user="bob"]')).to_be_visible()
        shot(carol, "12-viewer-carol")
        ctx_c.close()
    finally:
        ctx_a.close()
        ctx_b.close()


def test_import_analyse_repair_and_export_a_mesh(browser: Browser, studio: Up) -> None:
    context, carol = signed_in(browser, studio, "carol")
    try:
        carol.get_by_placeholder("New project name").fill("Bracket")
        carol.get_by_role("button", name="Create project").click()
        carol.get_by_role("link", name="Bracket").click()
        expect(carol.get_by_test_id("project-title")).to_have_text("Bracket")

        # -- import a broken mesh: it is placed in the scene and selected -------------------
        carol.get_by_role("tab", name="Generate").click()
        stl = open_sphere_stl(studio.data_dir.parent / "open-sphere.stl")
        carol.get_by_test_id("mesh-input").set_input_files(str(stl))
        item = carol.locator(".outliner-item", has_text="open-sphere")
        expect(item).to_have_count(1)
        expect(item).to_have_attribute("data-stage", "mesh", timeout=60_000)  # on screen

        # -- analyse it: open, with holes; then the printability and a heat map -------------
        carol.get_by_role("tab", name="Mesh").click()
        expect(carol.get_by_test_id("mesh-file")).to_contain_text("open-sphere.stl · mm")
        carol.get_by_role("button", name="Analyse", exact=True).click()
        stats = carol.get_by_test_id("mesh-stats")
        try:
            expect(stats).to_contain_text("Watertight", timeout=120_000)
        except AssertionError:
            shot(carol, "failed-mesh-analysis")
            raise
        expect(stats).to_contain_text("no")
        expect(carol.get_by_test_id("print-score")).to_have_text(re.compile(r"^\d+$"))
        carol.get_by_label("Heat map").select_option("overhang")
        expect(carol.get_by_role("alert")).to_have_count(0)
        shot(carol, "10-mesh-analysis-heat-map")
        carol.get_by_label("Heat map").select_option("none")

        # -- one-click repair: the object now shows the repaired mesh, analysed again -------
        carol.get_by_role("button", name="Repair for printing").click()
        try:
            expect(carol.get_by_test_id("mesh-job")).to_have_attribute(
                "data-phase", "succeeded", timeout=120_000)
        except AssertionError:
            shot(carol, "failed-mesh-repair")
            raise
        expect(carol.get_by_test_id("repair-result")).to_contain_text("holes filled")
        expect(carol.get_by_test_id("mesh-file")).to_contain_text("open-sphere (repaired).glb")
        # the studio analyses a job's new mesh by itself; asking again is allowed either way
        carol.get_by_role("button", name=re.compile(r"^Analyse( again)?$")).click()
        expect(stats).to_contain_text("Watertight", timeout=120_000)
        expect(stats.locator("dd").nth(2)).to_have_text("yes")
        shot(carol, "11-mesh-repaired")

        # -- a material preview: drawn at once on the object, gone when turned off ---------
        carol.wait_for_timeout(500)  # let the view settle after the analysis
        before = canvas_image(carol)
        carol.get_by_label("Kind").select_option("metal")
        carol.get_by_label("Colour").fill("#2050ff")
        preview = carol.get_by_role("button", name="Preview")
        preview.click()
        expect(preview).to_have_attribute("aria-pressed", "true")
        carol.wait_for_timeout(800)
        previewed = differing_pixels(before, canvas_image(carol))
        shot(carol, "11b-material-preview")
        preview.click()
        carol.wait_for_timeout(800)
        after = differing_pixels(before, canvas_image(carol))
        assert previewed > 0.01, f"the preview changed {previewed:.2%} of the view"
        assert after < 0.002, f"{after:.2%} of the view still differs after the preview"

        # -- export as STL: a closed mesh comes down -----------------------------------------
        with carol.expect_download() as download:
            carol.get_by_role("link", name="STL").click()
        saved = studio.data_dir.parent / "repaired.stl"
        download.value.save_as(saved)
        from core.meshio import load_mesh

        assert load_mesh(saved, file_type="stl").is_watertight

        # -- flat shading and a duplicate that shows the same mesh ---------------------------
        carol.get_by_role("button", name="Flat").click()
        expect(carol.get_by_role("button", name="Flat")).to_have_attribute("aria-pressed", "true")
        carol.get_by_role("button", name="Duplicate").click()
        # a copy takes the next free number (issue 21: never "copy copy copy")
        expect(carol.locator(".outliner-item", has_text="open-sphere 2")).to_have_count(1)
        expect(carol.locator(".outliner-item", has_text="open-sphere 2")).to_have_attribute(
            "data-stage", "mesh", timeout=60_000)
        shot(carol, "12-flat-and-duplicate")
    except BaseException:
        print(studio.output[-30_000:])  # the workers' side of the story
        raise
    finally:
        context.close()


# Bytes a stage's GLB may take per face as the viewport downloads it (EXT_meshopt_compression),
# plus a fixed allowance for the glTF header, JSON and material. Unpacked, a generated stage
# (float32 positions, RGBA8 colours, uint32 indices) is 20 bytes per face on a closed mesh
# (V ≈ F/2); packed, 7.1 to 7.5 were measured.
STAGE_BYTES_PER_FACE = 9
STAGE_BYTES_FIXED = 8_192


def render_stats(page: Page) -> dict[str, float]:
    """The viewport's statistics overlay, as numbers."""
    stats = page.get_by_test_id("render-stats")
    names = ("objects", "instanced", "draw-calls", "triangles", "render-ms", "interval-ms")
    values = {n: stats.get_attribute(f"data-{n}") for n in names}
    return {n: float(v) if v is not None else math.nan for n, v in values.items()}


def wait_stats(page: Page, objects: int, instanced: int,
               timeout_s: float = 120) -> dict[str, float]:
    """The statistics once `objects` are on screen, `instanced` of them as thin instances, and
    two readings a beat apart agree (every mesh drawn)."""
    stats = page.get_by_test_id("render-stats")
    expect(stats).to_have_attribute("data-objects", str(objects), timeout=timeout_s * 1000)
    expect(stats).to_have_attribute("data-instanced", str(instanced), timeout=timeout_s * 1000)
    last = render_stats(page)
    for _ in range(40):
        page.wait_for_timeout(600)
        now = render_stats(page)
        if now["draw-calls"] == last["draw-calls"] and now["triangles"] == last["triangles"]:
            return now
        last = now
    raise AssertionError(f"render statistics did not settle: {last}")


def blob_png() -> bytes:
    """An image no other test generates from, so that its job is fresh (no cache hit) and
    the page sees every stage."""
    image = Image.new("RGB", (240, 200), "white")
    ImageDraw.Draw(image).polygon([(30, 170), (120, 25), (210, 170)], fill=(200, 80, 40))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def canvas_image(page: Page) -> Image.Image:
    """What the viewport's canvas holds (it keeps its drawing buffer), without the overlays."""
    data = page.get_by_test_id("viewport").evaluate("c => c.toDataURL('image/png')")
    return Image.open(io.BytesIO(base64.b64decode(data.split(",", 1)[1]))).convert("RGB")


def differing_pixels(a: Image.Image, b: Image.Image, tolerance: int = 16) -> float:
    """The fraction of pixels where some channel differs by more than `tolerance`."""
    assert a.size == b.size, (a.size, b.size)
    difference = ImageChops.difference(a, b).convert("L").point(
        lambda v: 255 if v > tolerance else 0)
    histogram = difference.histogram()
    return histogram[255] / (a.size[0] * a.size[1])


def grid_copies(fields: dict[str, Any], start: int, count: int,
                columns: int) -> dict[str, dict[str, Any]]:
    """`count` objects showing one mesh asset, laid out on a grid: duplicates."""
    copies: dict[str, dict[str, Any]] = {}
    for i in range(start, start + count):
        row, column = divmod(i, columns)
        copies[f"copy-{i:04d}"] = {**fields, "name": f"copy {i:04d}",
                                   "position": [1.0 * column, 0.0, 1.0 * row],
                                   "rotation": [0.0, 0.0, 0.0, 1.0], "scale": [1.0, 1.0, 1.0]}
    return copies


def test_rendering_budget_thin_instances_and_stage_downloads(browser: Browser, studio: Up) -> None:
    """Draw calls stay flat from 100 to 1,000 duplicates (thin instances), triangles grow
    exactly with the count, duplicates download nothing more, and each stage's GLB stays
    within its byte budget."""
    import trimesh

    from tests.yjs_clients import YjsPeers  # fails with a clear error where node is missing

    token = token_for(studio.url, "alice", USERS["alice"])
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=studio.url, timeout=GENERATION_S, headers=headers) as http:
        project_id = new_project(http, "Budget")

    ctx, alice = signed_in(browser, studio, "alice")
    downloads: dict[str, int] = {}
    fetched: list[str] = []

    def on_response(response: Any) -> None:
        match = re.search(r"/api/v1/jobs/[^/]+/stages/([a-z]+)\.glb", response.url)
        if match and response.ok:
            fetched.append(match.group(1))
            downloads[match.group(1)] = len(response.body())

    alice.on("response", on_response)
    try:
        open_project(alice, project_id, "Budget")
        alice.get_by_role("button", name="Stats").click()
        expect(alice.get_by_test_id("render-stats")).to_have_attribute("data-objects", "0")

        # -- a generation streams its stages into the open page ---------------------------
        with httpx.Client(base_url=studio.url, timeout=GENERATION_S, headers=headers) as http:
            with http.stream("POST", f"/api/v1/projects/{project_id}/generate-progressive",
                             files={"image": ("blob.png", blob_png(), "image/png")}) as stream:
                assert stream.status_code == 200, stream.read()
                events = [json.loads(line) for line in stream.iter_lines() if line]
            assert events[-1]["event"] == "succeeded", events[-3:]
            assert "preview" in {e["event"] for e in events}, "a cache hit: use a fresh image"
            job_id = events[0]["job_id"]
            # the job's read model may trail the stream's last event on a busy machine
            job = poll(lambda: http.get(f"/api/v1/jobs/{job_id}").json(),
                       lambda j: "final" in j["stages"])
        faces = {name: stage["stats"]["faces"] for name, stage in job["stages"].items()}
        expect(alice.locator(".outliner-item")).to_have_attribute("data-stage", "final",
                                                                  timeout=GENERATION_S * 1000)
        one = wait_stats(alice, objects=1, instanced=1)
        assert one["triangles"] == faces["final"], (one, faces)
        assert fetched.count("final") == 1, fetched
        with httpx.Client(base_url=studio.url, timeout=60, headers=headers) as http:
            plain = {stage: len(http.get(f"/api/v1/jobs/{job_id}/stages/{stage}.glb").content)
                     for stage in downloads}
        print(f"stage downloads, bytes: {downloads}; unpacked: {plain}; faces: {faces}")
        for stage, size in downloads.items():
            budget = STAGE_BYTES_PER_FACE * faces[stage] + STAGE_BYTES_FIXED
            assert size <= budget, f"{stage}: {size} bytes for {faces[stage]} faces > {budget}"
            assert size < plain[stage] / 2, f"{stage}: {size} bytes packed, {plain[stage]} not"
        shown = [s for s in ("preview", "medium", "final") if s in downloads]
        sizes = [downloads[s] for s in shown]
        assert sizes == sorted(sizes), f"finer stages should weigh more: {downloads}"

        # -- 1, 100, then 1,000 copies of a small uploaded mesh -----------------------------
        sphere = io.BytesIO()
        trimesh.creation.icosphere(subdivisions=1, radius=0.4).export(sphere, file_type="stl")
        with httpx.Client(base_url=studio.url, timeout=60, headers=headers) as http:
            uploaded = http.post(f"/api/v1/projects/{project_id}/assets",
                                 params={"filename": "ball.stl"}, content=sphere.getvalue())
            assert uploaded.status_code == 201, uploaded.text
        asset = uploaded.json()
        ball = {"asset": asset["id"], "blob": asset["blob_key"], "material": {}, "style": "",
                "visible": True, "locked": False, "created_by": "alice"}
        exports: list[str] = []
        alice.on("response", lambda r: exports.append(r.url) if "/export" in r.url else None)
        with YjsPeers(timeout=60) as peers:
            peers.connect("bulk", studio.url.replace("http", "ws", 1) + "/ws/projects",
                          project_id, token=token, wait=True)
            generated = peers.state("bulk")["objects"]
            assert list(generated) == [job_id]

            # level of detail: far away, copies of the generated object show its preview
            # (scaled to 1 mm and ten heights apart, so that framing all of them on the bed
            # makes each one small)
            far = {f"far-{i:02d}": {**generated[job_id], "name": f"far {i:02d}",
                                    "cached_from": job_id, "position": [10.0 * i, 0.0, 0.0],
                                    "scale": [0.02, 0.02, 0.02]}
                   for i in range(1, 21)}
            far[job_id] = {**generated[job_id], "scale": [0.02, 0.02, 0.02]}
            peers.set_objects("bulk", far)
            wait_stats(alice, objects=21, instanced=21)
            alice.keyboard.press("f")  # the camera backs off to take in 200 mm
            distant = wait_stats(alice, objects=21, instanced=21)
            assert distant["triangles"] == 21 * faces["preview"], (distant, faces)
            assert fetched.count("final") == 1, fetched
            for object_id in far:  # 150k faces a software renderer need not carry
                peers.delete("bulk", object_id)
            wait_stats(alice, objects=0, instanced=0)
            peers.set_objects("bulk", grid_copies(ball, 0, 1, columns=32))
            one = wait_stats(alice, objects=1, instanced=1)
            peers.set_objects("bulk", grid_copies(ball, 1, 99, columns=32))
            hundred = wait_stats(alice, objects=100, instanced=100)
            # thin instances draw what one copy per object draws, pixel for pixel (nearly)
            copies = ctx.new_page()
            copies.goto(f"/projects/{project_id}?instancing=off")
            copies.get_by_role("button", name="Stats").click()
            wait_stats(copies, objects=100, instanced=0)
            for page in (alice, copies):  # the same camera for both: framing the same objects
                page.keyboard.press("f")
                wait_stats(page, objects=100, instanced=100 if page is alice else 0)
            # one draw call per copy in view (out-of-view copies are culled)
            assert render_stats(copies)["draw-calls"] > hundred["draw-calls"] + 10
            changed = differing_pixels(canvas_image(alice), canvas_image(copies))
            copies.close()
            assert changed < 0.005, f"{changed:.2%} of pixels differ from one copy per object"
            peers.set_objects("bulk", grid_copies(ball, 100, 900, columns=32))
            thousand = wait_stats(alice, objects=1000, instanced=1000)
        alice.keyboard.press("f")  # frame all (the copies need no framing to be counted)
        alice.wait_for_timeout(500)
        shot(alice, "13-thousand-duplicates-stats")
        print(f"1 object: {one}; 100 objects: {hundred}; 1,000 objects: {thousand}")
        assert one["triangles"] == 80  # the icosphere
        assert hundred["triangles"] == 100 * 80
        assert thousand["triangles"] == 1000 * 80
        assert thousand["draw-calls"] <= hundred["draw-calls"] + 2, (hundred, thousand)
        assert hundred["draw-calls"] < 50, hundred  # one per object would be over 100
        assert len(exports) == 1, f"duplicates downloaded their mesh again: {exports}"

        # -- a selected copy gets nodes of its own (outline, gizmo) and goes back after -----
        alice.get_by_role("tab", name="Properties").click()
        alice.locator(".outliner-item", has_text="copy 0001").click()
        expect(alice.get_by_label("Position X")).to_have_value("1")
        wait_stats(alice, objects=1000, instanced=999)
        alice.keyboard.press("Escape")
        wait_stats(alice, objects=1000, instanced=1000)
    finally:
        ctx.close()
