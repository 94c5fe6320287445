"""Grounded answers: words built only from figures the studio holds, each figure cited.

Every function here is pure: it takes what the read models returned and gives the answer's
text, the facts it used (name, value, unit, source) and its suggestions. A figure appears in
the text only if it is in the facts, so an answer can always be checked against its sources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.assistant import figures, intents, suggestions
from core.assistant.figures import (
    FACES,
    FITS,
    LARGEST,
    OVERHANG,
    SCORE,
    SHELLS,
    SUPPORT,
    THIN,
    WATERTIGHT,
    WEIGHT,
)

ANALYSIS = "analysis"
HISTORY = "history"
JOBS = "jobs"
ANALYTICS = "analytics"
SHAPES = "shape descriptors"
GOOD_SCORE = 80.0
SHOWN_LINES = 10

_PENALTIES = {
    "defects": "the mesh is not a sound solid (open, non-manifold or wound inconsistently)",
    "thin": "walls thinner than the printer's minimum",
    "overhang": "overhangs that need support",
    "fit": "it does not fit the build volume",
    "floating": "parts that float above the plate",
    "small": "it is too small to print",
}


@dataclass
class Answer:
    intent: str
    text: str
    facts: list[dict[str, Any]] = field(default_factory=list)
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    similar: list[dict[str, Any]] = field(default_factory=list)


def unknown() -> Answer:
    listed = "; ".join(f"“{example}”" for _, example in intents.CAPABILITIES)
    return Answer(intents.UNKNOWN, "I can only answer questions about this project's meshes, "
                                   f"history and the studio's trends. Try: {listed}.")


def no_mesh(intent: str) -> Answer:
    return Answer(intent, "This project has no mesh yet: upload or generate one, then ask "
                          "again (or pick a mesh to ask about).")


def not_analysed(intent: str, asset: Mapping[str, Any], job: Mapping[str, Any] | None
                 ) -> Answer:
    """No analysis to ground an answer in: say so, and offer (or await) one."""
    name = str(asset["filename"])
    if job is not None and job.get("state") in ("requested", "started"):
        return Answer(intent, f"{name} is being analysed now ({job['state']}); ask again "
                              "when the analysis is done.",
                      [figures.fact("analysis job", str(job.get("id")), None, JOBS)])
    failed = job is not None and job.get("state") == "failed"
    said = (f"The last analysis of {name} failed ({job.get('error')}). " if failed and job
            else f"{name} has not been analysed yet, so I have no figures for it. ")
    return Answer(intent, said + "Analyse it and ask again.",
                  suggestions=[suggestions.analysis(name)])


def about_printing(intent: str, asset: Mapping[str, Any], stats: Mapping[str, Any]) -> Answer:
    """Will it print, why the score, what next, and make it lighter / stronger / smoother /
    smaller: all read from the mesh's analysis."""
    builders = {intents.LIGHTER: _lighter, intents.STRONGER: _stronger,
                intents.SMOOTHER: _smoother, intents.SMALLER: _smaller,
                intents.NEXT_STEPS: _next_steps}
    return builders.get(intent, _will_it_print)(intent, str(asset["filename"]), stats)


def _cite(stats: Mapping[str, Any], *names: str) -> list[dict[str, Any]]:
    return [figures.analysis_fact(name, stats, ANALYSIS) for name in names
            if figures.read(name, stats) is not None]


def _score(stats: Mapping[str, Any]) -> float | None:
    value = figures.read(SCORE, stats)
    return float(value) if isinstance(value, int | float) else None


def _penalties(stats: Mapping[str, Any]) -> list[tuple[str, float]]:
    report = stats.get("printability")
    given = report.get("penalties") if isinstance(report, Mapping) else None
    if not isinstance(given, Mapping):
        return []
    found = [(str(k), float(v)) for k, v in given.items()
             if isinstance(v, int | float) and v > 0]
    return sorted(found, key=lambda item: -item[1])


def _reasons(stats: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    penalties = _penalties(stats)
    facts = [figures.fact(f"penalty: {name}", points, "points", ANALYSIS)
             for name, points in penalties]
    said = "; ".join(f"{_PENALTIES.get(name, name)} (\u2212{round(points, 2):g} points)"
                     for name, points in penalties)
    return said, facts


def _will_it_print(intent: str, name: str, stats: Mapping[str, Any]) -> Answer:
    score = _score(stats)
    facts = _cite(stats, SCORE, WATERTIGHT, SHELLS, THIN, OVERHANG, SUPPORT, FITS, WEIGHT)
    reasons, penalty_facts = _reasons(stats)
    offered = suggestions.from_analysis(stats)
    if score is None:
        return Answer(intent, f"The analysis of {name} has no printability score.", facts)
    if score >= GOOD_SCORE and not reasons:
        verdict = f"Yes: {name} scores {score:g}/100 and nothing stands in the way."
    elif score >= GOOD_SCORE:
        verdict = f"Yes, most likely: {name} scores {score:g}/100. Points lost to: {reasons}."
    elif intent == intents.WHY_LOW_SCORE or score < 60:
        verdict = (f"{'Not as it is' if score < 60 else 'With care'}: {name} scores "
                   f"{score:g}/100. Points lost to: {reasons or 'nothing the analysis names'}.")
    else:
        verdict = f"With care: {name} scores {score:g}/100. Points lost to: {reasons}."
    return Answer(intent, verdict + _offer(offered) + _unsupported(stats),
                  facts + penalty_facts, offered)


def _next_steps(intent: str, name: str, stats: Mapping[str, Any]) -> Answer:
    offered = suggestions.from_analysis(stats)
    score = _score(stats)
    facts = _cite(stats, SCORE)
    if not offered:
        said = (f"{name} scores {score:g}/100 and the analysis proposes nothing to change; "
                "export it for your slicer, or try a style or a material.") if score is not None \
            else f"The analysis of {name} proposes nothing to change."
        return Answer(intent, said + _unsupported(stats), facts)
    first = offered[0]
    gain = next((c for c in first["expected"] if c["name"] == SCORE), None)
    said = f"First: {first['title'].lower()} ({first['reason']})"
    if gain is not None and score is not None:
        said += f", which should take the score from {score:g} to {_g(gain['after'])}"
    return Answer(intent, said + "." + _offer(offered[1:], "Then") + _unsupported(stats),
                  facts, offered)


def _lighter(intent: str, name: str, stats: Mapping[str, Any]) -> Answer:
    facts = _cite(stats, WEIGHT, SCORE)
    offered = [s for s in suggestions.from_analysis(stats) if s["params"].get("hollow")]
    report = stats.get("printability")
    profile = report.get("profile") if isinstance(report, Mapping) else None
    technology = profile.get("technology") if isinstance(profile, Mapping) else None
    infill = profile.get("infill") if isinstance(profile, Mapping) else None
    weight = figures.read(WEIGHT, stats)
    if offered:
        hollowed = next(c for c in offered[0]["expected"] if c["name"] == WEIGHT)
        said = (f"Hollow it: {name} needs about {_g(weight)} g as a solid part and about "
                f"{_g(hollowed['after'])} g hollowed.")
        return Answer(intent, said, facts, offered)
    if technology == "fdm" and isinstance(infill, int | float):
        facts.append(figures.fact("infill", round(100 * float(infill), 1), "%", ANALYSIS))
        said = (f"{name} would weigh about {_g(weight)} g printed with {100 * infill:g} % "
                "infill: an FDM print is already hollow inside, so lowering the infill in "
                "your slicer is what makes it lighter. The studio hollows resin parts only.")
    else:
        said = (f"{name} would weigh about {_g(weight)} g; the analysis finds no hollowing worth "
                "doing (it needs a sound solid large enough to keep its walls).")
    return Answer(intent, said, facts)


def _stronger(intent: str, name: str, stats: Mapping[str, Any]) -> Answer:
    report = stats.get("printability")
    wall = report.get("wall") if isinstance(report, Mapping) else None
    minimum = wall.get("min_mm") if isinstance(wall, Mapping) else None
    limit = figures.read(THIN, stats)
    facts = _cite(stats, THIN, SCORE)
    if isinstance(minimum, int | float):
        facts.append(figures.fact("thinnest wall", float(minimum), "mm", ANALYSIS))
    offered = [s for s in suggestions.from_analysis(stats)
               if s["params"].get("thicken") or s["operation"] == "repair"]
    if offered:
        said = (f"{limit:g} % of the surface of {name} is thinner than the printer's minimum "
                "wall: thicken it." if isinstance(limit, int | float) and limit > 0
                else f"{name} is not a sound solid; repair it first.")
        return Answer(intent, said + _offer(offered), facts, offered)
    said = f"Its walls are at least as thick as the printer needs ({name}"
    said += f": thinnest {minimum:.2f} mm)." if isinstance(minimum, int | float) else ")."
    return Answer(intent, said + " For more strength print with more perimeters or infill "
                                 "(slicer settings); no mesh operation would add any.", facts)


def _smoother(intent: str, name: str, stats: Mapping[str, Any]) -> Answer:
    offered = suggestions.smoothing(stats)
    facts = _cite(stats, FACES)
    if offered is None:
        return Answer(intent, f"The analysis of {name} has no faces to smooth.", facts)
    after = offered["expected"][0]["after"]
    return Answer(intent, f"Apply the organic style: {name} has {stats.get('faces')} faces and "
                          f"would have about {after} after one subdivision, smoothed.",
                  facts, [offered])


def _smaller(intent: str, name: str, stats: Mapping[str, Any]) -> Answer:
    facts = _cite(stats, LARGEST, FITS)
    offered = [s for s in suggestions.from_analysis(stats) if s["params"].get("scale_to_fit")]
    largest = figures.read(LARGEST, stats)
    if offered:
        return Answer(intent, f"{name} is {_g(largest)} mm at its largest and does not fit the "
                              "printer; scaled down to fit it does." + _offer(offered),
                      facts, offered)
    return Answer(intent, f"{name} is {_g(largest)} mm at its largest and fits the printer. The "
                          "studio scales meshes down only to fit the build volume; to make "
                          "it smaller still, scale its object in the scene.", facts)


def _g(value: Any) -> str:
    """A figure as the text says it; an analysis without it (an older one) says so."""
    return f"{value:g}" if isinstance(value, int | float) else "?"


def _offer(offered: Sequence[Mapping[str, Any]], lead: str = "Suggested") -> str:
    if not offered:
        return ""
    return f" {lead}: " + "; ".join(str(s["title"]).lower() for s in offered) + "."


def _unsupported(stats: Mapping[str, Any]) -> str:
    said = suggestions.not_carried_out(stats)
    return (" Also (no studio operation does this): " + "; ".join(said) + ".") if said else ""


def changes_since(subject: str | None, version: Mapping[str, Any] | None,
                  lines: Sequence[Mapping[str, Any]], known: Sequence[str]) -> Answer:
    """The timeline since a named version (or the latest one), in readable lines."""
    intent = intents.CHANGES_SINCE
    if version is None:
        if subject:
            listed = ", ".join(f"“{k}”" for k in known[-5:]) or "none yet"
            return Answer(intent, f"No version is named like “{subject}”. Versions: {listed}.")
        return Answer(intent, "This project has no tagged version yet; tag one to compare "
                              "against later.")
    facts = [figures.fact("version", str(version["message"]), None, HISTORY),
             figures.fact("changes since", len(lines), None, HISTORY)]
    if not lines:
        return Answer(intent, f"Nothing has changed since the version “{version['message']}”.",
                      facts)
    shown = [f"{line.get('actor_name') or line.get('actor')}: {line.get('summary')}"
             for line in lines[-SHOWN_LINES:]]
    more = f" (the last {SHOWN_LINES} shown)" if len(lines) > SHOWN_LINES else ""
    return Answer(intent, f"{len(lines)} changes since the version “{version['message']}”"
                          f"{more}: " + "; ".join(shown) + ".", facts)


def who_changed(subject: str | None, changes: Sequence[Mapping[str, Any]]) -> Answer:
    """Who last changed the objects named like ``subject``, newest first."""
    intent = intents.WHO_CHANGED
    if not subject:
        return Answer(intent, "Which object? Name it, e.g. who changed “Teapot”?")
    if not changes:
        return Answer(intent, f"No object named like “{subject}” has been changed in this "
                              "project's scene.")
    facts = [figures.fact(f"{c['name']} changed by", str(c.get("actor_name") or c["actor"]),
                          None, HISTORY) for c in changes]
    said = "; ".join(f"{c.get('actor_name') or c['actor']} ({c['summary']}, "
                     f"{_when(c['at'])})" for c in changes)
    return Answer(intent, f"Latest changes to “{subject}”: {said}.", facts)


def _when(at: Any) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if hasattr(at, "strftime") else str(at)


def shape_missing(asset: Mapping[str, Any]) -> Answer:
    name = str(asset["filename"])
    return Answer(intents.SIMILAR, f"{name} was analysed before the studio kept shapes; analyse "
                                   "it again to compare it with other designs.",
                  suggestions=[suggestions.analysis(name)])


def similar(asset: Mapping[str, Any], neighbours: Sequence[Mapping[str, Any]],
            compared: int) -> Answer:
    intent = intents.SIMILAR
    facts = [figures.fact("meshes compared", compared, None, SHAPES)]
    if not neighbours:
        return Answer(intent, f"No other analysed mesh you can see is like {asset['filename']} "
                              "yet.", facts)
    listed = "; ".join(f"{n['filename']} in “{n['project_name']}” (distance "
                       f"{n['distance']:.3f})" for n in neighbours)
    facts += [figures.fact(f"distance to {n['filename']}", n["distance"], None, SHAPES)
              for n in neighbours]
    unpictured = [str(n["filename"]) for n in neighbours if not n.get("thumbnail_url")]
    note = "" if not unpictured else (
        f" No thumbnail yet for {', '.join(unpictured)}: analyse "
        f"{'it' if len(unpictured) == 1 else 'them'} again to draw one.")
    return Answer(intent, f"Closest in shape to {asset['filename']} among {compared} meshes "
                          f"you can see: {listed}.{note}", facts,
                  similar=[dict(n) for n in neighbours])


def trends(rows: Sequence[Mapping[str, Any]], days: int,
           asset: Mapping[str, Any] | None) -> Answer:
    """The styles, materials and generators used most in the last ``days`` days."""
    intent = intents.TRENDS
    if not rows:
        return Answer(intent, f"No styles, materials or generations in the last {days} days.")
    facts = [figures.fact(f"{r['category']}: {r['name']}", int(r["uses"]), "uses",
                          str(r.get("source", ANALYTICS))) for r in rows]
    parts = []
    for category in ("style", "material", "generator"):
        top = [r for r in rows if r["category"] == category][:3]
        if top:
            parts.append(f"{category}s: " + ", ".join(f"{r['name']} ({r['uses']})" for r in top))
    offered = []
    top_material = next((r for r in rows if r["category"] == "material"), None)
    if asset is not None and top_material is not None:
        offered.append(suggestions.material(
            str(top_material["name"]), f"the material used most in the last {days} days"))
    return Answer(intent, f"Most used in the last {days} days — " + "; ".join(parts) + ".",
                  facts, offered)
