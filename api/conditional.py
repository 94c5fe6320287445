"""Conditional GETs (RFC 9110 §13) of answers whose bytes are one content-addressed blob.

A blob's key is its sha256 (:mod:`core.events.blobs`), so the digest is a strong ETag that
costs nothing to compute and cannot go stale: a client that sends it back in
``If-None-Match`` already holds exactly these bytes, and is answered ``304 Not Modified``
without a body, before the blob is read from the store. The routes that send such a blob
(a thumbnail, face maps, a mesh as uploaded, a job's stage) build their caching headers here,
so they all answer the condition the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import Response

from core.events.blobs import digest_of

_ENTITY_TAG = re.compile(r'[\s,]*(?:W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')
"""One member of an ``If-None-Match`` list; group 1 is the opaque tag, quotes included
(RFC 9110 §8.8.3: the weak prefix is dropped, as §13.1.2's weak comparison asks; empty
list members are allowed, §5.6.1)."""


def blob_headers(key: str, cache_control: str) -> dict[str, str]:
    """The ETag (the blob's sha256) and the caching rule of an answer made of blob ``key``:
    the same fields go on its 200 and on its 304 (RFC 9110 §15.4.5)."""
    return {"ETag": f'"{digest_of(key)}"', "Cache-Control": cache_control}


def not_modified(request: Request, headers: Mapping[str, str]) -> Response | None:
    """``304 Not Modified`` with ``headers`` and no body when the request's
    ``If-None-Match`` names the answer's ETag (or is ``*``: the blob exists); None when the
    client needs the bytes. A malformed field is no condition (the bytes are sent)."""
    if not matches(request.headers.get("if-none-match"), headers["ETag"]):
        return None
    return Response(status_code=HTTPStatus.NOT_MODIFIED, headers=dict(headers))


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` field value names ``etag`` (weak comparison)."""
    field = (if_none_match or "").strip(" \t,")
    if field == "*":
        return True
    opaque = etag.removeprefix("W/")
    tags: list[str] = []
    at = 0
    while at < len(field):
        member = _ENTITY_TAG.match(field, at)
        if member is None:
            return False  # not a list of entity tags
        tags.append(member.group(1))
        at = member.end()
    return opaque in tags
