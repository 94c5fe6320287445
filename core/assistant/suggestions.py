"""Suggestions the assistant makes: only jobs the mesh worker runs, each with its prediction.

The printability analysis already proposes and prices actions (its ``recommendations``: the
score each leaves, the support a better orientation needs, the resin a hollow shell saves).
Each proposal the studio can carry out becomes a suggestion naming the mesh route that does it
(``repair``, ``optimise`` with the proposal's switch, ``style``, ``material``) and the exact
body that route takes, so applying one is an ordinary job. A proposal no operation carries out
(enlarging a part too small to print: the optimiser only scales down) is said in the answer's
text and never offered as an action.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from core.assistant import figures
from core.assistant.figures import FACES, LARGEST, SCORE, SUPPORT, THIN, WEIGHT
from core.contracts.mesh_params import MAX_STYLE_FACES, check_mesh_params
from core.events.job_kinds import MESH_ANALYSE, MESH_OPERATIONS

ANALYSIS = "analysis"
"""The one suggestion that is no mesh-making operation: analyse a mesh not analysed yet."""

OPERATIONS = frozenset({*MESH_OPERATIONS, ANALYSIS})
_SUPPORT_IN_REASON = re.compile(r"support from (?P<before>[\d.]+) to (?P<after>[\d.]+) mm³")
_TITLES = {
    "repair": "Repair the mesh",
    "reorient": "Stand it the other way (reorient for less support)",
    "scale": "Scale it down to fit the printer",
    "thicken": "Thicken the walls that are too thin",
    "hollow": "Hollow it out, with drain holes",
}
# Each proposal's optimiser switch; the optimiser reorients by default, so the other
# proposals turn that off to do only what they say.
_OPTIMISER_SWITCHES: dict[str, dict[str, Any]] = {
    "reorient": {"reorient": True},
    "scale": {"reorient": False, "scale_to_fit": True},
    "thicken": {"reorient": False, "thicken": True},
}

Stats = Mapping[str, Any]


def kind_of(operation: str) -> str:
    """The job kind a suggestion's operation runs."""
    return MESH_ANALYSE if operation == ANALYSIS else MESH_OPERATIONS[operation]


def from_analysis(stats: Stats) -> list[dict[str, Any]]:
    """The analysis's recommendations the studio can carry out, best expected gain first."""
    report = stats.get("printability")
    if not isinstance(report, Mapping):
        return []
    made = [_suggestion(rec, stats, report) for rec in report.get("recommendations") or []
            if isinstance(rec, Mapping)]
    return [s for s in made if s is not None]


def not_carried_out(stats: Stats) -> list[str]:
    """The reasons of the recommendations no operation carries out, to be said in words."""
    report = stats.get("printability")
    recs = report.get("recommendations") if isinstance(report, Mapping) else None
    return [str(rec.get("reason")) for rec in recs or []
            if isinstance(rec, Mapping) and rec.get("action") not in (*_TITLES, None)]


def _suggestion(rec: Mapping[str, Any], stats: Stats,
                report: Mapping[str, Any]) -> dict[str, Any] | None:
    action = str(rec.get("action"))
    if action not in _TITLES:
        return None
    score = report.get("score")
    expected = [figures.change(SCORE, score, rec.get("expected_score"))]
    if action == "repair":
        operation, params = "repair", {}
    else:
        operation = "optimise"
        params = {"units": report.get("units", "mm"), "printer": report.get("profile")}
        if action == "hollow":
            given = rec.get("params")
            given = given if isinstance(given, Mapping) else {}
            params |= {"reorient": False, "hollow": given.get("wall_mm"),
                       "drain_holes": given.get("drain_holes", 2)}
            expected.append(figures.change(WEIGHT, figures.read(WEIGHT, stats),
                                           rec.get("expected_weight_g")))
        else:
            params |= _OPTIMISER_SWITCHES[action]
        if action == "reorient":
            found = _SUPPORT_IN_REASON.search(str(rec.get("reason", "")))
            if found:
                expected.append(figures.change(SUPPORT, float(found["before"]),
                                               float(found["after"])))
        if action == "thicken":
            expected.append(figures.change(THIN, figures.read(THIN, stats), 0.0))
        if action == "scale":
            factor = _at_factor(rec)
            largest = figures.read(LARGEST, stats)
            if factor is not None and isinstance(largest, int | float):
                expected.append(figures.change(LARGEST, largest, largest * factor))
    return make(_TITLES[action], operation, params, str(rec.get("reason", "")), expected)


def _at_factor(rec: Mapping[str, Any]) -> float | None:
    params = rec.get("params")
    factor = params.get("factor") if isinstance(params, Mapping) else None
    return float(factor) if isinstance(factor, int | float) else None


def smoothing(stats: Stats) -> dict[str, Any] | None:
    """The organic style: smoothed and loop-subdivided once, which quadruples the faces
    (the style skips the subdivision past its face limit)."""
    faces = stats.get("faces")
    if not isinstance(faces, int) or faces <= 0:
        return None
    after = faces * 4 if faces * 4 <= MAX_STYLE_FACES else faces
    return make("Smooth it (organic style)", "style", {"style": "organic"},
                "the organic style smooths the surface and subdivides it once, so facets "
                "and steps soften", [figures.change(FACES, faces, after)])


def material(name: str, reason: str) -> dict[str, Any]:
    return make(f"Give it the {name} material", "material", {"material": name}, reason, [])


def analysis(filename: str) -> dict[str, Any]:
    return make(f"Analyse {filename}", ANALYSIS, {},
                "every figure the assistant gives comes from the mesh's analysis", [])


def make(title: str, operation: str, params: dict[str, Any], reason: str,
         expected: list[dict[str, Any]]) -> dict[str, Any]:
    """A suggestion, its parameters checked now as the route will check them: one the
    worker would refuse is a defect here, not something to offer."""
    if operation != ANALYSIS:
        check_mesh_params(kind_of(operation), params)
    return {"title": title, "operation": operation, "params": params, "reason": reason,
            "expected": expected}


def actual(suggestion: Mapping[str, Any], made: Stats) -> list[dict[str, Any]]:
    """The real effect: each expected figure's ``before`` beside the value the new mesh's
    analysis gives (``made``), under the same names."""
    out = []
    for expected in suggestion.get("expected") or []:
        name = expected.get("name") if isinstance(expected, Mapping) else None
        if name in figures.READERS:
            out.append(figures.change(name, expected.get("before"), figures.read(name, made)))
    return out
