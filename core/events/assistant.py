"""The ``Exchange`` aggregate: one question to the design assistant, its answer, and the
suggestions of that answer someone applied.

One aggregate per question, not one per project: two collaborators asking at once never
clash on an aggregate version, and applying a suggestion loads one small exchange rather than
the project's whole conversation. The answer is stored as given (text, facts, suggestions), so
the conversation reads back exactly as it was answered, whatever the mesh or the rules became.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from core.errors import NotFound

ASSISTANT_ACTOR = "assistant"


class Exchange(Aggregate):
    class Asked(Aggregate.Created):
        project_id: str
        text: str
        asset_id: str | None
        actor: str

    class Answered(Aggregate.Event):
        intent: str
        answer: str
        facts: list[dict[str, Any]]
        suggestions: list[dict[str, Any]]
        similar: list[dict[str, Any]]
        phrased_by: str
        actor: str

    class SuggestionApplied(Aggregate.Event):
        suggestion_id: str
        title: str
        job_id: str
        actor: str

    @event(Asked)
    def __init__(self, project_id: str, text: str, asset_id: str | None, actor: str) -> None:
        self.project_id = project_id
        self.text = text
        self.asset_id = asset_id
        self.asked_by = actor
        self.suggestions: dict[str, dict[str, Any]] = {}
        self.applied: dict[str, list[str]] = {}

    def answer(self, intent: str, answer: str, facts: list[dict[str, Any]],
               suggestions: list[dict[str, Any]], similar: list[dict[str, Any]],
               phrased_by: str) -> None:
        self._answered(intent=intent, answer=answer, facts=facts, suggestions=suggestions,
                       similar=similar, phrased_by=phrased_by, actor=ASSISTANT_ACTOR)

    def suggestion(self, suggestion_id: str) -> dict[str, Any]:
        found = self.suggestions.get(suggestion_id)
        if found is None:
            raise NotFound(f"suggestion {suggestion_id} not found")
        return found

    def record_applied(self, suggestion_id: str, job_id: UUID, actor: str) -> None:
        title = str(self.suggestion(suggestion_id)["title"])
        self._suggestion_applied(suggestion_id=suggestion_id, title=title, job_id=str(job_id),
                                 actor=actor)

    @event(Answered)
    def _answered(self, intent: str, answer: str, facts: list[dict[str, Any]],
                  suggestions: list[dict[str, Any]], similar: list[dict[str, Any]],
                  phrased_by: str, actor: str) -> None:
        self.suggestions = {str(s["id"]): s for s in suggestions}

    @event(SuggestionApplied)
    def _suggestion_applied(self, suggestion_id: str, title: str, job_id: str,
                            actor: str) -> None:
        self.applied.setdefault(suggestion_id, []).append(job_id)
