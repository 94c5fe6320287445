"""The admin dashboard after a scripted day of use, in a real browser (issue 23).

Four people use a fresh studio (``orfeas up``: real PostgreSQL, NATS, S3, API, workers): one
mistypes a password; they create projects; alice generates an object from an image, then the
same again (the dedup cache answers); bob's generation fails for real (the GPU worker refuses a
photo of noise: its border is no plain background); carol analyses an open mesh, repairs it
(the studio analyses the result by itself) and exports it twice. The administrator then opens
``/admin`` and the dashboard shows those figures, read from the log by the analytics read
models; bob is refused the page and the API; bob's own "My activity" shows his failure.
Screenshots of the whole dashboard go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright import sync_api as playwright_sync

from tests.e2e.pages import (
    ROOT,
    USERS,
    Browser,
    Page,
    api_client,
    expect,
    new_project,
    open_sphere_stl,
    running_studio,
    shot,
    signed_in,
)
from tests.integration.test_generation import disc_png
from tests.integration.test_up import Up
from tests.yjs_clients import YjsPeers, wait_converged

pytestmark = pytest.mark.slow

JOB_S = 180  # a generation or a mesh job on a busy 2-core machine


def noise_png() -> bytes:
    """Random pixels: a readable image the API accepts, but with no plain background for the
    worker to separate an object from, so the generation fails in the worker."""
    pixels = np.random.default_rng(23).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def generate(http: httpx.Client, project_id: str, name: str, image: bytes) -> dict[str, Any]:
    """Generate from ``image`` and follow the progress stream to its end: its last event."""
    with http.stream("POST", f"/api/v1/projects/{project_id}/generate-progressive",
                     files={"image": (name, image, "image/png")}) as stream:
        assert stream.status_code == 200, stream.read()
        events = [line for line in stream.iter_lines() if line]
    last: dict[str, Any] = json.loads(events[-1])
    return last


def until_ok(http: httpx.Client, path: str) -> dict[str, Any]:
    """Poll a result that answers 202 while its job runs (a mesh analysis) until it is 200."""
    deadline = time.monotonic() + JOB_S
    while True:
        answer = http.get(path)
        if answer.status_code == 200:
            body: dict[str, Any] = answer.json()
            return body
        assert answer.status_code == 202, answer.text
        assert time.monotonic() < deadline, f"{path} still running after {JOB_S} s"
        time.sleep(0.5)


@dataclass(frozen=True)
class Day:
    lamp: str  # alice's project with her generated object
    alice_token: str
    counts: dict[str, int]  # what the day did, as the dashboard should count it


@pytest.fixture(scope="module")
def dashboard_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """This module's own studio, not the package's shared one: the dashboard must show
    exactly the figures of the scripted day, which other modules' use would add to."""
    with running_studio(tmp_path_factory.mktemp("e2e-dashboard"), admin=True) as up:
        yield up


@pytest.fixture(scope="module")
def day_of_use(dashboard_studio: Up) -> Iterator[Day]:
    """The scripted day, through the API as the workspace would do it; what it did, counted."""
    refused = httpx.post(f"{dashboard_studio.url}/api/v1/auth/tokens",
                         json={"username": "bob", "password": "not bob's password"})
    assert refused.status_code == 401, refused.text
    alice, bob, carol = (api_client(dashboard_studio, name, timeout=JOB_S) for name in USERS)
    try:
        lamp, vase = new_project(alice, "Lamp"), new_project(alice, "Vase")
        bowl, bracket = new_project(bob, "Bowl"), new_project(carol, "Bracket")

        first = generate(alice, lamp, "disc.png", disc_png())
        assert first["event"] == "succeeded", first
        again = generate(alice, vase, "disc.png", disc_png())  # same image, same parameters
        assert again["event"] == "succeeded", again
        failed = generate(bob, bowl, "noise.png", noise_png())
        assert failed["event"] == "failed", failed
        assert "plain background" in str(failed), failed

        stl = open_sphere_stl(dashboard_studio.data_dir.parent / "open-sphere.stl")
        uploaded = carol.post(f"/api/v1/projects/{bracket}/assets",
                              files={"file": ("open-sphere.stl", stl.read_bytes())})
        assert uploaded.status_code == 201, uploaded.text
        sphere = uploaded.json()["id"]
        asked = carol.post(f"/api/v1/meshes/{sphere}/analysis", json={})
        assert asked.status_code == 202, asked.text
        until_ok(carol, f"/api/v1/meshes/{sphere}/analysis")
        repaired = carol.post(f"/api/v1/meshes/{sphere}/repair?wait=true&timeout={JOB_S}",
                              json={})
        assert repaired.status_code == 200, repaired.text
        assert repaired.json()["state"] == "succeeded", repaired.text
        mesh = repaired.json()["mesh_id"]
        until_ok(carol, f"/api/v1/meshes/{mesh}/analysis")  # the studio's own analysis
        for fmt in ("stl", "glb"):
            exported = carol.get(f"/api/v1/meshes/{mesh}/export?format={fmt}")
            assert exported.status_code == 200, exported.text

        # -- bob is no administrator: the API refuses him the analytics -------------------
        for path in ("/api/v1/admin/analytics/platform", "/api/v1/admin/analytics/users/alice"):
            answer = bob.get(path)
            assert answer.status_code == 403, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
        yield Day(lamp=lamp, alice_token=alice.headers["Authorization"].split()[1], counts={
            "sign_ins": 3, "failed_sign_ins": 1, "projects": 4, "generations": 3,
            "generations_failed": 1, "mesh_jobs": 3, "exports": 2})
    finally:
        for http in (alice, bob, carol):
            http.close()


def figure(page: Page, name: str) -> playwright_sync.Locator:
    return page.locator(f"[data-figure={name}] dd")


def test_the_dashboard_shows_a_scripted_day(
        browser: Browser, dashboard_studio: Up, day_of_use: Day) -> None:
    did = day_of_use.counts
    peers = YjsPeers()
    peers.start()
    ctx_b, bob = signed_in(browser, dashboard_studio, "bob", height=900)
    ctx_r, root = signed_in(browser, dashboard_studio, *ROOT, height=900)
    try:
        # -- alice is in her project (a live room) and renames her object (a store); her
        # -- second tab sees the new name only once it is stored ---------------------------
        rooms = dashboard_studio.url.replace("http", "ws", 1) + "/ws/projects"
        peers.connect("alice", rooms, day_of_use.lamp, token=day_of_use.alice_token, wait=True)
        [object_id] = peers.state("alice")["objects"]
        peers.set("alice", object_id, "name", "Desk lamp")
        peers.connect("alice-tab", rooms, day_of_use.lamp, token=day_of_use.alice_token,
                      wait=True)
        stored = wait_converged(peers, ["alice", "alice-tab"], timeout=30)
        assert stored[object_id]["name"] == "Desk lamp", stored

        # -- bob: no Admin link, a refusal at /admin, his own figures at "My activity" -------
        expect(bob.get_by_role("link", name="Admin")).to_have_count(0)
        bob.goto("/admin")
        expect(bob.get_by_test_id("admin-refused").get_by_role("alert")).to_contain_text(
            "Only site administrators")
        shot(bob, "23-admin-refused", full_page=True)
        bob.get_by_role("link", name="My activity").click()
        mine = bob.get_by_test_id("user-analytics")
        expect(mine).to_have_attribute("data-user", "bob")
        expect(figure(bob, "user-generations")).to_have_text("1")
        expect(figure(bob, "user-generations-failed")).to_have_text("1")
        expect(figure(bob, "user-success")).to_have_text("0.0 %")
        expect(figure(bob, "user-projects-created")).to_have_text("1")
        shot(bob, "23-my-activity", full_page=True)

        # -- the administrator's dashboard: the day's figures --------------------------------
        root.get_by_role("link", name="Admin").click()
        expect(root.get_by_role("heading", name="Admin dashboard")).to_be_visible()
        expect(root.get_by_test_id("platform")).to_have_attribute("data-state", "ready")
        # token and browser sign-ins: the three API clients, then bob and root in browsers
        expected = {
            "generations": did["generations"],
            "generations-failed": did["generations_failed"],
            "generation-success": "66.7 %",  # the cache's answer succeeded with alice's first
            "dedup-hit-rate": "33.3 %",  # one of three requests answered without the GPU
            "mesh-jobs": did["mesh_jobs"],
            "mesh-jobs-failed": 0,
            "exports": did["exports"],
            "projects-created": did["projects"],
            "sign-ins": did["sign_ins"] + 2,
            "failed-sign-ins": did["failed_sign_ins"],
            "active-period": 4,
        }
        # The browser sign-ins are facts the API stores each second and the read model then
        # projects: the page, read once, may have come a moment before the last of them.
        for _ in range(40):
            if figure(root, "sign-ins").inner_text() == str(expected["sign-ins"]):
                break
            root.wait_for_timeout(500)
            root.get_by_role("button", name="Refresh").click()
            expect(root.get_by_test_id("platform")).to_have_attribute("data-state", "ready")
        for name, value in expected.items():
            expect(figure(root, name)).to_have_text(str(value))
        # bars, each with its numbers in a table beside the chart
        generators = root.get_by_test_id("bars-generators")
        expect(generators.locator("tr[data-label=inflate] td")).to_have_text("3")
        tiers = root.get_by_test_id("bars-tiers")
        expect(tiers.locator("tr[data-label=pro] td")).to_have_text("3")
        expect(tiers.locator("tr[data-label=free] td")).to_have_text("1")
        for chart in ("chart-activity", "chart-generations", "chart-mesh-jobs", "chart-errors",
                      "chart-gpu", "bars-generators", "bars-tiers"):
            expect(root.get_by_test_id(chart).locator("canvas").first).to_be_visible()
        expect(root.get_by_test_id("quarantine-total")).to_contain_text("None")
        room = root.get_by_test_id("rooms-table").locator(f"tr[data-project='{day_of_use.lamp}']")
        expect(room).to_contain_text("alice")
        expect(room.locator("td").nth(6)).to_have_text(re.compile(r"^\d+\.\d ms$"))  # p50
        users = root.get_by_test_id("admin-users-table")
        for name in ("alice", "bob", "carol", "root"):
            expect(users.locator(f"tr[data-user={name}]")).to_be_visible()
        expect(users.locator("tr[data-user=alice]")).to_contain_text("pro")
        root.wait_for_timeout(300)  # uPlot draws on the next frame
        shot(root, "23-admin-dashboard", full_page=True)

        # -- one user's analytics --------------------------------------------------------------
        users.locator("tr[data-user=alice]").get_by_role("button", name="Analytics").click()
        alice = root.get_by_test_id("user-analytics")
        expect(alice).to_have_attribute("data-user", "alice")
        expect(figure(root, "user-generations")).to_have_text("2")
        expect(figure(root, "user-generations-failed")).to_have_text("0")
        expect(figure(root, "user-projects-created")).to_have_text("2")
        expect(root.get_by_test_id("user-favourites")).to_contain_text("generator inflate")
        shot(root, "23-admin-user-analytics", full_page=True)

        # -- by hour, the same day's figures --------------------------------------------------
        root.get_by_role("form", name="Period").get_by_label("By").select_option("hour")
        root.get_by_role("button", name="Show").click()
        expect(root.get_by_test_id("platform")).to_have_attribute("data-state", "ready")
        expect(root.get_by_test_id("platform")).to_contain_text("by hour")
        expect(figure(root, "generations")).to_have_text(str(did["generations"]))
        expect(figure(root, "exports")).to_have_text(str(did["exports"]))
    except BaseException:
        shot(root, "failed-admin-dashboard", full_page=True)
        raise
    finally:
        ctx_b.close()
        ctx_r.close()
        peers.close()
