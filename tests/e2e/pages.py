"""What the end-to-end tests do to a studio and in its pages, written once.

A studio here is a real ``orfeas up`` (see ``tests/integration/test_up.py``) with the people
the tests act as; a page is a Playwright page in a browser context of its own (its own
cookies: one person each). The fixtures that hold them live in ``conftest.py``; the modules
import these helpers by name.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageDraw
from playwright import sync_api as playwright_sync

from tests.integration.test_up import REPO, Up, cli_env, token_for

Browser = playwright_sync.Browser
BrowserContext = playwright_sync.BrowserContext
FilePayload = playwright_sync.FilePayload
Page = playwright_sync.Page
expect = playwright_sync.expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
                 "--disable-background-networking"]
ARTIFACTS = REPO / "test-artifacts" / "e2e"
DIST = REPO / "frontend" / "dist" / "index.html"
USERS = {"alice": "alice-secret-pw", "bob": "bob-secret-pw", "carol": "carol-secret-pw"}
ROOT = ("root", "root-secret-pw")  # the site administrator
GENERATION_S = 180  # preview → final with the CPU generator on a busy 2-core machine
XYZ_CUBE = REPO / "tests" / "data" / "meshes" / "trimesh" / "20mm-xyz-cube.stl"
# The camera the viewport reports (ArcRotateCamera: alpha, beta, radius, target), as a
# JavaScript expression for `wait_for_function`.
CAMERA = "JSON.parse(document.querySelector('[data-testid=viewport]').dataset.camera || '{}')"


# -- the studio ----------------------------------------------------------------------------------


def create_users(studio: Up, accounts: Mapping[str, tuple[str, ...]]) -> None:
    """Create accounts (name → password and ``create-user`` options) with the CLI, as an
    operator does; the commands run at once, since each one is mostly Python starting up
    (about 2 s on a busy 2-core machine) and the studio takes them in any order."""
    commands = {name: subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "admin", "create-user", name, "--password",
         password, *options, "--data", str(studio.data_dir)],
        cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) for name, (password, *options) in accounts.items()}
    for name, command in commands.items():
        output, _ = command.communicate(timeout=120)
        assert command.returncode == 0, f"create-user {name}: {output}"


@contextlib.contextmanager
def running_studio(data_dir: Path, env: dict[str, str] | None = None,
                   admin: bool = False) -> Iterator[Up]:
    """``orfeas up`` on a new data folder with alice, bob and carol on the pro tier (these
    tests are about the editor: a free account's one job at a time would refuse a generation
    requested while the last one's analysis runs), and ``ROOT`` with ``admin``."""
    up = Up(data_dir, env=env)
    try:
        up.wait_ready(timeout=180)
        accounts = {name: (password, "--tier", "pro") for name, password in USERS.items()}
        if admin:
            accounts[ROOT[0]] = (ROOT[1], "--admin")
        create_users(up, accounts)
        yield up
    finally:
        up.cleanup()


def api_client(studio: Up, username: str, password: str | None = None,
               timeout: float = 60) -> httpx.Client:
    """An API client signed in as ``username`` (each token is a sign-in the analytics
    count); a password is needed for those outside ``USERS``."""
    token = token_for(studio.url, username, password or USERS[username])
    return httpx.Client(base_url=studio.url, timeout=timeout,
                        headers={"Authorization": f"Bearer {token}"})


def new_project(http: httpx.Client, name: str, **roles: str) -> str:
    """A new project of the client's user, with these members (user name → role)."""
    created = http.post("/api/v1/projects", json={"name": name})
    assert created.status_code == 201, created.text
    project_id: str = created.json()["id"]
    for user, role in roles.items():
        invited = http.post(f"/api/v1/projects/{project_id}/invite",
                            json={"user": user, "role": role})
        assert invited.status_code == 201, invited.text
    return project_id


def alice_project(studio: Up, name: str, **roles: str) -> str:
    """A new project of alice's, with these members (user name → role); empty."""
    with api_client(studio, "alice") as http:
        return new_project(http, name, **roles)


@contextlib.contextmanager
def gpu_worker_paused(studio: Up) -> Iterator[None]:
    """Hold the GPU worker still (SIGSTOP) so that a job stays queued, as it would behind a busy
    worker, however fast this machine is; it resumes (SIGCONT) afterwards."""
    state = json.loads((studio.data_dir / "state.json").read_text())
    pid = state["processes"]["worker-gpu"]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


# -- what the tests upload ------------------------------------------------------------------------


def square_png() -> bytes:
    image = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(image).rectangle((50, 40, 150, 160), fill=(40, 90, 200))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def open_sphere_stl(path: Path) -> Path:
    """An icosphere (radius 10 mm) with three faces cut away: open, so it needs a repair."""
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=3, radius=10.0)
    trimesh.Trimesh(sphere.vertices, sphere.faces[3:], process=False).export(path)
    return path


# -- pages ----------------------------------------------------------------------------------------


def shot(page: Page, name: str, *, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def sign_in(browser: Browser, studio: Up, username: str, password: str | None = None, *,
            height: int = 860) -> tuple[BrowserContext, Page]:
    """A browser context of its own at the sign-in form, the form sent; the answer is not
    waited for, so that a refusal can be read too (``signed_in`` waits for the projects)."""
    context = browser.new_context(base_url=studio.url, viewport={"width": 1400, "height": height})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.on("pageerror", lambda error: print(f"[{username}'s page] {error}"))
    page.goto("/")
    try:
        expect(page.get_by_label("User name")).to_be_visible(timeout=60_000)
    except AssertionError:
        shot(page, f"failed-sign-in-{username}")
        raise
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password or USERS[username])
    page.get_by_role("button", name="Sign in").click()
    return context, page


def signed_in(browser: Browser, studio: Up, username: str, password: str | None = None, *,
              height: int = 860) -> tuple[BrowserContext, Page]:
    """Signed in as ``username``, at the projects page."""
    context, page = sign_in(browser, studio, username, password, height=height)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.get_by_test_id("signed-in-as")).to_have_text(username)
    return context, page


def open_project(page: Page, project_id: str, name: str) -> None:
    page.goto(f"/projects/{project_id}")  # a client-side route, served index.html
    expect(page.get_by_test_id("project-title")).to_have_text(name)


def camera_of(page: Page) -> dict[str, Any]:
    """The viewport's camera as the page says it looks (the canvas's ``data-camera``)."""
    raw = page.get_by_test_id("viewport").get_attribute("data-camera")
    assert raw, "the viewport has not reported its camera"
    camera: dict[str, Any] = json.loads(raw)
    return camera


def frame_all(page: Page) -> None:
    page.get_by_test_id("viewport").click(position={"x": 8, "y": 8})  # empty corner: focus
    page.keyboard.press("f")


def generate(page: Page, height_mm: str, name: str, png: bytes,
             timeout_ms: float = 120_000) -> Any:
    """Generate from the panel with this height; the object once its final stage shows."""
    page.get_by_role("tab", name="Generate").click()
    page.get_by_label("Height (mm)").fill(height_mm)
    page.get_by_label("Face budget").fill("3000")  # quicker to make and to analyse
    before = page.locator(".outliner-item").count()
    image: FilePayload = {"name": f"{name}.png", "mimeType": "image/png", "buffer": png}
    page.get_by_test_id("image-input").set_input_files(files=[image])
    expect(page.locator(".outliner-item")).to_have_count(before + 1, timeout=timeout_ms)
    made = page.locator(".outliner-item", has_text=name)
    expect(made).to_have_attribute("data-stage", "final", timeout=timeout_ms)
    return made


class Network:
    """A page's scene WebSocket passes through this (``route_web_socket``), so a test can
    cut it and restore it."""

    def __init__(self) -> None:
        self.online = True
        self.sockets: list[tuple[Any, Any]] = []

    def route(self, ws: Any) -> None:
        if not self.online:
            ws.close()
            return
        self.sockets.append((ws, ws.connect_to_server()))

    def cut(self) -> None:
        self.online = False
        for page_side, server_side in self.sockets:
            server_side.close()
            page_side.close()
        self.sockets.clear()
