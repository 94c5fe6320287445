"""Tiers and limits in a real browser (issue 22): a free user's refused second job at once
says why, where the queue stands and when to retry; an administrator puts users on tiers in
the users page, and its create form clears once the account exists; the header's usage line
follows the user's own uploads at once, not at its next 30 s refresh.

The package's shared ``orfeas up`` and browser (``conftest.py``), where ``ROOT`` is an
administrator from the start. Screenshots go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.pages import (
    ROOT,
    XYZ_CUBE,
    Browser,
    api_client,
    create_users,
    expect,
    gpu_worker_paused,
    open_project,
    shot,
    signed_in,
    square_png,
)
from tests.integration.test_generation import disc_png
from tests.integration.test_up import Up

pytestmark = pytest.mark.slow

FRED = ("fred", "fred-secret-pw")  # on the free tier: one job at once


@pytest.fixture(scope="module")
def accounts(studio: Up) -> None:
    create_users(studio, {FRED[0]: (FRED[1],)})


@pytest.fixture
def fred_api(studio: Up, accounts: None) -> Iterator[httpx.Client]:
    with api_client(studio, *FRED) as http:
        yield http


def test_a_free_users_second_job_at_once_says_the_queue_and_when_to_retry(
        browser: Browser, studio: Up, fred_api: httpx.Client) -> None:
    project = fred_api.post("/api/v1/projects", json={"name": "Free plan"})
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    image = fred_api.post(f"/api/v1/projects/{project_id}/assets?filename=disc.png",
                          content=disc_png())
    assert image.status_code == 201, image.text
    square = studio.data_dir.parent / "fred-square.png"
    square.write_bytes(square_png())
    context, page = signed_in(browser, studio, *FRED)
    try:
        with gpu_worker_paused(studio):  # fred's first job waits in the queue
            first = fred_api.post(f"/api/v1/projects/{project_id}/generate",
                                  json={"asset_id": image.json()["id"]})
            assert first.status_code == 202, first.text
            page.get_by_role("link", name="Free plan").click()
            expect(page.get_by_test_id("project-title")).to_have_text("Free plan")
            expect(page.get_by_test_id("usage-line")).to_contain_text("running 1/1")
            page.get_by_role("tab", name="Generate").click()
            page.get_by_test_id("image-input").set_input_files(str(square))
            alert = page.get_by_role("alert")
            expect(alert).to_contain_text("the free tier allows 1 at once")
            expect(alert).to_contain_text("position 1 in the queue")
            expect(alert).to_contain_text("a slot is expected in about")
            shot(page, "22-01-free-second-job-refused")
            cancelled = fred_api.delete(f"/api/v1/jobs/{first.json()['job_id']}")
            assert cancelled.status_code in (200, 202, 204), cancelled.text
    finally:
        context.close()


def test_the_usage_line_follows_an_upload_at_once(
        browser: Browser, studio: Up, fred_api: httpx.Client) -> None:
    project = fred_api.post("/api/v1/projects", json={"name": "Usage"})
    assert project.status_code == 201, project.text
    context, page = signed_in(browser, studio, *FRED)
    try:
        open_project(page, project.json()["id"], "Usage")
        usage = page.get_by_test_id("usage-line")
        expect(usage).to_contain_text("storage")
        before = usage.inner_text()
        used = fred_api.get("/api/v1/me/usage").json()["storage"]["used_bytes"]
        page.get_by_role("tab", name="Generate").click()
        page.get_by_test_id("mesh-input").set_input_files(str(XYZ_CUBE))
        expect(page.locator(".outliner-item", has_text="20mm-xyz-cube")).to_be_visible(
            timeout=60_000)
        # the 30 s refresh (and focus) would come too late: the upload itself asks for it
        expect(usage).not_to_have_text(before, timeout=10_000)
        after = fred_api.get("/api/v1/me/usage").json()["storage"]["used_bytes"]
        assert after > used
        shot(page, "22-03-usage-after-upload")
    finally:
        context.close()


def test_an_admin_puts_users_on_tiers_in_the_users_page(
        browser: Browser, studio: Up, fred_api: httpx.Client) -> None:
    context, root = signed_in(browser, studio, *ROOT)
    try:
        root.get_by_role("link", name="Users").click()
        expect(root.get_by_role("heading", name="Users")).to_be_visible()
        table = root.get_by_test_id("users-table")
        tier = table.locator("tr[data-user=fred]").get_by_label("Tier of fred")
        expect(tier).to_have_value("free")
        tier.select_option("pro")
        expect(root.get_by_role("status")).to_have_text("fred is on the pro tier.")
        expect(tier).to_have_value("pro")
        assert fred_api.get("/api/v1/me/usage").json()["tier"] == "pro"

        # -- a new account on a tier: the form is empty again once it exists -----------------
        form = root.get_by_role("form", name="New user")
        form.get_by_placeholder("User name").fill("gus")
        form.get_by_placeholder("Password").fill("gus-secret-pw")
        form.get_by_label("Tier of the new user").select_option("enterprise")
        form.get_by_role("button", name="Create user").click()
        expect(root.get_by_role("status")).to_have_text("Created gus on the enterprise tier.")
        expect(table.locator("tr[data-user=gus]").get_by_label("Tier of gus")).to_have_value(
            "enterprise")
        expect(form.get_by_placeholder("User name")).to_have_value("")
        expect(form.get_by_placeholder("Password")).to_have_value("")
        expect(form.get_by_label("Tier of the new user")).to_have_value("free")
        shot(root, "22-02-admin-tiers")
    finally:
        context.close()
