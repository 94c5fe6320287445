"""Plain-English questions to intents, by rules: the assistant must be useful with no model.

Each intent is a list of patterns tried in the order of :data:`INTENTS` (the specific before
the general: "why is the score low" before "will it print"); the first that matches wins. A
question that matches none is ``unknown`` and is answered with :data:`CAPABILITIES`, the
honest list of what the assistant can answer. Words the answer needs (a version's name, an
object's name) are taken from the question as the user wrote them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_QUESTION_CHARS = 2000

WILL_IT_PRINT = "will_it_print"
WHY_LOW_SCORE = "why_low_score"
LIGHTER = "lighter"
STRONGER = "stronger"
SMOOTHER = "smoother"
SMALLER = "smaller"
CHANGES_SINCE = "changes_since"
WHO_CHANGED = "who_changed"
NEXT_STEPS = "next_steps"
SIMILAR = "similar_designs"
TRENDS = "trends"
UNKNOWN = "unknown"


def _any(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


_OPEN, _CLOSE = "\"'\u201c\u2018\u00ab", "\"'\u201d\u2019\u00bb"
_QUOTED = f"[{_OPEN}](?P<quoted>[^{_CLOSE}]{{1,200}})[{_CLOSE}]"

INTENTS: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...] = (
    (WHO_CHANGED, _any(
        r"\bwho\b.*\b(chang|edit|mov|modif|touch|renam|delet|add|made|updat|broke|styl|"
        r"rotat|scal|recolou?r)\w*",
        r"\b(by whom|whose (change|edit))\b",
        r"\b(last|latest) (edit|change)s? (to|of|on)\b")),
    (CHANGES_SINCE, _any(
        r"\b(what|which)\b.*\b(changed|different|new|happened|edited)\b.*\b(since|after)\b",
        r"\b(changes|diff|difference|differences|history)\b.*\b(since|after|from)\b",
        r"\bsince (the )?(version|tag|last version|v\d)",
        r"\bwhat('s| has| have)? changed\b",
        r"\b(recent|latest) (changes|edits|activity)\b")),
    (SIMILAR, _any(
        r"\b(similar|alike|resembl\w*|like this one|like it|lookalike|look-alike|comparable)\b"
        r".*\b(design|model|mesh|shape|part|object|ones?|things?)s?\b",
        r"\b(similar|alike|resembl\w*|comparable|lookalikes?)\b",
        r"\b(designs?|models?|meshes|shapes?) like (this|mine|it)\b")),
    (TRENDS, _any(
        r"\btrend\w*\b", r"\b(popular|most used|most-used|common(est)?|favourite|favorite|"
        r"in fashion|in vogue|everyone using|people use)\b")),
    (WHY_LOW_SCORE, _any(
        r"\bwhy\b.*\b(score|rating|grade|printability)\b",
        r"\b(score|rating|grade)\b.*\b(low|bad|poor|so low|only|down|dropped)\b",
        r"\b(low|bad|poor)\b.*\b(score|rating|grade)\b",
        r"\bwhat('s| is) (wrong|the problem|the issue)\b",
        r"\bwhat (problems|issues|defects)\b",
        r"\bexplain (the|my|its) score\b")),
    (LIGHTER, _any(
        r"\b(lighter|less heavy|less weight|lose weight|weigh(s)? less|reduce (the )?weight|"
        r"save (material|resin|filament|plastic)|less (material|resin|filament|plastic)|"
        r"hollow\w*|cheaper)\b")),
    (STRONGER, _any(
        r"\b(stronger|sturdier|more robust|robust|less fragile|fragile|thicker|thicken\w*|"
        r"reinforce\w*|strength(en)?|break|snap|durable|tougher|thin walls?)\b")),
    (SMOOTHER, _any(
        r"\b(smoother|smooth\w*|less (jagged|faceted|blocky|rough)|jagged|faceted|blocky|"
        r"rough|organic|softer|rounder|polish\w*)\b")),
    (SMALLER, _any(
        r"\b(smaller|shrink\w*|scale (it )?down|downscal\w*|too (big|large|tall|wide)|"
        r"doesn'?t fit|does not fit|won'?t fit|will not fit|fit (on|in) (the |my )?"
        r"(bed|plate|printer|build)|reduce (the )?size|less big|tinier)\b")),
    (NEXT_STEPS, _any(
        r"\b(what|which)\b.*\b(next|should i|do i do|now|improve|better|fix first)\b",
        r"\b(next steps?|to-?do|suggest\w*|recommend\w*|advice|advise|improve\w*|"
        r"optimi[sz]e\w*|how can i (make|improve|fix)|help me|tips?)\b")),
    (WILL_IT_PRINT, _any(
        r"\bprint(able|ability|ed|ing|s)?\b",
        r"\b(slice|slicer|3d[- ]?print\w*|manufactur\w*|watertight|manifold|broken|"
        r"holes?|ready to print|ready)\b",
        r"\b(is|are) (it|this|the mesh|my (mesh|model)) (ok|okay|fine|good|valid|sound)\b")),
)

CAPABILITIES: tuple[tuple[str, str], ...] = (
    (WILL_IT_PRINT, "will this print?"),
    (WHY_LOW_SCORE, "why is the score low?"),
    (LIGHTER, "make it lighter"),
    (STRONGER, "make it stronger"),
    (SMOOTHER, "make it smoother"),
    (SMALLER, "make it smaller (to fit the printer)"),
    (CHANGES_SINCE, "what changed since version “…”?"),
    (WHO_CHANGED, "who changed “object name”?"),
    (NEXT_STEPS, "what should I do next?"),
    (SIMILAR, "show me similar designs"),
    (TRENDS, "what are the trends?"),
)
"""Every intent with an example question, for the answer to a question the rules miss."""


@dataclass(frozen=True)
class Intent:
    name: str
    subject: str | None = None  # a version or an object, as the user named it


def parse(text: str) -> Intent:
    """The intent of ``text``; ``subject`` is what a history question is about."""
    question = " ".join(text.split())
    for name, patterns in INTENTS:
        if any(p.search(question) for p in patterns):
            return Intent(name, parse_subject(name, question))
    return Intent(UNKNOWN)


def parse_subject(name: str, question: str) -> str | None:
    """The version or object a history question names, as the user wrote it."""
    question = " ".join(question.split())
    if name not in (CHANGES_SINCE, WHO_CHANGED):
        return None
    quoted = re.search(_QUOTED, question)
    if quoted:
        return quoted["quoted"].strip()
    if name == CHANGES_SINCE:
        found = re.search(r"\b(?:since|after|from)\s+(?:the\s+)?(?:version\s+|tag\s+)?"
                          r"(?P<what>[^?!.]+)", question, re.IGNORECASE)
    else:
        found = re.search(r"\b(?:chang|edit|mov|modif|touch|renam|delet|add|made|updat|broke|"
                          r"styl|rotat|scal|recolou?r)\w*\s+(?:the\s+)?(?P<what>[^?!.]+)",
                          question, re.IGNORECASE)
    what = found["what"].strip() if found else ""
    if what.lower() in ("", "it", "this", "that", "last version", "the last version"):
        return None
    return what[:200]
