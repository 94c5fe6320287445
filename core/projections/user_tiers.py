"""Each user's current tier, from ``Account.Opened`` and ``Account.TierChanged``: what the
rate limiter joins on every decision (a user without a row is on the free tier)."""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any

from core.events.account import Account
from core.limits import USER_TIERS_SQL
from core.projections.readmodel import ReadModel, Statement

_UPSERT = (
    "INSERT INTO rm_user_tiers (user_id, username, tier, changed_at, changed_by)"
    " VALUES (%(user)s, %(username)s, %(tier)s, %(at)s, %(actor)s)"
    " ON CONFLICT (user_id) DO UPDATE SET tier = EXCLUDED.tier,"
    " changed_at = EXCLUDED.changed_at, changed_by = EXCLUDED.changed_by"
)


class UserTiersReadModel(ReadModel):
    name = "user_tiers"
    tables = ("rm_user_tiers",)
    create_sql = USER_TIERS_SQL

    @singledispatchmethod
    def statements(self, event: Any, position: int) -> list[Statement]:
        return []

    @statements.register
    def _(self, e: Account.Opened, position: int) -> list[Statement]:
        return [(_UPSERT, {"user": e.user_id, "username": e.username, "tier": e.tier,
                           "at": e.timestamp, "actor": e.actor})]

    @statements.register
    def _(self, e: Account.TierChanged, position: int) -> list[Statement]:
        return [(_UPSERT, {"user": str(e.originator_id), "username": "", "tier": e.tier,
                           "at": e.timestamp, "actor": e.actor})]
