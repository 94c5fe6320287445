"""The design assistant in a real browser (issue 24): ask, read the figures, apply, see the gain.

alice imports a broken mesh from the corpus (``teapot.stl``: open, 894 faces; its repair closes
six holes and lifts the printability score from about 58 to about 92) and asks "will this
print?". The assistant first offers the analysis it needs; one click runs it; asked again, it
says no with the reasons and their figures and suggests the repair with its predicted score.
One click runs the repair as a job on the object; the suggestion then shows the measured
score beside the prediction, the mesh panel shows the object's repaired mesh with that score,
and the same question is answered yes. bob, a viewer in a second browser, has the conversation
open: he sees the buttons disabled with the reason, alice's repair and its measured effect as
they happen, and the question in the history. A question the server refuses (empty, too long)
shows its reason (a refused one stays in the box), and the next answer clears it.

The package's shared ``orfeas up`` (``conftest.py``). Screenshots go to
``test-artifacts/e2e/``.
"""

from __future__ import annotations

import re

import pytest

from tests.corpus import corpus_path
from tests.e2e.pages import Browser, Page, alice_project, expect, open_project, shot, signed_in
from tests.integration.test_up import Up

pytestmark = pytest.mark.slow

PROJECT = "Teapot print"
JOB_MS = 120_000  # a mesh job and the analysis of its result on a busy 2-core machine


@pytest.fixture(scope="module")
def project(studio: Up) -> str:
    """alice's empty project, bob its viewer."""
    return alice_project(studio, PROJECT, bob="viewer")


def open_assistant(page: Page, project_id: str) -> None:
    open_project(page, project_id, PROJECT)
    page.get_by_role("tab", name="Assistant").click()


def ask(page: Page, question: str) -> None:
    """Type a question and send it with Enter, as people do."""
    box = page.get_by_label("Question for the assistant")
    box.fill(question)
    box.press("Enter")


def test_ask_will_it_print_apply_the_repair_and_see_the_gain(
        browser: Browser, studio: Up, project: str) -> None:
    ctx_a, alice = signed_in(browser, studio, "alice")
    ctx_b, bob = signed_in(browser, studio, "bob")
    try:
        # -- alice imports the broken teapot; it is selected --------------------------------
        alice.goto(f"/projects/{project}")
        expect(alice.get_by_test_id("project-title")).to_have_text(PROJECT)
        alice.get_by_role("tab", name="Generate").click()
        alice.get_by_test_id("mesh-input").set_input_files(str(corpus_path("teapot.stl")))
        item = alice.locator(".outliner-item", has_text="teapot")
        expect(item).to_have_attribute("data-stage", "mesh", timeout=60_000)
        alice.get_by_role("tab", name="Assistant").click()
        expect(alice.get_by_test_id("assistant-subject")).to_contain_text("teapot")

        # -- an empty or oversized question is refused with the server's reason; nothing is
        # stored
        alice.get_by_label("Question for the assistant").press("Enter")
        panel = alice.get_by_role("region", name="Assistant")
        expect(panel.get_by_role("alert")).to_have_count(1)
        # too long: the reason names the limit, and the question stays in the box to shorten
        ask(alice, "will this print? " + "x" * 2000)
        expect(panel.get_by_role("alert")).to_contain_text("2000")
        box = alice.get_by_label("Question for the assistant")
        expect(box).to_have_value(re.compile("x{2000}$"))
        expect(alice.get_by_test_id("assistant-message")).to_have_count(0)

        # -- not analysed yet: the assistant offers the analysis; one click runs it ---------
        ask(alice, "will this print?")
        first = alice.get_by_test_id("assistant-message").nth(0)
        expect(first.get_by_test_id("assistant-answer")).to_contain_text("not been analysed")
        expect(panel.get_by_role("alert")).to_have_count(0)  # the stale refusal is gone
        first.get_by_role("button", name=re.compile(r"^Analyse")).click()
        expect(first.get_by_test_id("suggestion-job")).to_have_attribute(
            "data-phase", "succeeded", timeout=JOB_MS)

        # -- asked again: no, with the reasons and their figures; the repair is suggested ---
        ask(alice, "will this print?")
        answer = alice.get_by_test_id("assistant-message").nth(1)
        expect(answer.get_by_test_id("assistant-answer")).to_contain_text(
            re.compile(r"^Not as it is: teapot\.stl scores \d+(\.\d+)?/100\. Points lost to: "))
        facts = answer.get_by_test_id("assistant-facts")
        expect(facts).to_contain_text("watertight")
        expect(facts).to_contain_text(re.compile(r"\d+(\.\d+)? points"))  # figures with units
        repair = answer.get_by_test_id("assistant-suggestion").filter(has_text="Repair the mesh")
        expected = repair.get_by_test_id("effect-expected").first
        expect(expected).to_have_text(re.compile(r"^\d+(\.\d+)? → \d+(\.\d+)? points$"))
        before, predicted = (float(x) for x in re.findall(
            r"\d+(?:\.\d+)?", expected.inner_text())[:2])
        assert predicted > before, expected.inner_text()
        shot(alice, "assistant-1-will-it-print")

        # -- bob, a viewer, has the conversation open: alice's questions, no apply for him --
        open_assistant(bob, project)
        messages = bob.get_by_test_id("assistant-message")
        expect(messages).to_have_count(2)
        expect(messages.nth(1).get_by_test_id("assistant-answer")).to_contain_text(
            "Not as it is")
        expect(messages.nth(1)).to_contain_text("alice")
        seen = messages.nth(1).get_by_test_id("assistant-suggestion").filter(
            has_text="Repair the mesh")
        expect(seen.get_by_role("button", name="Repair the mesh")).to_be_disabled()
        expect(messages.nth(1).get_by_test_id("apply-refusal")).to_contain_text("Only editors")

        # -- one click: the repair runs as a job on the object; then the real effect --------
        repair.get_by_role("button", name="Repair the mesh").click()
        expect(repair.get_by_test_id("suggestion-job")).to_have_attribute(
            "data-phase", "succeeded", timeout=JOB_MS)
        actual = repair.get_by_test_id("effect-actual").first
        expect(actual).to_have_text(re.compile(r"^\d+(\.\d+)? → \d+(\.\d+)? points$"))
        was, now = (float(x) for x in re.findall(r"\d+(?:\.\d+)?", actual.inner_text())[:2])
        assert was == before and now > before, actual.inner_text()
        expect(repair).to_have_attribute("data-state", "succeeded")
        shot(alice, "assistant-2-repaired")

        # -- the object now shows the repaired mesh: its panel names it, with its analysis -
        # (picked afresh, the object's panel reads the analysis the studio made by itself)
        alice.keyboard.press("Escape")
        expect(item).to_have_attribute("data-selected", "false")
        item.click()
        alice.get_by_role("tab", name="Mesh").click()
        expect(alice.get_by_test_id("mesh-file")).to_contain_text("teapot (repaired).glb")
        expect(alice.get_by_test_id("print-score")).to_have_text(str(round(now)))
        expect(alice.get_by_test_id("mesh-stats").locator("dd").nth(2)).to_have_text("yes")
        shot(alice, "assistant-3-mesh-panel")

        # -- asked again about the object, the assistant says yes with the new score -------
        alice.get_by_role("tab", name="Assistant").click()
        ask(alice, "will this print?")
        again = alice.get_by_test_id("assistant-message").nth(2)
        expect(again.get_by_test_id("assistant-answer")).to_contain_text(
            re.compile(rf"^Yes\b.*teapot \(repaired\)\.glb scores {now:g}/100"))

        # -- bob's open panel follows: alice's repair with its measured effect, her question
        # (it reads the log every 2 s: a few reads on a loaded machine)
        expect(messages).to_have_count(3, timeout=30_000)
        expect(seen.get_by_test_id("effect-actual").first).to_have_text(actual.inner_text(),
                                                                        timeout=30_000)
        seen.scroll_into_view_if_needed()
        shot(bob, "assistant-4-viewer")
        # the conversation is events: the project's history tells it too
        bob.get_by_role("tab", name="History").click()
        expect(bob.locator(".timeline")).to_contain_text(
            "alice asked the assistant: “will this print?”")
    except BaseException:
        print(studio.output[-30_000:])
        raise
    finally:
        ctx_a.close()
        ctx_b.close()
