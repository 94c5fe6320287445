"""The ``Account`` aggregate: what the log knows of a user beyond their sign-in (their tier).

Passwords and tokens stay in plain tables (:mod:`core.accounts`); a tier is a business fact
that analytics and audits read from the log, so each change is an event. The aggregate's id is
the user's id (random, version 4, like every aggregate but scenes). A user the log holds no
account for is on the free tier.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError, PersistenceError

from core.errors import Conflict, EventStoreError
from core.events.studio import Studio


class Account(Aggregate):
    class Opened(Aggregate.Created):
        user_id: str
        username: str
        tier: str
        actor: str

    class TierChanged(Aggregate.Event):
        tier: str
        previous: str
        actor: str

    @staticmethod
    def create_id(user_id: str) -> UUID:
        return UUID(user_id)

    @event(Opened)
    def __init__(self, user_id: str, username: str, tier: str, actor: str) -> None:
        self.user_id = user_id
        self.username = username
        self.tier = tier

    @event(TierChanged)
    def _change_tier(self, tier: str, previous: str, actor: str) -> None:
        self.tier = tier

    def change_tier(self, tier: str, actor: str) -> None:
        if tier != self.tier:
            self._change_tier(tier, self.tier, actor)


def set_tier(studio: Studio, user_id: str, username: str, tier: str, actor: str) -> int:
    """Record the user's tier (the first time, as the ``Opened`` event of their account in the
    log: until then they were on the free tier); returns the log position (0 when the tier
    was already that). The caller checked ``tier``."""
    try:
        account: object = studio.repository.get(UUID(user_id))
    except AggregateNotFoundError:
        account = Account(user_id=user_id, username=username, tier=tier, actor=actor)
    except PersistenceError as e:
        raise EventStoreError(f"could not load account {user_id}: {e}") from e
    if not isinstance(account, Account):
        raise Conflict(f"{user_id} is not an account in the log")
    account.change_tier(tier, actor)
    if not account.pending_events:
        return 0
    try:
        recordings = studio.save(account)
    except IntegrityError:
        raise Conflict("the account was changed at the same moment; retry") from None
    except PersistenceError as e:
        raise EventStoreError(f"could not save account {user_id}: {e}") from e
    return recordings[-1].notification.id if recordings else 0
