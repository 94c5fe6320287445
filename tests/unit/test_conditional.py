"""Conditional GETs of content-addressed answers (:mod:`api.conditional`), on a tiny app."""

from __future__ import annotations

import hashlib

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from api.conditional import blob_headers, matches, not_modified
from core.events.blobs import blob_key

BODY = b"the blob's bytes"
DIGEST = hashlib.sha256(BODY).hexdigest()
TAG = f'"{DIGEST}"'


@pytest.mark.parametrize(("field", "expected"), [
    (None, False),
    ("", False),
    (TAG, True),
    (f"W/{TAG}", True),  # weak comparison: a weak tag matches the strong one
    (f'"other", {TAG}', True),
    (f'"other",{TAG} , "third"', True),
    (f', ,{TAG},', True),  # empty list members are allowed
    ("*", True),
    (' * ', True),
    ('"other"', False),
    (f'"{DIGEST[:-1]}"', False),
    (DIGEST, False),  # unquoted: not an entity tag, so no condition
    (f'{TAG} garbage', False),
    (f'"a,b", {TAG}', True),  # a comma inside a tag does not split it
])
def test_if_none_match_lists(field: str | None, expected: bool) -> None:
    assert matches(field, TAG) is expected


def _app() -> Starlette:
    async def blob(request: Request) -> Response:
        headers = blob_headers(blob_key(DIGEST), "private, max-age=60")
        return not_modified(request, headers) or Response(BODY, headers=headers)

    return Starlette(routes=[Route("/blob", blob)])


def test_a_held_blob_is_answered_304_with_its_validators_and_no_body() -> None:
    with TestClient(_app()) as client:
        full = client.get("/blob")
        assert full.status_code == 200 and full.content == BODY
        assert full.headers["etag"] == TAG
        for held in (TAG, f"W/{TAG}", f'"x", {TAG}', "*"):
            again = client.get("/blob", headers={"If-None-Match": held})
            assert again.status_code == 304, held
            assert again.content == b"" and "content-length" not in again.headers
            assert again.headers["etag"] == TAG
            assert again.headers["cache-control"] == "private, max-age=60"
        changed = client.get("/blob", headers={"If-None-Match": '"an older one"'})
        assert changed.status_code == 200 and changed.content == BODY
