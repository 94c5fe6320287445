"""One question to one grounded answer: the intent, the reads it needs, the answer's words.

Only the reads an intent needs are made (a history question loads no analysis), each one
query on a read model, so an answer costs a few milliseconds of database work and no
geometry. The language model, where one is configured, may pick the intent of a question the
rules miss and rephrase the answer; the facts and suggestions are always the rules'.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from uuid import UUID

from core.assistant import answers, intents, shapes
from core.assistant.answers import Answer
from core.assistant.llm import LanguageModel
from core.assistant.reads import TREND_WEEKS, AssistantReads
from core.events.job_kinds import MESH_OPERATIONS

RULES = "rules"
LANGUAGE_MODEL = "language model"
SIMILAR_SHOWN = 5
_ABOUT_A_MESH = frozenset({intents.WILL_IT_PRINT, intents.WHY_LOW_SCORE, intents.LIGHTER,
                           intents.STRONGER, intents.SMOOTHER, intents.SMALLER,
                           intents.NEXT_STEPS})


async def compose(reads: AssistantReads, question: str, project_id: UUID,
                  asset: Mapping[str, Any] | None, user: str,
                  model: LanguageModel | None = None,
                  latest_job: Any = None
                  ) -> tuple[Answer, str, Mapping[str, Any] | None]:
    """The answer to ``question``, who phrased it (:data:`RULES` or :data:`LANGUAGE_MODEL`)
    and the mesh it is about (its suggestions act on that mesh). ``asset`` is the mesh asked
    about (None: the project's newest, for the questions about a mesh); ``latest_job`` is an
    async function giving a mesh's latest analysis job."""
    intent = intents.parse(question)
    clock = asyncio.get_running_loop().time
    ends = clock() + model.timeout_s if model is not None else 0.0
    if intent.name == intents.UNKNOWN and model is not None:
        guessed = await model.intent(question)
        if guessed is not None:
            intent = intents.Intent(guessed, intents.parse_subject(guessed, question))
    mesh = asset
    if mesh is None and intent.name in _ABOUT_A_MESH | {intents.SIMILAR, intents.TRENDS}:
        mesh = await reads.latest_mesh(project_id)
    answer = await _answer(reads, intent, project_id, mesh, user, latest_job)
    await _on_the_scene(reads, project_id, mesh, answer)
    if model is not None and intent.name != intents.UNKNOWN and clock() < ends:
        # One timeout for the question, not one per call: the asker waits that long at most.
        phrased = await replace(model, timeout_s=ends - clock()).phrase(question, answer)
        if phrased is not None:
            answer.text = phrased
            return answer, LANGUAGE_MODEL, mesh
    return answer, RULES, mesh


async def _answer(reads: AssistantReads, intent: intents.Intent, project_id: UUID,
                  mesh: Mapping[str, Any] | None, user: str, latest_job: Any) -> Answer:
    if intent.name == intents.UNKNOWN:
        return answers.unknown()
    if intent.name == intents.CHANGES_SINCE:
        version, known = await reads.version_named(project_id, intent.subject)
        lines = await reads.timeline_since(project_id, version["tagged_at_position"]) \
            if version is not None else []
        return answers.changes_since(intent.subject, version, lines, known)
    if intent.name == intents.WHO_CHANGED:
        changes = await reads.object_changes(project_id, intent.subject) \
            if intent.subject else []
        return answers.who_changed(intent.subject, changes)
    if intent.name == intents.TRENDS:
        return answers.trends(await reads.trends(), 7 * TREND_WEEKS, mesh)
    if mesh is None:
        return answers.no_mesh(intent.name)
    analysis = await reads.analysis(UUID(str(mesh["asset_id"])))
    if analysis is None:
        job = await latest_job(UUID(str(mesh["asset_id"]))) if latest_job else None
        return answers.not_analysed(intent.name, mesh, job)
    stats = analysis["stats"]
    if intent.name == intents.SIMILAR:
        own = stats.get("shape")
        if not shapes.usable(own):
            return answers.shape_missing(mesh)
        candidates = await reads.visible_shapes(user, UUID(str(mesh["asset_id"])))
        found = shapes.nearest(own, candidates, SIMILAR_SHOWN)
        return answers.similar(mesh, [_plain(row) for row in found], len(candidates))
    assert intent.name in _ABOUT_A_MESH
    return answers.about_printing(intent.name, mesh, stats)


async def _on_the_scene(reads: AssistantReads, project_id: UUID,
                        mesh: Mapping[str, Any] | None, answer: Answer) -> None:
    """Where a scene object shows the mesh, its suggestions name it (``object_id``), as the
    workspace's own buttons do: the object then shows the job's result for everyone, and
    ``POST /jobs/{id}/undo`` puts the mesh back."""
    makers = [s for s in answer.suggestions if s["operation"] in MESH_OPERATIONS]
    mesh_id = mesh["asset_id"] if mesh is not None else None
    if not makers or mesh_id is None:
        return
    shown = await reads.object_showing(project_id, UUID(str(mesh_id)))
    if shown is not None:
        for suggestion in makers:
            suggestion["params"] = suggestion["params"] | {"object_id": shown}


def _plain(row: Mapping[str, Any]) -> dict[str, Any]:
    """A neighbour row as JSON: ids as text."""
    return {key: str(value) if isinstance(value, UUID) else value for key, value in row.items()}
