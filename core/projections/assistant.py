"""The design assistant's conversation per project, and its suggestions with the jobs that
applied them: what the chat panel lists and what the apply route looks suggestions up in."""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any

from psycopg.types.json import Jsonb

from core.events.assistant import Exchange
from core.projections.readmodel import ReadModel, Statement


class AssistantReadModel(ReadModel):
    name = "assistant"
    tables = ("rm_assistant_messages", "rm_assistant_suggestions")
    create_sql = (
        "CREATE TABLE IF NOT EXISTS rm_assistant_messages ("
        " id uuid PRIMARY KEY, project_id uuid NOT NULL, asset_id uuid,"
        " asked_by text NOT NULL, at timestamptz NOT NULL, question text NOT NULL,"
        " position bigint NOT NULL, intent text, answer text,"
        " facts jsonb NOT NULL DEFAULT '[]'::jsonb,"
        " similar_designs jsonb NOT NULL DEFAULT '[]'::jsonb, phrased_by text)",
        "CREATE INDEX IF NOT EXISTS rm_assistant_messages_project"
        " ON rm_assistant_messages (project_id, position)",
        "CREATE TABLE IF NOT EXISTS rm_assistant_suggestions ("
        " id text PRIMARY KEY, message_id uuid NOT NULL, project_id uuid NOT NULL,"
        " ordinal int NOT NULL, body jsonb NOT NULL, job_id uuid, applied_by text,"
        " applied_at timestamptz)",
        "CREATE INDEX IF NOT EXISTS rm_assistant_suggestions_message"
        " ON rm_assistant_suggestions (message_id, ordinal)",
    )

    @singledispatchmethod
    def statements(self, event: Any, position: int) -> list[Statement]:
        return []

    @statements.register
    def _(self, e: Exchange.Asked, position: int) -> list[Statement]:
        return [(
            "INSERT INTO rm_assistant_messages (id, project_id, asset_id, asked_by, at,"
            " question, position) VALUES (%(id)s, %(project)s, %(asset)s, %(actor)s, %(at)s,"
            " %(text)s, %(position)s) ON CONFLICT (id) DO NOTHING",
            {"id": e.originator_id, "project": e.project_id, "asset": e.asset_id,
             "actor": e.actor, "at": e.timestamp, "text": e.text, "position": position},
        )]

    @statements.register
    def _(self, e: Exchange.Answered, position: int) -> list[Statement]:
        answered: list[Statement] = [(
            "UPDATE rm_assistant_messages SET intent = %(intent)s, answer = %(answer)s,"
            " facts = %(facts)s, similar_designs = %(similar)s, phrased_by = %(by)s,"
            " position = %(position)s WHERE id = %(id)s",
            {"id": e.originator_id, "intent": e.intent, "answer": e.answer,
             "facts": Jsonb(e.facts), "similar": Jsonb(e.similar), "by": e.phrased_by,
             "position": position},
        )]
        return answered + [(
            "INSERT INTO rm_assistant_suggestions (id, message_id, project_id, ordinal, body)"
            " SELECT %(sid)s, id, project_id, %(ordinal)s, %(body)s FROM rm_assistant_messages"
            " WHERE id = %(id)s ON CONFLICT (id) DO NOTHING",
            {"sid": str(s.get("id")), "id": e.originator_id, "ordinal": ordinal,
             "body": Jsonb(s)},
        ) for ordinal, s in enumerate(e.suggestions) if isinstance(s, dict)]

    @statements.register
    def _(self, e: Exchange.SuggestionApplied, position: int) -> list[Statement]:
        return [(
            "UPDATE rm_assistant_suggestions SET job_id = %(job)s, applied_by = %(actor)s,"
            " applied_at = %(at)s WHERE id = %(sid)s",
            {"job": e.job_id, "actor": e.actor, "at": e.timestamp, "sid": e.suggestion_id},
        )]
