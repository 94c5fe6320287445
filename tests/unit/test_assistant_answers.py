"""Grounded answers from real analyses (the mesh worker's own ``analyse``): the reasons carry
figures that are cited as facts, and every suggestion is a mesh job the worker runs, with
parameters its route accepts and a prediction read from the analysis."""

from __future__ import annotations

import re
from typing import Any

import trimesh

from core.assistant import answers, intents, suggestions
from core.contracts.mesh_params import check_mesh_params
from core.events.job_kinds import MESH_OPERATIONS
from workers.mesh.operations import analyse

ASSET = {"asset_id": "a", "filename": "part.stl"}


def _stats(mesh: trimesh.Trimesh, **params: Any) -> dict[str, Any]:
    stats, _, _ = analyse(mesh.export(file_type="stl"), "stl", params)
    return stats


def _open_sphere() -> trimesh.Trimesh:
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=10.0)
    return trimesh.Trimesh(sphere.vertices, sphere.faces[3:], process=False)


def _cited(answer: answers.Answer) -> set[float]:
    values = {round(float(f["value"]), 1) for f in answer.facts
              if isinstance(f["value"], int | float) and not isinstance(f["value"], bool)}
    for s in answer.suggestions:
        for change in s["expected"]:
            values |= {round(float(v), 1) for v in (change["before"], change["after"])
                       if isinstance(v, int | float)}
    return values


def _numbers_said(text: str) -> set[float]:
    text = text.replace("/100", "")  # the scale of the score, not a figure
    return {round(float(n), 1) for n in re.findall(r"(?<![\w.])\d+(?:\.\d+)?", text)}


def _runnable(suggestion: dict[str, Any]) -> None:
    assert suggestion["operation"] in MESH_OPERATIONS
    check_mesh_params(suggestions.kind_of(suggestion["operation"]), suggestion["params"])


def test_a_broken_mesh_is_told_why_and_offered_the_repair() -> None:
    stats = _stats(_open_sphere())
    answer = answers.about_printing(intents.WILL_IT_PRINT, ASSET, stats)
    facts = {f["name"]: f for f in answer.facts}
    assert facts["watertight"] == {"name": "watertight", "value": False, "unit": None,
                                   "source": "analysis"}
    score = facts["printability score"]["value"]
    assert score == stats["printability"]["score"] < 80
    assert f"{score:g}/100" in answer.text and "not a sound solid" in answer.text
    assert facts["penalty: defects"]["value"] == 25.0 and "25 points" in answer.text
    assert _numbers_said(answer.text) <= _cited(answer)
    repair = answer.suggestions[0]
    assert repair["operation"] == "repair" and repair["params"] == {}
    assert repair["expected"][0] == {"name": "printability score", "unit": "points",
                                     "before": score, "after": score + 25.0}
    for s in answer.suggestions:
        _runnable(s)


def test_a_sound_part_is_said_to_print() -> None:
    stats = _stats(trimesh.creation.box(extents=(20.0, 20.0, 20.0)))
    answer = answers.about_printing(intents.WILL_IT_PRINT, ASSET, stats)
    assert answer.text.startswith("Yes") and answer.suggestions == []


def test_too_big_a_part_is_offered_the_scale_to_fit() -> None:
    stats = _stats(trimesh.creation.box(extents=(400.0, 30.0, 30.0)))
    answer = answers.about_printing(intents.SMALLER, ASSET, stats)
    [scale] = answer.suggestions
    _runnable(scale)
    assert scale["operation"] == "optimise" and scale["params"]["scale_to_fit"] is True
    assert scale["params"]["reorient"] is False
    largest = {c["name"]: c for c in scale["expected"]}["largest extent"]
    assert largest["before"] == 400.0 and largest["after"] < 220.0
    assert _numbers_said(answer.text) <= _cited(answer)


def test_a_part_that_fits_is_not_offered_a_scale_nobody_runs() -> None:
    stats = _stats(trimesh.creation.box(extents=(20.0, 20.0, 20.0)))
    answer = answers.about_printing(intents.SMALLER, ASSET, stats)
    assert answer.suggestions == [] and "fits the printer" in answer.text


def test_a_solid_resin_part_is_offered_the_hollowing_with_its_weight() -> None:
    stats = _stats(trimesh.creation.box(extents=(60.0, 60.0, 60.0)),
                   printer={"technology": "resin", "material": "resin"})
    answer = answers.about_printing(intents.LIGHTER, ASSET, stats)
    [hollow] = answer.suggestions
    _runnable(hollow)
    assert hollow["params"]["hollow"] > 0 and hollow["params"]["printer"]["technology"] == "resin"
    weight = {c["name"]: c for c in hollow["expected"]}["print weight"]
    solid = round(stats["printability"]["print"]["weight_g"], 2)
    assert weight["after"] < weight["before"] == solid


def test_an_fdm_part_is_told_lighter_is_infill_not_an_operation() -> None:
    stats = _stats(trimesh.creation.box(extents=(60.0, 60.0, 60.0)))
    answer = answers.about_printing(intents.LIGHTER, ASSET, stats)
    assert answer.suggestions == [] and "infill" in answer.text
    assert {"name": "infill", "value": 20.0, "unit": "%", "source": "analysis"} in answer.facts


def test_thin_walls_are_offered_the_thickening() -> None:
    stats = _stats(trimesh.creation.box(extents=(40.0, 40.0, 0.4)))
    answer = answers.about_printing(intents.STRONGER, ASSET, stats)
    thicken = next(s for s in answer.suggestions if s["params"].get("thicken"))
    _runnable(thicken)
    thin = {c["name"]: c for c in thicken["expected"]}["thin surface"]
    assert thin["before"] > 0 and thin["after"] == 0.0


def test_smoother_is_the_organic_style_with_four_times_the_faces() -> None:
    stats = _stats(trimesh.creation.box(extents=(20.0, 20.0, 20.0)))
    answer = answers.about_printing(intents.SMOOTHER, ASSET, stats)
    [style] = answer.suggestions
    _runnable(style)
    assert style["params"] == {"style": "organic"}
    assert style["expected"] == [{"name": "faces", "unit": None, "before": 12, "after": 48}]


def test_the_real_effect_is_read_under_the_predicted_names() -> None:
    broken = _stats(_open_sphere())
    repair = suggestions.from_analysis(broken)[0]
    repaired = _stats(trimesh.creation.icosphere(subdivisions=2, radius=10.0))
    assert suggestions.actual(repair, repaired) == [{
        "name": "printability score", "unit": "points",
        "before": broken["printability"]["score"], "after": repaired["printability"]["score"]}]


def test_an_unanalysed_mesh_is_offered_its_analysis() -> None:
    answer = answers.not_analysed(intents.WILL_IT_PRINT, ASSET, None)
    assert [s["operation"] for s in answer.suggestions] == ["analysis"]
    running = answers.not_analysed(intents.WILL_IT_PRINT, ASSET, {"id": "j", "state": "started"})
    assert running.suggestions == [] and "being analysed now" in running.text


def test_an_unknown_question_gets_the_honest_list() -> None:
    answer = answers.unknown()
    assert answer.facts == [] and answer.suggestions == []
    for _, example in intents.CAPABILITIES:
        assert example in answer.text


def test_trends_cite_their_counts_and_offer_the_top_material() -> None:
    rows = [{"category": "material", "name": "wood", "uses": 5, "source": "analytics"},
            {"category": "style", "name": "organic", "uses": 3, "source": "analytics"},
            {"category": "generator", "name": "inflate", "uses": 9, "source": "analytics"}]
    answer = answers.trends(rows, 28, ASSET)
    assert "materials: wood (5)" in answer.text and "generators: inflate (9)" in answer.text
    assert {"name": "style: organic", "value": 3, "unit": "uses",
            "source": "analytics"} in answer.facts
    [material] = answer.suggestions
    _runnable(material)
    assert material["params"] == {"material": "wood"}
    assert answers.trends(rows, 28, None).suggestions == []


def test_an_older_analysis_without_printability_still_gets_answers() -> None:
    """Analyses stored before printability existed hold only the basic figures."""
    stats = {"faces": 12, "watertight": True, "shells": 1, "extents": [1.0, 1.0, 1.0]}
    for intent in (intents.WILL_IT_PRINT, intents.WHY_LOW_SCORE, intents.LIGHTER,
                   intents.STRONGER, intents.SMOOTHER, intents.SMALLER, intents.NEXT_STEPS):
        answer = answers.about_printing(intent, ASSET, stats)
        assert answer.text and all(s["operation"] != "repair" for s in answer.suggestions)


def test_a_t_standing_on_its_stem_is_offered_the_reorientation_with_its_support() -> None:
    stem = trimesh.creation.box(extents=(10, 10, 30))
    stem.apply_translation((0, 0, 15))
    bar = trimesh.creation.box(extents=(50, 10, 10))
    bar.apply_translation((0, 0, 35))
    stats = _stats(trimesh.boolean.union([stem, bar], engine="manifold"))
    answer = answers.about_printing(intents.NEXT_STEPS, ASSET, stats)
    [reorient] = answer.suggestions
    _runnable(reorient)
    assert reorient["operation"] == "optimise" and reorient["params"]["reorient"] is True
    support = {c["name"]: c for c in reorient["expected"]}["support volume"]
    assert support["before"] == stats["printability"]["support"]["volume_mm3"] > 0
    assert support["after"] < support["before"]
    assert answer.text.startswith("First: stand it the other way")


def test_a_penalty_is_said_as_the_fact_that_cites_it() -> None:
    """The text printed a penalty unrounded ('3.95985 points') beside its fact's 3.96."""
    stats = _stats(_open_sphere())
    stats["printability"]["penalties"]["overhangs"] = 3.95985
    answer = answers.about_printing(intents.WILL_IT_PRINT, ASSET, stats)
    facts = {f["name"]: f for f in answer.facts}
    assert facts["penalty: overhangs"]["value"] == 3.96
    assert "3.96 points" in answer.text and "3.95985" not in answer.text
