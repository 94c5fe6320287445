"""Image to 3D. A request is a ``Job.Requested`` event; a GPU worker produces the preview,
medium and final stages, each recorded as ``Job.StageCompleted`` with its GLB blob and shown in
the project's scene.

``generate-progressive`` streams the job as it happens (NDJSON, or Server-Sent Events when
asked for). Every request gets a job of its own project; an identical one (same image
bytes, parameters and generator version) reuses an earlier job's results instead of running
again: a finished job's at once, a queued or running job's when it ends (single flight). Such a
job (``Job.ReuseRequested``) shows only the requesting project's image, parameters and
requester, with stages pointing at the shared content-addressed blobs; the generation
analytics count it as a hit or a join. Finished jobs stop answering after
``Settings.generation_cache_ttl_s`` or a new generator version.

An image no generator can use (not an image, too large, fully transparent, blank) is refused
before anything is stored or queued, and so is a job over the user's limits (jobs at once,
billable rate, storage); an image uploaded again to the same project is the asset it already
has there.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import tempfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import IO, Any
from uuid import UUID

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api.auth import Access, Scope, current_user, guard
from api.jsonbody import Json, parse_body
from api.openapi import Query, contract
from api.ratelimit import charge_job, check_job, peek
from api.resources import Resources, resources
from api.routes.assets import clean_filename, read_upload, store_upload
from api.schemas import (
    DEFAULT_HEIGHT_MM,
    GENERATORS,
    MAX_FACE_BUDGET,
    MAX_HEIGHT_MM,
    MAX_SEED,
    MIN_HEIGHT_MM,
    QUEUED,
    GenerationParams,
)
from core.errors import InvalidInput, MalformedInput, NotFound, QuotaExceeded, UnsupportedMedia
from core.events.blobs import BlobStore, blob_key
from core.events.job import STAGES, Job, JobState
from core.events.job_kinds import GENERATE, GENERATOR_VERSIONS
from core.events.project import Asset
from core.events.roles import Role
from core.events.studio import cache_key
from core.generators import MISSED_BEATS, list_generators
from core.limits import Limits, Policy
from core.media import MediaInfo
from core.upload_check import check_generation_image

RECHECK_S = 1.0  # re-read the job even without a progress ping
SINGLE_FLIGHT_LOCK = 0x6E4  # first key of the advisory lock taken per cache key
LOCK_RETRY_S = 0.005  # first wait for a cache key's lock held by an identical request
MAX_LOCK_RETRY_S = 0.05
ANALYTICS_DAYS = 30  # the analytics route's default window
MAX_ANALYTICS_DAYS = 366
SPOOL_IN_MEMORY = 8 * 1024 * 1024  # an image blob larger than this is checked from disk
HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class GenerationRequest:
    asset: Asset
    backend: str
    seed: int
    face_budget: int | None
    height_mm: float
    name: str

    @property
    def params(self) -> dict[str, Any]:
        return self.cache_params | {"name": self.name}

    @property
    def cache_key(self) -> str:
        return result_key(self.asset.blob_key, self.cache_params)

    @property
    def cache_params(self) -> dict[str, Any]:
        return result_params(self.backend, self.seed, self.face_budget, self.height_mm)

    @property
    def version(self) -> str:
        return GENERATOR_VERSIONS[self.backend]


def result_params(backend: str, seed: int, face_budget: int | None,
                  height_mm: float) -> dict[str, Any]:
    """The parameters the stored meshes depend on; the height is one (the worker stores
    the meshes at that size, so a request for another height is another result)."""
    return {"backend": backend, "seed": seed, "face_budget": face_budget,
            "height_mm": height_mm}


def result_key(image_key: str, params: dict[str, Any]) -> str:
    """The dedup cache's key: the result depends on the image's bytes (its content address),
    the generator's version and :func:`result_params`."""
    on = {"image": image_key, "version": GENERATOR_VERSIONS[params["backend"]]}
    return cache_key(GENERATE, on, params)


@contract(body=GenerationParams, status=202, response=QUEUED)
@guard(Access(Scope.PROJECT, Role.EDITOR))
async def request_generation(request: Request) -> Response:
    """Start a job for an image already uploaded; answers with the job (202)."""
    wanted = await _from_json(request, await parse_body(request, GenerationParams))
    job_id = await _job_for(request, wanted)
    return Json({"job_id": job_id, "state": "requested", "job_url": f"/api/v1/jobs/{job_id}"},
                status_code=HTTPStatus.ACCEPTED, headers={"Location": f"/api/v1/jobs/{job_id}"})


@contract(body=GenerationParams, forms={"multipart/form-data": {
    "type": "object", "required": ["image"],
    "properties": {"image": {"type": "string", "format": "binary"},
                   "backend": {"type": "string"}, "seed": {"type": "string"},
                   "face_budget": {"type": "string"}, "height_mm": {"type": "string"},
                   "name": {"type": "string"}}}},
          media_types=("application/x-ndjson", "text/event-stream"), errors=(415,))
@guard(Access(Scope.PROJECT, Role.EDITOR))
async def generate_progressive(request: Request) -> Response:
    """Upload (multipart ``image``) or name (JSON ``asset_id``) an image and stream its stages."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=20)
        wanted = await _from_form(request, form)
    else:
        wanted = await _from_json(request, await parse_body(request, GenerationParams))
    return _streaming(request, resources(request), await _job_for(request, wanted))


@contract(response=GENERATORS)
@guard(Access(Scope.USER))
async def generators(request: Request) -> Response:
    """The generators, their versions, and whether a GPU worker can run them (and why not)."""
    res = resources(request)
    fresh_for_s = MISSED_BEATS * res.settings.generator_heartbeat_s
    return Json({"generators": await list_generators(res.pool, fresh_for_s=fresh_for_s)})


@contract(query=(Query("days", {"type": "integer", "minimum": 1,
                                    "maximum": MAX_ANALYTICS_DAYS, "default": ANALYTICS_DAYS},
                             "How many days back from today."),))
@guard(Access(Scope.ADMIN))
async def generation_analytics(request: Request) -> Response:
    """Site admins: per day and backend, the requests, the jobs they ran, the dedup cache's
    hits and single-flight joins, its hit rate, and the GPU seconds used and saved."""
    days = _days(request.query_params.get("days"))
    last = datetime.now(UTC).date()
    first = last - timedelta(days=days - 1)
    models = resources(request).read_models
    await models.caught_up()
    rows = [_with_rates(row) for row in await models.generation_stats(first, last)]
    for row in rows:
        row["day"] = row["day"].isoformat()
    sums = ("jobs", "succeeded", "failed", "cache_hits", "single_flight_joins", "gpu_seconds",
            "saved_gpu_seconds")
    total = _with_rates({k: sum(row[k] for row in rows) for k in sums})
    return Json({"from": first.isoformat(), "to": last.isoformat(), "days": rows,
                 "total": total})


def _days(raw: str | None) -> int:
    if raw is None:
        return ANALYTICS_DAYS
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ANALYTICS_DAYS:
        raise InvalidInput(f"days must be an integer between 1 and {MAX_ANALYTICS_DAYS}")
    return int(raw)


def _with_rates(row: dict[str, Any]) -> dict[str, Any]:
    """Add the request count (jobs run plus requests answered without one) and hit rate."""
    reused = row["cache_hits"] + row["single_flight_joins"]
    requests = row["jobs"] + reused
    return row | {"requests": requests,
                  "hit_rate": round(reused / requests, 4) if requests else 0.0,
                  "gpu_seconds": round(float(row["gpu_seconds"]), 3),
                  "saved_gpu_seconds": round(float(row["saved_gpu_seconds"]), 3)}


@contract(media_types=("application/x-ndjson", "text/event-stream"))
@guard(Access(Scope.JOB, Role.VIEWER))
async def job_events(request: Request) -> Response:
    """Follow any job as a stream, e.g. a collaborator's generation or a CLI reconnecting."""
    job_id = UUID(request.path_params["job_id"])
    return _streaming(request, resources(request), job_id)


def _streaming(request: Request, res: Resources, job_id: UUID) -> Response:
    sse = "text/event-stream" in request.headers.get("accept", "")
    media_type = "text/event-stream" if sse else "application/x-ndjson"
    return StreamingResponse(_stream(res, job_id, sse), media_type=media_type,
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                                      "Location": f"/api/v1/jobs/{job_id}"})


# -- the request -----------------------------------------------------------------------------


async def _from_json(request: Request, body: GenerationParams) -> GenerationRequest:
    res = resources(request)
    project = await asyncio.to_thread(res.studio.project, request.state.project_id)
    asset = project.assets.get(body.asset_id)
    if asset is None:
        raise NotFound(f"image {body.asset_id} not found in project {project.id}")
    wanted = _checked(asset, body.backend, body.seed, body.face_budget, body.height_mm,
                      body.name)
    await asyncio.to_thread(_check_stored_image, res.blobs, asset)
    return wanted


async def _from_form(request: Request, form: FormData) -> GenerationRequest:
    image = form.get("image")
    if not isinstance(image, UploadFile):
        raise MalformedInput("multipart generation needs a file field 'image'")
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    backend, seed, budget = _checked_params(values.get("backend"), _form_int(values, "seed"),
                                            _form_int(values, "face_budget"))  # refuse before
    height = _checked_height(_form_float(values, "height_mm"))  # storing anything
    _check_label(values.get("name"))
    digest = await asyncio.to_thread(_checked_digest, image.file, image.filename or "image")
    await image.seek(0)
    project = await asyncio.to_thread(resources(request).studio.project,
                                      request.state.project_id)
    asset = _image_with_digest(project.assets.values(), digest)
    if asset is None:
        params = result_params(backend, seed, budget, height)
        await _check_job_before_storing(request, result_key(blob_key(digest), params),
                                        GENERATOR_VERSIONS[backend])

        def only_images(media: MediaInfo) -> None:
            if media.kind != "image":
                raise UnsupportedMedia(f"{image.filename}: not an image")

        asset, _ = await store_upload(request, clean_filename(image.filename or "image.png"),
                                      read_upload(image), check=only_images)
    return _checked(asset, values.get("backend"), _form_int(values, "seed"),
                    _form_int(values, "face_budget"), height, values.get("name"))


async def _check_job_before_storing(request: Request, key: str, version: str) -> None:
    """Refuse a job the user's limits (jobs at once, billable rate) would refuse before its
    new image is stored, so that a refusal stores, records and counts nothing; the image's
    storage is held (or refused) by :func:`store_upload` next. Spends nothing: the job is
    charged under its cache key's lock as every job is (:func:`_find_or_request`), which
    stays the decision (two requests at once may pass here and one be refused there, with
    its image stored; sent again, that image is the project's, and is not stored twice).
    A result the cache would answer costs nothing, so its request is not refused here."""
    res = resources(request)
    try:
        await check_job(request, res.pool, current_user(request).key)
    except QuotaExceeded:
        cached = await res.read_models.job_by_cache_key(
            key, max_age_s=res.settings.generation_cache_ttl_s, version=version)
        if cached is None:
            raise


def _checked_digest(file: IO[bytes], filename: str) -> str:
    """Apply the generation checks to an upload, then hash it as the blob store will."""
    check_generation_image(file, filename)
    file.seek(0)
    digest = hashlib.sha256()
    while chunk := file.read(HASH_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _image_with_digest(assets: Iterable[Asset], digest: str) -> Asset | None:
    """The project's image with these bytes, if it has one: uploading the same image again
    (a retry, or asking once more) is the same asset, and adds no upload to the log."""
    return next((a for a in assets if a.sha256 == digest and a.kind == "image"), None)


def _form_int(values: dict[str, str], name: str) -> int | None:
    raw = values.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer, got {raw!r}") from None


def _form_float(values: dict[str, str], name: str) -> float | None:
    raw = values.get(name)
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a number, got {raw!r}") from None


def _checked_height(height: Any) -> float:
    """The object's height in mm (a generated mesh has no size of its own)."""
    if height is None:
        return DEFAULT_HEIGHT_MM
    if (not isinstance(height, int | float) or isinstance(height, bool)
            or not MIN_HEIGHT_MM <= height <= MAX_HEIGHT_MM):  # NaN fails both
        raise InvalidInput(f"height_mm must be a number between {MIN_HEIGHT_MM:g} and "
                           f"{MAX_HEIGHT_MM:g} (millimetres)")
    return float(height)


def _checked_params(backend: Any, seed: Any, budget: Any) -> tuple[str, int, int | None]:
    backend = backend or "inflate"
    if backend not in GENERATOR_VERSIONS:
        raise InvalidInput(f"unknown generator {backend!r}; available: "
                           f"{', '.join(sorted(GENERATOR_VERSIONS))}")
    seed = 0 if seed is None else seed
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise InvalidInput(f"seed must be an integer between 0 and {MAX_SEED}")
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool)
                               or not 4 <= budget <= MAX_FACE_BUDGET):
        raise InvalidInput(f"face_budget must be an integer between 4 and {MAX_FACE_BUDGET}")
    return backend, seed, budget


def _check_stored_image(blobs: BlobStore, asset: Asset) -> None:
    """Apply the generation checks to an image uploaded earlier (uploads accept any image)."""
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spooled:
        for chunk in blobs.iter_chunks(asset.blob_key):
            spooled.write(chunk)
        spooled.seek(0)
        check_generation_image(spooled, asset.filename)


def _check_label(name: Any) -> None:
    if isinstance(name, str) and "\x00" in name:  # PostgreSQL stores no NUL in jsonb
        raise InvalidInput("name must not contain NUL characters")


def _checked(asset: Asset, backend: Any, seed: Any, budget: Any, height: Any,
             name: Any) -> GenerationRequest:
    if asset.kind != "image":
        raise InvalidInput(f"asset {asset.asset_id} is a {asset.kind}, not an image")
    backend, seed, budget = _checked_params(backend, seed, budget)
    height_mm = _checked_height(height)
    _check_label(name)
    label = name if isinstance(name, str) and name.strip() else asset.filename.rsplit(".", 1)[0]
    return GenerationRequest(asset, backend, seed, budget, height_mm, label[:200])


async def _job_for(request: Request, wanted: GenerationRequest) -> UUID:
    """The project's job that answers the request: one reusing a finished or running
    identical job's results, else a new one that runs.

    Single flight across API nodes: the lookup and the request happen under a PostgreSQL
    advisory lock on the cache key, after the jobs read model has caught up with the log, so
    a second identical request sees the first one's job however close behind it arrives.

    The lock is only ever tried, on a pooled connection that goes back to the pool between
    tries: a request waiting for it then holds no connection that the holder needs for its
    queries, and the usual, uncontended request pays no connection set-up.
    """
    res = resources(request)
    project_id: UUID = request.state.project_id
    user = current_user(request).key
    key = wanted.cache_key
    wait = LOCK_RETRY_S
    while True:
        async with res.pool.connection() as conn, conn.transaction():
            tried = await conn.execute("SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))",
                                       (SINGLE_FLIGHT_LOCK, key))
            locked = await tried.fetchone()
            if locked is not None and locked[0]:
                job_id = await _find_or_request(request, res, wanted, key, project_id, user)
                break
        await asyncio.sleep(wait)
        wait = min(2 * wait, MAX_LOCK_RETRY_S)
    return job_id


async def _find_or_request(request: Request, res: Resources, wanted: GenerationRequest,
                           key: str, project_id: UUID, user: str) -> UUID:
    """Under the lock: the project's new job, reusing an identical job's results where there
    is one (a cache hit's scene change is committed with it, and reaches the rooms from the
    log)."""
    inputs = {"asset_id": wanted.asset.asset_id, "blob_key": wanted.asset.blob_key}
    await res.read_models.caught_up(names=("jobs",))
    existing = await res.read_models.job_by_cache_key(
        key, max_age_s=res.settings.generation_cache_ttl_s, version=wanted.version)
    if existing is not None:
        reused = await asyncio.to_thread(res.studio.reuse_job, existing["id"], project_id,
                                         inputs, wanted.params, user)
        if reused is not None:  # costs no GPU, so no billable request
            await peek(request, Limits(res.pool), user, Policy.BILLABLE)
            return reused[0]
    await charge_job(request, res.pool, user)
    job_id: UUID = await asyncio.to_thread(
        res.studio.request_job, project_id, GENERATE, inputs, wanted.params, user, key)
    return job_id


# -- the stream --------------------------------------------------------------------------------


async def _stream(res: Resources, job_id: UUID, sse: bool) -> AsyncIterator[bytes]:
    sent: set[str] = set()
    async with res.progress.watch(job_id) as pinged:
        while True:
            pinged.clear()
            job = await asyncio.to_thread(res.studio.job, job_id)
            for name, body in await _news(res, job, sent):
                yield _frame(name, body | {"job_id": str(job_id)}, sse)
            if job.state.finished:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pinged.wait(), RECHECK_S)


async def _news(res: Resources, job: Job, sent: set[str]) -> list[tuple[str, dict[str, Any]]]:
    news: list[tuple[str, dict[str, Any]]] = []
    reused = job.reused_from is not None

    def once(name: str, body: dict[str, Any]) -> None:
        if name not in sent:
            sent.add(name)
            news.append((name, body))

    if job.state is JobState.REQUESTED and "queued" not in sent:
        # A join waits where the run it joined waits (the reference stays on the server).
        queued = job if job.reused_from is None else await asyncio.to_thread(
            res.studio.job, UUID(job.reused_from))
        once("queued", {"position": await res.read_models.queue_position(
            GENERATE, queued.created_on), "shared": reused})
    if job.worker is not None:
        once("started", {"worker": job.worker, "device": job.device, "shared": reused})
    for stage in STAGES:
        if stage in job.stages:
            done = job.stages[stage]
            once(stage, {"blob": done["blob"], "faces": done["stats"].get("faces"),
                         "seconds": done["stats"].get("seconds"),
                         "url": f"/api/v1/jobs/{job.id}/stages/{stage}.glb",
                         "cached": reused and job.state is JobState.SUCCEEDED})
    if job.state is JobState.SUCCEEDED:
        # The end, with the result as the log has it (the read model may lag a moment), so
        # that a client following any job needs nothing else.
        once("succeeded", {"result": job.result})
    if job.state is JobState.FAILED:
        once("failed", {"reason": job.error})
    elif job.state is JobState.CANCELLED:
        once("cancelled", {})
    return news


def _frame(name: str, body: dict[str, Any], sse: bool) -> bytes:
    if sse:
        return f"event: {name}\ndata: {json.dumps(body)}\n\n".encode()
    return (json.dumps({"event": name} | body) + "\n").encode()
