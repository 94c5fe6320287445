"""The assistant's rules map plain-English questions, phrased many ways, to intents."""

from __future__ import annotations

import pytest

from core.assistant import intents
from core.assistant.intents import parse

PHRASINGS = {
    intents.WILL_IT_PRINT: [
        "will this print?", "Will it print", "is it printable?", "can I 3D print this",
        "is the mesh ok?", "is my model watertight", "ready to print?",
        "does it have holes", "will my slicer cope with it", "Is this broken?",
    ],
    intents.WHY_LOW_SCORE: [
        "why is the score low?", "Why is my printability score so bad",
        "explain the score", "what's wrong with it?", "low score, why?",
        "why such a poor rating", "what problems does it have",
    ],
    intents.LIGHTER: [
        "make it lighter", "can it weigh less?", "reduce the weight", "hollow it out",
        "use less resin", "make it cheaper to print", "save material please",
    ],
    intents.STRONGER: [
        "make it stronger", "it's too fragile", "thicken the walls", "make it sturdier",
        "will it break?", "reinforce it", "the thin walls worry me",
    ],
    intents.SMOOTHER: [
        "make it smoother", "it looks too faceted", "smooth the surface", "less blocky please",
        "make it more organic", "can you round it off, it's jagged",
    ],
    intents.SMALLER: [
        "make it smaller", "shrink it", "scale it down", "it's too big",
        "it doesn't fit my printer", "will it fit on the bed?", "reduce the size",
    ],
    intents.CHANGES_SINCE: [
        "what changed since version “first”?", "what has changed since v1",
        "changes since the last version", "what's new since yesterday's tag",
        "show me the recent changes", "what's changed?",
    ],
    intents.WHO_CHANGED: [
        "who changed the Teapot?", "who moved cube", "who edited 'lamp'?",
        "who deleted the chair", "by whom was it renamed", "who made this change",
    ],
    intents.NEXT_STEPS: [
        "what should I do next?", "what next", "any recommendations?",
        "how can I improve it", "give me some advice", "optimise it", "what do I do now",
    ],
    intents.SIMILAR: [
        "show me similar designs", "find designs like this", "anything that resembles this?",
        "are there similar models", "lookalikes?", "comparable shapes",
    ],
    intents.TRENDS: [
        "what are the trends?", "which styles are popular", "what's trending",
        "most used materials", "what do people use most commonly",
    ],
    intents.UNKNOWN: [
        "tell me a joke", "hello", "what's the weather in Athens", "42", "ok thanks",
    ],
}


@pytest.mark.parametrize(("expected", "question"),
                         [(name, q) for name, qs in PHRASINGS.items() for q in qs])
def test_phrasings_map_to_their_intent(expected: str, question: str) -> None:
    assert parse(question).name == expected


def test_every_intent_has_an_example_that_parses_to_it() -> None:
    assert {name for name, _ in intents.CAPABILITIES} == \
        {name for name, _ in intents.INTENTS}
    for name, example in intents.CAPABILITIES:
        assert parse(example).name == name


@pytest.mark.parametrize(("question", "subject"), [
    ("what changed since version “first draft”?", "first draft"),
    ('what changed since "v2"', "v2"),
    ("what changed since first draft?", "first draft"),
    ("what's changed?", None),
    ("changes since the last version", None),
    ("who changed “Teapot”?", "Teapot"),
    ("who moved the big cube?", "big cube"),
    ("who changed it?", None),
    ("will it print?", None),
])
def test_history_questions_keep_what_they_name(question: str, subject: str | None) -> None:
    assert parse(question).subject == subject


def test_whitespace_and_case_do_not_matter() -> None:
    assert parse("  WILL\n\tTHIS   PRINT  ").name == intents.WILL_IT_PRINT
