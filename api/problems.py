"""RFC 9457 problem details: the one place where errors become HTTP statuses."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.errors import (
    AuthError,
    Conflict,
    Forbidden,
    InvalidInput,
    MalformedInput,
    NotFound,
    OrfeasError,
    QuotaExceeded,
    ServiceError,
    StorageQuotaExceeded,
    TooLarge,
    Unauthenticated,
    UnsupportedMedia,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

# Most specific first: the first class an error is an instance of decides its status.
_STATUS: tuple[tuple[type[OrfeasError], HTTPStatus], ...] = (
    (Unauthenticated, HTTPStatus.UNAUTHORIZED),
    (Forbidden, HTTPStatus.FORBIDDEN),
    (AuthError, HTTPStatus.FORBIDDEN),
    (NotFound, HTTPStatus.NOT_FOUND),
    (Conflict, HTTPStatus.CONFLICT),
    (StorageQuotaExceeded, HTTPStatus.FORBIDDEN),
    (QuotaExceeded, HTTPStatus.TOO_MANY_REQUESTS),
    (MalformedInput, HTTPStatus.BAD_REQUEST),
    (TooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (UnsupportedMedia, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
    (InvalidInput, HTTPStatus.UNPROCESSABLE_ENTITY),
    (ServiceError, HTTPStatus.SERVICE_UNAVAILABLE),
)


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


def problem(status: int, detail: str, **extra: Any) -> ProblemResponse:
    phrase = HTTPStatus(status).phrase
    body = {
        "type": f"https://orfeas.studio/problems/{phrase.lower().replace(' ', '-')}",
        "title": phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    headers = {"WWW-Authenticate": 'Bearer realm="orfeas"'} if status == 401 else None
    return ProblemResponse(body, status_code=status, headers=headers)


def status_for(error: OrfeasError) -> HTTPStatus:
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return HTTPStatus.INTERNAL_SERVER_ERROR


async def orfeas_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OrfeasError)
    status = status_for(exc)
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc)
    service = getattr(exc, "service", None)  # which backing service is missing
    extra = {"service": service} if service else {}
    extra |= getattr(exc, "problem_extra", {})  # what a refused quota says a client can do
    response = problem(status, str(exc), instance=request.url.path, **extra)
    retry_after_s = getattr(exc, "retry_after_s", None)  # Throttled, ServiceError
    if retry_after_s is not None:
        response.headers["Retry-After"] = str(retry_after_s)
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, exc.detail or HTTPStatus(exc.status_code).phrase,
                   instance=request.url.path)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal error (logged on the server)",
                   instance=request.url.path)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    OrfeasError: orfeas_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
