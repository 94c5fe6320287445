"""The sign-in throttle's arithmetic and the bounded Argon2 pool, without a database."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest

from core.accounts import PasswordHashing
from core.errors import Overloaded
from core.login_throttle import FailureCount, LoginPolicy, address_key

POLICY = LoginPolicy(account_failures=5, address_failures=50, window_s=300, max_block_s=900)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def fail(count: FailureCount, seconds: float, limit: int = 5) -> FailureCount:
    return count.after_failure(T0 + timedelta(seconds=seconds), limit, POLICY)


def test_blocks_double_up_to_the_cap_and_are_forgiven_after_a_quiet_spell() -> None:
    count = FailureCount(0, T0, 0, None)
    blocks = []
    at = 0.0
    for _ in range(5):
        for _ in range(5):
            count = fail(count, at)
        assert count.blocked_until is not None
        blocks.append((count.blocked_until - (T0 + timedelta(seconds=at))).total_seconds())
        at = (count.blocked_until - T0).total_seconds()
    assert blocks == [300, 600, 900, 900, 900]
    quiet = at + 901
    for _ in range(5):
        count = fail(count, quiet)
    assert count.strikes == 1  # the next block is a window long again
    assert count.blocked_until == T0 + timedelta(seconds=quiet + 300)


def test_failures_outside_the_window_start_a_new_count() -> None:
    count = FailureCount(0, T0, 0, None)
    for i in range(4):
        count = fail(count, i)
    count = fail(count, 400)
    assert (count.failures, count.blocked_until) == (1, None)


def test_an_ipv6_subscriber_is_counted_by_its_64() -> None:
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:1") == \
        "address:2001:db8::/64"
    assert address_key("192.0.2.1") == "address:192.0.2.1"


def test_a_full_hashing_queue_answers_at_once() -> None:
    hashing = PasswordHashing(workers=1, queue=1)
    release = threading.Event()

    async def main() -> None:
        running = [asyncio.ensure_future(hashing.run(release.wait)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded) as refused:
            await hashing.run(release.wait)
        assert refused.value.retry_after_s == 1
        release.set()
        assert await asyncio.gather(*running) == [True, True]
        assert await hashing.run(lambda: "room again") == "room again"

    asyncio.run(main())
