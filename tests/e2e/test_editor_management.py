"""Managing a project and the site, and the viewport's aids, in a real browser (issue 21,
items 9 and 8).

Members with their roles in the workspace's Members tab (an owner changes a role and removes a
member after a confirmation; others only read), deleting a project from the projects page after
a confirmation, and the administrators' users page (create an account, disable it: its sign-in
is refused; enable it again). In the viewport: an imported (CAD) mesh is shaded flat, it turns
about its centre, a heat map has a legend with its unit and range, and a collaborator's camera
carries their name.

The package's shared ``orfeas up`` and browser (``conftest.py``); it has ``ROOT``, an
administrator, from the start. Screenshots go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.pages import (
    ROOT,
    Browser,
    Page,
    api_client,
    camera_of,
    expect,
    new_project,
    open_project,
    shot,
    sign_in,
    signed_in,
)
from tests.integration.test_up import Up

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def alice_api(studio: Up) -> Iterator[httpx.Client]:
    with api_client(studio, "alice") as http:
        yield http


@pytest.fixture(scope="module")
def project(alice_api: httpx.Client) -> str:
    """alice's project, bob its editor, carol its viewer."""
    return new_project(alice_api, "Managed", bob="editor", carol="viewer")


def roles(http: httpx.Client, project_id: str) -> dict[str, str]:
    listed = http.get(f"/api/v1/projects/{project_id}/collaborators")
    assert listed.status_code == 200, listed.text
    return {c["username"]: c["role"] for c in listed.json()["collaborators"]}


def members_tab(page: Page, project_id: str) -> Page:
    open_project(page, project_id, "Managed")
    page.get_by_role("tab", name="Members").click()
    expect(page.get_by_test_id("members-panel")).to_be_visible()
    return page


def test_members_roles_removal_and_project_deletion(
        browser: Browser, studio: Up, project: str,
        alice_api: httpx.Client) -> None:
    ctx_a, alice = signed_in(browser, studio, "alice")
    ctx_c, carol = signed_in(browser, studio, "carol")
    try:
        members_tab(alice, project)
        panel = alice.get_by_test_id("members-panel")
        for name in ("alice", "bob", "carol"):
            expect(panel.locator(f"[data-member={name}]")).to_be_visible()
        expect(alice.get_by_test_id("role-bob")).to_have_value("editor")
        expect(alice.get_by_test_id("role-carol")).to_have_value("viewer")

        # -- alice makes carol an editor: the server holds it --------------------------------
        alice.get_by_test_id("role-carol").select_option("editor")
        expect(alice.get_by_test_id("role-carol")).to_have_value("editor")
        assert roles(alice_api, project)["carol"] == "editor"
        # the last owner cannot step down: refused with the server's reason, and undone
        alice.get_by_test_id("role-alice").select_option("viewer")
        expect(panel.get_by_role("alert")).to_contain_text("at least one owner")
        expect(alice.get_by_test_id("role-alice")).to_have_value("owner")

        # -- alice removes bob, after saying yes ---------------------------------------------
        panel.get_by_role("button", name="Remove bob").click()
        dialog = alice.get_by_role("dialog", name="Remove a member")
        expect(dialog).to_be_visible()
        dialog.get_by_role("button", name="Cancel").click()
        expect(panel.locator("[data-member=bob]")).to_be_visible()
        panel.get_by_role("button", name="Remove bob").click()
        shot(alice, "21-09-members-remove-confirm")
        dialog.get_by_role("button", name="Remove").click()
        expect(panel.locator("[data-member=bob]")).to_have_count(0)
        assert set(roles(alice_api, project)) == {"alice", "carol"}
        shot(alice, "21-09-members-panel-owner")

        # -- carol (an editor, not an owner) reads the roles and changes nothing ---------------
        members_tab(carol, project)
        carol_panel = carol.get_by_test_id("members-panel")
        expect(carol_panel.locator("[data-member=alice] .role-owner")).to_be_visible()
        expect(carol_panel.get_by_role("combobox")).to_have_count(0)
        expect(carol_panel.get_by_role("button", name="Remove alice")).to_have_count(0)

        # -- alice deletes another project from the projects page -----------------------------
        doomed = alice_api.post("/api/v1/projects", json={"name": "Throwaway"}).json()["id"]
        alice_api.post(f"/api/v1/projects/{doomed}/invite", json={"user": "carol",
                                                                  "role": "editor"})
        alice.goto("/")
        row = alice.locator(f"[data-project-id='{doomed}']")
        expect(row).to_be_visible()
        row.get_by_role("button", name="Delete").click()
        confirm = alice.get_by_role("dialog", name="Delete the project")
        expect(confirm).to_contain_text("Throwaway")
        shot(alice, "21-09-delete-project-confirm")
        confirm.get_by_role("button", name="Delete project").click()
        expect(row).to_have_count(0)
        assert alice_api.get(f"/api/v1/projects/{doomed}").status_code == 404
        # carol, a member, no longer finds it; her own page offers no Delete (not an owner)
        carol.goto("/")
        expect(carol.get_by_role("link", name="Managed")).to_be_visible()
        expect(carol.get_by_role("link", name="Throwaway")).to_have_count(0)
        expect(carol.locator(f"[data-project-id='{project}']")
               .get_by_role("button", name="Delete")).to_have_count(0)
    finally:
        ctx_a.close()
        ctx_c.close()


def test_admins_create_disable_and_enable_accounts(browser: Browser, studio: Up) -> None:
    ctx_r, root = signed_in(browser, studio, *ROOT)
    ctx_d = None
    try:
        expect(root.get_by_role("heading", name="Projects")).to_be_visible()
        root.get_by_role("link", name="Users").click()
        expect(root.get_by_role("heading", name="Users")).to_be_visible()
        assert root.url.endswith("/admin/users")
        table = root.get_by_test_id("users-table")
        for name in ("alice", "bob", "carol", "root"):
            expect(table.locator(f"tr[data-user={name}]")).to_be_visible()
        # an administrator cannot disable themself
        expect(table.locator("tr[data-user=root]").get_by_role("button")).to_have_count(0)

        # -- create dave; a bad password is refused with the server's reason -----------------
        form = root.get_by_role("form", name="New user")
        form.get_by_placeholder("User name").fill("dave")
        form.get_by_placeholder("Password").fill("dave-secret-pw")
        form.get_by_role("button", name="Create user").click()
        expect(root.get_by_role("status")).to_have_text("Created dave.")
        dave_row = table.locator("tr[data-user=dave]")
        expect(dave_row).to_contain_text("active")
        form.get_by_placeholder("User name").fill("dave")
        form.get_by_placeholder("Password").fill("another-pw")
        form.get_by_role("button", name="Create user").click()
        expect(root.get_by_role("alert")).to_contain_text("already exists")

        # -- disable dave (after saying yes): his sign-in is refused, said why -----------------
        dave_row.get_by_role("button", name="Disable").click()
        root.get_by_role("dialog", name="Disable an account").get_by_role(
            "button", name="Disable").click()
        expect(dave_row).to_contain_text("disabled")
        expect(dave_row.get_by_role("button", name="Enable")).to_be_visible()
        shot(root, "21-09-admin-users")
        ctx_d, dave = sign_in(browser, studio, "dave", "dave-secret-pw")
        expect(dave.get_by_role("alert")).to_contain_text("disabled")
        ctx_d.close()

        # -- enabled again, he signs in ------------------------------------------------------
        dave_row.get_by_role("button", name="Enable").click()
        expect(dave_row).to_contain_text("active")
        ctx_d, dave = sign_in(browser, studio, "dave", "dave-secret-pw")
        expect(dave.get_by_test_id("signed-in-as")).to_have_text("dave")
        # not an administrator: no Users link, and the page says so
        expect(dave.get_by_role("link", name="Users")).to_have_count(0)
        dave.goto("/admin/users")
        expect(dave.get_by_role("alert")).to_contain_text("Only site administrators")
    finally:
        ctx_r.close()
        if ctx_d is not None:
            ctx_d.close()


SPHERE_MM = 20.0


def sphere_stl(folder: Path) -> Path:
    """A 20 mm icosphere resting on its origin's plane: overhangs below, facets to see."""
    import trimesh

    path = folder / "ball.stl"
    trimesh.creation.icosphere(subdivisions=2, radius=SPHERE_MM / 2).export(path)
    return path


def framed_target(page: Page) -> list[float]:
    """Where the camera looks once everything is framed (the scene's bounding-box centre)."""
    page.get_by_role("button", name="Frame all").click()
    page.wait_for_timeout(300)  # the framing is one camera move; let its report arrive
    target: list[float] = camera_of(page)["target"]
    return target


def test_viewport_flat_cad_centre_pivot_legend_and_camera_names(
        browser: Browser, studio: Up, alice_api: httpx.Client) -> None:
    project_id = new_project(alice_api, "Viewport", bob="editor")
    ctx_a, alice = signed_in(browser, studio, "alice")
    ctx_b, bob = signed_in(browser, studio, "bob")
    try:
        alice.goto(f"/projects/{project_id}")
        expect(alice.get_by_test_id("project-title")).to_have_text("Viewport")
        alice.get_by_role("tab", name="Generate").click()
        alice.get_by_test_id("mesh-input").set_input_files(
            str(sphere_stl(studio.data_dir.parent)))
        ball = alice.locator(".outliner-item", has_text="ball")
        expect(ball).to_have_attribute("data-stage", "mesh", timeout=60_000)

        # -- an imported file's mesh is shaded flat by default -------------------------------
        ball.click()
        alice.get_by_role("tab", name="Properties").click()
        expect(alice.get_by_role("region", name="Properties")).to_contain_text("flat shading")

        # -- it turns about its centre: a quarter turn about X leaves the centre in place -----
        before = framed_target(alice)
        assert before[1] == pytest.approx(SPHERE_MM / 2, abs=0.5), before
        rotation_x = alice.get_by_label("Rotation ° X")
        rotation_x.fill("90")
        rotation_x.press("Enter")
        alice.wait_for_function("""() => {
            const raw = document.querySelector('[data-testid=viewport]').dataset.camera
            return raw !== undefined
        }""")
        after = framed_target(alice)
        assert after == pytest.approx(before, abs=0.5), (before, after)

        # -- bob comes in and looks from elsewhere: alice sees his camera with his name -------
        bob.goto(f"/projects/{project_id}")
        expect(bob.get_by_test_id("project-title")).to_have_text("Viewport")
        box = bob.get_by_test_id("viewport").bounding_box()
        assert box is not None
        bob.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        bob.mouse.down()
        bob.mouse.move(box["x"] + box["width"] / 2 + 180, box["y"] + box["height"] / 2 - 60,
                       steps=8)
        bob.mouse.up()
        viewport = alice.get_by_test_id("viewport")
        vbox = viewport.bounding_box()
        assert vbox is not None
        alice.mouse.move(vbox["x"] + vbox["width"] / 2, vbox["y"] + vbox["height"] / 2)
        for _ in range(6):
            alice.mouse.wheel(0, 400)  # step back to see where bob stands
        label = alice.get_by_test_id("camera-label")
        expect(label).to_have_text("bob")

        # -- analysed, the overhang heat map has a legend in degrees with its range -----------
        alice.get_by_role("tab", name="Mesh").click()
        alice.get_by_role("button", name="Analyse", exact=True).click()
        expect(alice.get_by_test_id("mesh-stats")).to_contain_text("Watertight", timeout=120_000)
        alice.get_by_label("Heat map").select_option("overhang")
        legend = alice.get_by_test_id("heat-legend")
        expect(legend).to_contain_text("Overhang from vertical (degrees)")
        # from faces needing no support (45° or less) to the steepest the ball has (its
        # lowest facets lean about 80°; a flat ceiling would be 90°)
        expect(legend).to_contain_text(re.compile(r"≤ 45°(4[6-9]|[5-8]\d|90)°"))
        shot(alice, "21-08-viewport-flat-legend-camera-name")
        alice.get_by_label("Heat map").select_option("wall_thickness_mm")
        expect(legend).to_contain_text("Wall thickness (mm)")
        expect(legend).to_contain_text(" mm")
        shot(alice, "21-08-viewport-thickness-legend")
        alice.get_by_label("Heat map").select_option("none")
        expect(legend).to_have_count(0)
    finally:
        ctx_a.close()
        ctx_b.close()
