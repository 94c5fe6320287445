"""Issue 7: the web workspace in headless Chromium with SwiftShader (a software renderer).

``python -m bench.workspace [--quick]`` (about 3 minutes on 2 cores; ``--quick`` about 1)

The studio runs as processes (:func:`bench.generation.running_studio`) and serves the built
workspace (``frontend/dist``; ``make up`` or ``make frontend/dist`` builds it). Debian's
Chromium is driven by Playwright with the flags the end-to-end tests use. Scenes are written
by a real Yjs client (``tests/node/peer.mjs``); the page reads its figures from the
viewport's statistics overlay (``I``).

One table; each figure sits beside its peer from the same run:

- frame time with 100 and 1,000 copies of one mesh (an icosphere of 80 faces) while the
  camera orbits: the median time between frames drawn back to back, with thin instances
  (the default) beside one copy of the meshes per object (``?instancing=off``); the
  JavaScript time of a frame (``scene.render()``: culling, matrices, WebGL calls), which is
  what thin instances save and what carries over to a GPU; and the draw calls of each.
  SwiftShader rasterises on the CPU in the GPU process, so the frame times are relative;
- page load to the first visible mesh (navigation start to the outliner row saying that its
  mesh is shown, which the view reports once the mesh is ready to draw, the frame with it
  coming at the next animation frame) beside page load to the workspace's first paint of its
  title; in rounds of page loads, each round in a browser context of its own and the rounds
  spread over the run (before and between the frame-time runs), the median of all;
- a remote edit to the frame that shows it (a Yjs client moves an object; the page records
  when it drew the first frame after the change) beside the same edit reaching a second
  Yjs client in Node (the server's fan-out alone).

Medians; nothing asserts.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trimesh

from bench.generation import PASSWORD, USERNAME, RunningStudio, running_studio
from bench.harness import Table, median

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
                 "--disable-background-networking"]
DIST = ROOT / "frontend" / "dist" / "index.html"
SUBDIVISIONS = 1
FACES = 20 * 4**SUBDIVISIONS  # an icosphere of 80 faces: light enough that the frame time
# shows the cost per object rather than SwiftShader filling triangles


@dataclass(frozen=True)
class Plan:
    orbit_s: float
    loads: int
    """Page loads per round (the first of a round with the browser's cache empty)."""
    rounds: int
    """Rounds of page loads, each in a browser context of its own, spread over the run."""
    edits: int


FULL = Plan(orbit_s=4.0, loads=5, rounds=3, edits=25)
QUICK = Plan(orbit_s=2.0, loads=3, rounds=2, edits=10)

SHOWN = '.outliner-item:not([data-stage=""])'
"""An outliner row whose mesh is on screen."""

# When the first outliner row reports a shown mesh, and when the title first painted, in ms
# since navigation start.
RECORD_FIRST_MESH = """() => {
  window.firstMeshAt = null
  window.titleAt = null
  new MutationObserver(() => {
    if (window.titleAt === null && document.querySelector('[data-testid="project-title"]')) {
      window.titleAt = performance.now()
    }
    if (window.firstMeshAt === null && document.querySelector('SHOWN')) {
      window.firstMeshAt = performance.now()
    }
  }).observe(document, { subtree: true, childList: true, attributes: true,
                         attributeFilter: ['data-stage'] })
}""".replace("SHOWN", SHOWN)


def grid(fields: dict[str, Any], count: int, prefix: str) -> dict[str, dict[str, Any]]:
    columns = max(1, round(count ** 0.5))
    objects = {}
    for i in range(count):
        row, column = divmod(i, columns)
        objects[f"{prefix}-{i:04d}"] = {
            **fields, "name": f"{prefix} {i:04d}",
            "position": [1.0 * column, 0.0, 1.0 * row],
            "rotation": [0.0, 0.0, 0.0, 1.0], "scale": [1.0, 1.0, 1.0]}
    return objects


def project_with(studio: RunningStudio, name: str, count: int, peers: Any) -> str:
    """A project whose scene holds `count` copies of one uploaded icosphere."""
    http = studio.http
    project: str = http.post("/api/v1/projects", json={"name": name}).json()["id"]
    ball = io.BytesIO()
    trimesh.creation.icosphere(subdivisions=SUBDIVISIONS, radius=0.4).export(ball, file_type="stl")
    asset = http.post(f"/api/v1/projects/{project}/assets", params={"filename": "ball.stl"},
                      content=ball.getvalue()).json()
    fields = {"asset": asset["id"], "blob": asset["blob_key"], "material": {}, "style": "",
              "visible": True, "locked": False, "created_by": USERNAME}
    token = http.headers["Authorization"].removeprefix("Bearer ")
    peers.connect(name, studio.url.replace("http", "ws", 1) + "/ws/projects", project,
                  token=token, wait=True)
    peers.set_objects(name, grid(fields, count, "ball"))
    return project


@contextmanager
def signed_in_page(browser: Any, studio: RunningStudio) -> Iterator[Any]:
    context = browser.new_context(base_url=studio.url, viewport={"width": 1400, "height": 860})
    context.set_default_timeout(120_000)
    page = context.new_page()
    page.goto("/")
    page.get_by_label("User name").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Projects").wait_for()
    try:
        yield page
    finally:
        context.close()


def stats(page: Any) -> dict[str, float]:
    overlay = page.get_by_test_id("render-stats")
    return {n: float(overlay.get_attribute(f"data-{n}") or "nan")
            for n in ("objects", "draw-calls", "triangles", "interval-ms", "render-ms")}


def frame_time(browser: Any, studio: RunningStudio, project: str, count: int,
               instancing: bool, plan: Plan) -> dict[str, float]:
    """Frame figures while the camera orbits over `count` objects."""
    with signed_in_page(browser, studio) as page:
        page.goto(f"/projects/{project}" + ("" if instancing else "?instancing=off"))
        page.get_by_test_id("project-title").wait_for()
        page.keyboard.press("i")
        overlay = page.get_by_test_id("render-stats")
        deadline = time.monotonic() + 300
        while stats(page)["objects"] != count or stats(page)["triangles"] < count * FACES:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the scene did not load: {stats(page)}")
            page.keyboard.press("f")  # frame all: copies out of view would not be drawn
            page.wait_for_timeout(300)
        box = page.get_by_test_id("viewport").bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.keyboard.press("i")  # stats off and on: the medians start with the orbit
        page.keyboard.press("i")
        end = time.monotonic() + plan.orbit_s
        step = 0
        while time.monotonic() < end:
            step += 1
            page.mouse.move(x + 120 * ((step % 20) / 10 - 1), y + 10, steps=2)
        page.mouse.up()
        overlay.wait_for()
        page.wait_for_timeout(400)
        return stats(page)


def first_mesh(browser: Any, studio: RunningStudio, project: str, plan: Plan
               ) -> tuple[list[float], list[float]]:
    """One round: `plan.loads` page loads in a fresh browser context (signed in, its cache
    empty before the first)."""
    meshes, titles = [], []
    with signed_in_page(browser, studio) as page:
        page.add_init_script(f"({RECORD_FIRST_MESH})()")
        for _ in range(plan.loads):
            page.goto(f"/projects/{project}")
            page.wait_for_function("window.firstMeshAt !== null", timeout=120_000)
            meshes.append(page.evaluate("window.firstMeshAt"))
            titles.append(page.evaluate("window.titleAt"))
    return meshes, titles


def quartiles(values: list[float]) -> str:
    if len(values) < 2:
        return "-"
    q1, _, q3 = statistics.quantiles(values, n=4)
    return f"{q1:.0f}-{q3:.0f}"


def remote_edits(browser: Any, studio: RunningStudio, project: str, peers: Any, plan: Plan
                 ) -> tuple[list[float], list[float]]:
    """Milliseconds from a Yjs client's edit to the page's frame that shows it, and to a
    second Node client's copy of the document."""
    token = studio.http.headers["Authorization"].removeprefix("Bearer ")
    ws = studio.url.replace("http", "ws", 1) + "/ws/projects"
    peers.connect("editor", ws, project, token=token, wait=True)
    peers.connect("watcher", ws, project, token=token, wait=True)
    drawn, fanned = [], []
    with signed_in_page(browser, studio) as page:
        page.goto(f"/projects/{project}")
        page.get_by_test_id("project-title").wait_for()
        page.keyboard.press("i")
        overlay = page.get_by_test_id("render-stats")
        overlay.wait_for()
        page.wait_for_function(f"document.querySelector('{SHOWN}') !== null", timeout=120_000)
        for i in range(plan.edits):
            x = float(i + 1)
            sent = time.time() * 1000
            peers.set("editor", "ball-0000", "position", [x, 0.0, 0.0])
            while True:
                objects = peers.state("watcher")["objects"]
                if objects["ball-0000"]["position"][0] == x:
                    fanned.append(time.time() * 1000 - sent)
                    break
            while float(overlay.get_attribute("data-last-change-drawn") or 0) < sent:
                page.wait_for_timeout(5)
            drawn.append(float(overlay.get_attribute("data-last-change-drawn") or 0) - sent)
            page.wait_for_timeout(150)
    return drawn, fanned


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workspace", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter orbits, fewer loads")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if not DIST.exists():
        print("frontend/dist is missing: run `make frontend/dist` (or `make up`) first")
        return 2
    if not CHROMIUM.exists():
        print("needs /usr/bin/chromium (make test installs it)")
        return 2
    from playwright.sync_api import sync_playwright

    from tests.yjs_clients import YjsPeers

    began = time.monotonic()
    out = Table("headless Chromium, --disable-gpu: SwiftShader draws on the CPU, so frame "
                "times are relative; medians",
                ["measure", "studio", "peer", "peer value"])
    with tempfile.TemporaryDirectory(prefix="orfeas-workspace-") as folder, \
            running_studio(Path(folder)) as studio, YjsPeers(timeout=120) as peers, \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # Page loads come in rounds spread over the run (before, between and after the
            # frame-time runs), so that a spell of load on a shared machine moves only some
            # of them; their median is the figure.
            single = project_with(studio, "single", 1, peers)
            meshes: list[float] = []
            titles: list[float] = []

            def load_round() -> None:
                m, t = first_mesh(browser, studio, single, plan)
                meshes.extend(m)
                titles.extend(t)

            load_round()
            for count in (100, 1000):
                project = project_with(studio, f"frames-{count}", count, peers)
                thin = frame_time(browser, studio, project, count, True, plan)
                copies = frame_time(browser, studio, project, count, False, plan)
                if len(meshes) < plan.loads * plan.rounds:
                    load_round()
                out.add(f"frame time, {count:,} objects, ms", thin["interval-ms"],
                        "one copy per object, ms", copies["interval-ms"])
                out.add(f"JavaScript per frame, {count:,} objects, ms", thin["render-ms"],
                        "one copy per object, ms", copies["render-ms"])
                out.add(f"draw calls, {count:,} objects", thin["draw-calls"],
                        "one copy per object", copies["draw-calls"])
            while len(meshes) < plan.loads * plan.rounds:
                load_round()
            out.add("page load to first visible mesh, ms", median(meshes),
                    "page load to workspace title, ms", median(titles))
            drawn, fanned = remote_edits(browser, studio, single, peers, plan)
            out.add("remote edit to the frame showing it, ms", median(drawn),
                    "remote edit to a 2nd Node Yjs client, ms", median(fanned))
        finally:
            browser.close()
    out.print()
    print(f"page loads: {len(meshes)} in {plan.rounds} rounds of {plan.loads} (the first of "
          f"each with an empty cache); quartiles: first visible mesh {quartiles(meshes)} ms, "
          f"title {quartiles(titles)} ms")
    print(f"({time.monotonic() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
