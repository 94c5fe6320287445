"""Uploading files into a project.

The body (a multipart field ``file``, or the raw body with ``?filename=``) is spooled to disk
and hashed, held against the user's storage allowance (an upload that would take them past
their tier's is refused with 403 ``/problems/storage-quota`` and the figures), checked to
really be an image or a mesh, and only then stored under its content
address and recorded as ``AssetUploaded``: a refused upload leaves no object and no event.

The API process never holds an upload in memory: the size limit is enforced on the bytes as
they arrive (a ``Content-Length`` is not needed, nor trusted), and the check, which parses the
file, runs in a bounded child process (:mod:`core.upload_check`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from http import HTTPStatus
from pathlib import PurePosixPath
from uuid import uuid4

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import Response

from api.auth import Access, Scope, current_user, guard
from api.jsonbody import Json
from api.resources import resources
from api.routes.projects import asset_body
from core.errors import InvalidInput, MalformedInput, TooLarge
from core.events.blobs import SpooledBlob, spool
from core.events.project import Asset
from core.events.roles import Role
from core.limits import Limits
from core.media import MediaInfo

UNITS = ("mm", "cm", "m", "in")
"""Length units a mesh may be uploaded in; the studio's figures are in them (mm by default)."""

_SAFE_NAME = re.compile(r"[^\w.\- ()]+")
MAX_FILENAME = 200
ENVELOPE_BYTES = 64 * 1024
"""Room for a multipart body's boundaries, headers and small fields beside the file."""


@guard(Access(Scope.PROJECT, Role.EDITOR))
async def upload_asset(request: Request) -> Response:
    res = resources(request)
    _check_declared_length(request, res.max_upload_bytes)
    units = request.query_params.get("units", "mm")
    if units not in UNITS:
        raise InvalidInput(f"units must be one of {', '.join(UNITS)}")
    filename, chunks = await _body(request)
    asset, media = await store_upload(request, filename, chunks, units=units)
    row = {
        "asset_id": asset.asset_id, "project_id": request.state.project_id,
        "filename": asset.filename, "kind": asset.kind, "media_type": asset.media_type,
        "size": asset.size, "sha256": asset.sha256, "blob_key": asset.blob_key,
        "uploaded_by": asset.uploaded_by, "uploaded_at": None, "units": asset.units,
    }
    return Json(asset_body(row) | {"format": media.format}, status_code=HTTPStatus.CREATED)


async def store_upload(
    request: Request, filename: str, chunks: AsyncIterator[bytes],
    check: Callable[[MediaInfo], None] | None = None, units: str = "mm",
) -> tuple[Asset, MediaInfo]:
    """Spool, check (``check`` may refuse the kind) and only then store and record a file."""
    res = resources(request)
    user = current_user(request).key
    limits = Limits(res.pool)
    blob = await spool(chunks, res.max_upload_bytes)
    try:
        if blob.size == 0:
            raise InvalidInput(f"{filename}: empty file")
        hold = await limits.hold_storage(user, blob.size)  # over the tier's storage: refused
        try:
            media = await res.upload_checker.sniff(blob.path(), filename, uploader=user)
            if check is not None:
                check(media)
            asset = await _store(request, blob, media, filename, units)
        except BaseException:
            await limits.release_storage(hold)
            raise
        await limits.settle_storage(hold, asset.asset_id)  # counted until the catalogue has it
        return asset, media
    finally:
        blob.close()


async def _store(request: Request, blob: SpooledBlob, media: MediaInfo, filename: str,
                 units: str) -> Asset:
    res = resources(request)
    user = current_user(request)
    key = await asyncio.to_thread(res.blobs.put_spooled, blob, media.media_type)
    asset = Asset(
        asset_id=str(uuid4()), blob_key=key, sha256=blob.sha256, media_type=media.media_type,
        kind=media.kind, size=blob.size, filename=filename, uploaded_by=user.key, units=units,
    )
    await asyncio.to_thread(res.studio.record_asset, request.state.project_id, asset, user.key)
    return asset


async def _body(request: Request) -> tuple[str, AsyncIterator[bytes]]:
    content_type = request.headers.get("content-type", "")
    limit = resources(request).max_upload_bytes
    if content_type.startswith("multipart/form-data"):
        parser = MultiPartParser(request.headers, _limited(request.stream(), limit),
                                 max_files=1, max_fields=10)
        try:
            form = await parser.parse()
        except MultiPartException as error:
            raise MalformedInput(error.message) from None
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            await form.close()
            raise MalformedInput("multipart upload without a 'file' field")
        return clean_filename(upload.filename or ""), _read_and_close(form, upload)
    filename = request.query_params.get("filename")
    if not filename:
        raise MalformedInput("send multipart field 'file', or a raw body with ?filename=")
    return clean_filename(filename), _limited(request.stream(), limit)


async def _limited(chunks: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    """``chunks``, refused with 413 as soon as more than ``limit`` bytes (plus room for a
    multipart envelope) have arrived: nothing further is read or spooled to disk."""
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > limit + ENVELOPE_BYTES:
            raise TooLarge(f"upload larger than {limit} bytes")
        yield chunk


async def read_upload(upload: UploadFile, chunk: int = 1024 * 1024) -> AsyncIterator[bytes]:
    while data := await upload.read(chunk):
        yield data


async def _read_and_close(form: FormData, upload: UploadFile) -> AsyncIterator[bytes]:
    """The part's bytes; then its temporary file is closed (the parser was ours, so no
    request teardown closes it)."""
    try:
        async for data in read_upload(upload):
            yield data
    finally:
        await form.close()


def clean_filename(raw: str) -> str:
    """The base name only, without path parts or control characters."""
    name = PurePosixPath(raw.replace("\\", "/")).name
    name = _SAFE_NAME.sub("_", name).strip(" .")[:MAX_FILENAME]
    if not name:
        raise InvalidInput("the upload needs a file name with an extension, e.g. model.stl")
    return name


def _check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + ENVELOPE_BYTES:
        raise TooLarge(f"upload larger than {limit} bytes")
