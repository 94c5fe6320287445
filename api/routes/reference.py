"""The API describing itself: the OpenAPI 3.1 document and a readable page of it, both built
from the app's live route table (see :mod:`api.openapi`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from api.auth import Access, Scope, guard
from api.docs_page import render_docs
from api.jsonbody import Json
from api.openapi import contract, openapi_document

SPEC_KEY = "openapi_document"


def document_of(request: Request) -> dict[str, Any]:
    """Built once per app: the route table does not change while it runs."""
    state = request.app.state
    if not hasattr(state, SPEC_KEY):
        setattr(state, SPEC_KEY, openapi_document(request.app.routes))
    document: dict[str, Any] = getattr(state, SPEC_KEY)
    return document


@contract(response={"type": "object", "required": ["openapi", "paths"]})
@guard(Access(Scope.PUBLIC))
async def openapi_json(request: Request) -> Response:
    """This document: OpenAPI 3.1 of every HTTP operation."""
    return Json(document_of(request))


@contract(media_types=("text/html",))
@guard(Access(Scope.PUBLIC))
async def docs(request: Request) -> Response:
    """The API reference as a page to read."""
    return HTMLResponse(render_docs(document_of(request)))
