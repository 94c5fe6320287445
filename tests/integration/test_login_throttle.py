"""Wrong passwords are throttled per account and per client address, in PostgreSQL, so that
every API node sees the same counts (reproduction 5 of issue 19: 200 wrong passwords in a row
all answered 401)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
from starlette.testclient import TestClient

from api.app import create_app
from core.settings import Settings

TOKENS = "/api/v1/auth/tokens"


@contextmanager
def studio(settings: Settings, address: str = "198.51.100.7") -> Iterator[TestClient]:
    """One API node, its client calling from ``address``."""
    with TestClient(create_app(settings), raise_server_exceptions=False,
                    client=(address, 40000)) as client:
        yield client


def sign_in(client: TestClient, username: str, password: str) -> httpx.Response:
    return client.post(TOKENS, json={"username": username, "password": password})


def assert_throttled(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


def test_a_password_flood_is_throttled(client: TestClient, make_account: Callable) -> None:
    dora = make_account("dora")
    answers = [sign_in(client, "dora", f"guess-{i:04d}") for i in range(200)]
    statuses = [a.status_code for a in answers]
    assert statuses[:5] == [401] * 5
    assert set(statuses[5:]) == {429}
    retry_after = assert_throttled(answers[-1])
    assert 0 < retry_after <= 300
    assert "this account" in answers[-1].json()["detail"]
    # the right password waits for the block too (the guesser cannot tell it was right)
    assert_throttled(sign_in(client, "dora", dora.password))


def test_two_api_nodes_share_the_count(prepared: Settings, make_account: Callable) -> None:
    make_account("erin")
    with studio(prepared) as node_a, studio(prepared) as node_b:
        for node in (node_a, node_b, node_a, node_b, node_a):
            assert sign_in(node, "erin", "not-her-password").status_code == 401
        assert_throttled(sign_in(node_b, "erin", "not-her-password"))
        assert_throttled(sign_in(node_a, "erin", "not-her-password"))


def test_a_success_clears_the_account_count(client: TestClient,
                                            make_account: Callable) -> None:
    fay = make_account("fay")
    for _ in range(4):
        assert sign_in(client, "fay", "typo-typo").status_code == 401
    assert sign_in(client, "fay", fay.password).status_code == 201
    for _ in range(4):
        assert sign_in(client, "fay", "typo-typo").status_code == 401


def test_the_right_password_works_after_the_block(prepared: Settings,
                                                  make_account: Callable) -> None:
    gus = make_account("gus")
    # a minute to count five failures in (a slow machine needs seconds), then a 1 s block
    quick = prepared.replace(login_window_s=60.0, login_max_block_s=1.0)
    with studio(quick) as client:
        for _ in range(5):
            assert sign_in(client, "gus", "wrong-wrong").status_code == 401
        retry_after = assert_throttled(sign_in(client, "gus", gus.password))
        assert retry_after == 1
        time.sleep(retry_after)
        assert sign_in(client, "gus", gus.password).status_code == 201


def test_a_flooding_address_does_not_refuse_others(prepared: Settings,
                                                   make_account: Callable) -> None:
    """The attacker floods account A and then guesses other names; A and the attacker's
    address are blocked, while B signs in from elsewhere."""
    make_account("amy")
    bob = make_account("bob")
    few = prepared.replace(login_address_failures=8)
    with studio(few, "203.0.113.66") as attacker, studio(few, "192.0.2.10") as office:
        statuses = [sign_in(attacker, "amy", f"guess-{i}").status_code for i in range(20)]
        statuses += [sign_in(attacker, f"user{i}", "guess-guess").status_code
                     for i in range(10)]
        assert statuses.count(401) == 8  # 5 on amy, then 3 more names fill the address's 8
        denied = sign_in(attacker, "bob", bob.password)
        assert_throttled(denied)
        assert "your address" in denied.json()["detail"]
        assert sign_in(office, "bob", bob.password).status_code == 201
