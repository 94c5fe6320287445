"""Administration that must work whether or not the studio is running."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from psycopg_pool import AsyncConnectionPool

from core.accounts import AccountStore, User
from core.events.account import set_tier
from core.events.studio import Studio
from core.limits import Tier, check_tier
from core.settings import Settings
from infra.embedded.postgres import EmbeddedPostgres
from infra.supervisor import read_state


@contextmanager
def database_url_for(settings: Settings) -> Iterator[str]:
    """The configured database, else the running studio's, else a briefly started embedded one."""
    if settings.database_url:
        yield settings.database_url
        return
    state = read_state(settings.data_dir)
    if state is not None:
        yield state["settings"]["ORFEAS_DATABASE_URL"]
        return
    data_dir = settings.data_dir.absolute()
    postgres = EmbeddedPostgres(data_dir / "postgres", log_path=data_dir / "logs" / "postgres.log")
    url = postgres.start()
    try:
        yield url
    finally:
        postgres.stop()


def create_user(
    settings: Settings, name: str, password: str, *, is_admin: bool, email: str | None,
    tier: str = "free",
) -> User:
    """Create an account; a tier other than free is recorded as the account's first event,
    as the admin route does (a user the log says nothing of is on the free tier)."""
    chosen = check_tier(tier)
    with database_url_for(settings) as url:
        user = asyncio.run(_create(url, name, password, is_admin, email))
        if chosen is not Tier.FREE:
            studio = Studio.connect(url)
            try:
                set_tier(studio, user.key, user.username, chosen.value, "admin-cli")
            finally:
                studio.close()
        return user


async def _create(url: str, name: str, password: str, is_admin: bool, email: str | None) -> User:
    async with AsyncConnectionPool(url, min_size=1, max_size=1, open=False,
                                   kwargs={"autocommit": True}) as pool:
        accounts = AccountStore(pool)
        await accounts.ensure_schema()
        return await accounts.create_user(name, password, is_admin=is_admin, email=email)
