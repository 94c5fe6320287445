"""Image to 3D. A request is a ``Job.Requested`` event; a GPU worker produces the preview,
medium and final stages, each recorded as ``Job.StageCompleted`` with its GLB blob and shown in
the project's scene.

``generate-progressive`` streams the job as it happens (NDJSON, or Server-Sent Events when
asked for). Identical requests (same image bytes, parameters and generator version) are
answered from the finished job at once, and identical requests in flight share one job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from uuid import UUID, uuid4

import psycopg
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api.auth import Access, Scope, current_user, guard
from api.jsonbody import Json, field, json_object
from api.resources import Resources, resources
from api.routes.assets import clean_filename, read_upload, store_upload
from api.routes.collab import announce_scene_change
from core.errors import InvalidInput, MalformedInput, NotFound, UnsupportedMedia
from core.events.job import STAGES, Job, JobState
from core.events.job_kinds import GENERATE, GENERATOR_VERSIONS
from core.events.project import Asset
from core.events.roles import Role
from core.events.studio import cache_key
from core.generators import check_job_quota, list_generators
from core.media import MediaInfo

MAX_FACE_BUDGET = 1_000_000
MAX_SEED = 2**31 - 1
RECHECK_S = 1.0  # re-read the job even without a progress ping
SINGLE_FLIGHT_LOCK = 0x6E4  # first key of the advisory lock taken per cache key


@dataclass(frozen=True)
class GenerationRequest:
    asset: Asset
    backend: str
    seed: int
    face_budget: int | None
    name: str

    @property
    def params(self) -> dict[str, Any]:
        return {"backend": self.backend, "seed": self.seed, "face_budget": self.face_budget,
                "name": self.name}

    @property
    def cache_on(self) -> dict[str, Any]:
        """What the result depends on: the image's bytes and the generator's version."""
        return {"image": self.asset.blob_key, "version": GENERATOR_VERSIONS[self.backend]}

    @property
    def cache_params(self) -> dict[str, Any]:
        return {"backend": self.backend, "seed": self.seed, "face_budget": self.face_budget}


@guard(Access(Scope.PROJECT, Role.EDITOR))
async def request_generation(request: Request) -> Response:
    """Start a job for an image already uploaded; answers with the job (202)."""
    wanted = await _from_json(request, await json_object(request))
    job_id, _ = await _job_for(request, wanted)
    return Json({"job_id": job_id, "state": "requested", "job_url": f"/api/v1/jobs/{job_id}"},
                status_code=HTTPStatus.ACCEPTED, headers={"Location": f"/api/v1/jobs/{job_id}"})


@guard(Access(Scope.PROJECT, Role.EDITOR))
async def generate_progressive(request: Request) -> Response:
    """Upload (multipart ``image``) or name (JSON ``asset_id``) an image and stream its stages."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=20)
        wanted = await _from_form(request, form)
    else:
        wanted = await _from_json(request, await json_object(request))
    job_id, reused = await _job_for(request, wanted)
    return _streaming(request, resources(request), job_id, reused)


@guard(Access(Scope.USER))
async def generators(request: Request) -> Response:
    """The generators, their versions, and whether a GPU worker can run them (and why not)."""
    return Json({"generators": await list_generators(resources(request).pool)})


@guard(Access(Scope.JOB, Role.VIEWER))
async def job_events(request: Request) -> Response:
    """Follow any job as a stream, e.g. a collaborator's generation or a CLI reconnecting."""
    job_id = UUID(request.path_params["job_id"])
    return _streaming(request, resources(request), job_id, reused=False)


def _streaming(request: Request, res: Resources, job_id: UUID, reused: bool) -> Response:
    sse = "text/event-stream" in request.headers.get("accept", "")
    media_type = "text/event-stream" if sse else "application/x-ndjson"
    return StreamingResponse(_stream(res, job_id, reused, sse), media_type=media_type,
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                                      "Location": f"/api/v1/jobs/{job_id}"})


# -- the request -----------------------------------------------------------------------------


async def _from_json(request: Request, data: dict[str, Any]) -> GenerationRequest:
    res = resources(request)
    project = await asyncio.to_thread(res.studio.project, request.state.project_id)
    asset = project.assets.get(field(data, "asset_id", str))
    if asset is None:
        raise NotFound(f"image {data['asset_id']} not found in project {project.id}")
    return _checked(asset, data.get("backend"), data.get("seed"), data.get("face_budget"),
                    data.get("name"))


async def _from_form(request: Request, form: FormData) -> GenerationRequest:
    image = form.get("image")
    if not isinstance(image, UploadFile):
        raise MalformedInput("multipart generation needs a file field 'image'")
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    _checked_params(values.get("backend"), _form_int(values, "seed"),
                    _form_int(values, "face_budget"))  # refuse before storing anything

    def only_images(media: MediaInfo) -> None:
        if media.kind != "image":
            raise UnsupportedMedia(f"{image.filename}: not an image")

    asset, _ = await store_upload(request, clean_filename(image.filename or "image.png"),
                                  read_upload(image), check=only_images)
    return _checked(asset, values.get("backend"), _form_int(values, "seed"),
                    _form_int(values, "face_budget"), values.get("name"))


def _form_int(values: dict[str, str], name: str) -> int | None:
    raw = values.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer, got {raw!r}") from None


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


def _checked(asset: Asset, backend: Any, seed: Any, budget: Any, name: Any) -> GenerationRequest:
    if asset.kind != "image":
        raise InvalidInput(f"asset {asset.asset_id} is a {asset.kind}, not an image")
    backend, seed, budget = _checked_params(backend, seed, budget)
    label = name if isinstance(name, str) and name.strip() else asset.filename.rsplit(".", 1)[0]
    return GenerationRequest(asset, backend, seed, budget, label[:200])


async def _job_for(request: Request, wanted: GenerationRequest) -> tuple[UUID, bool]:
    """The job that answers the request: a finished or running identical one, else a new one.
    Returns the job id and whether it was reused.

    Single flight across API nodes: the lookup and the request happen under a PostgreSQL
    advisory lock on the cache key, after the read models have caught up with the log, so a
    second identical request sees the first one's job however close behind it arrives.
    """
    res = resources(request)
    project_id: UUID = request.state.project_id
    user = current_user(request).key
    key = cache_key(GENERATE, wanted.cache_on, wanted.cache_params)
    # A connection of its own, not the pool's: requests waiting for the lock must not hold
    # the pool's connections that the lock holder needs for its queries.
    async with await psycopg.AsyncConnection.connect(res.database_url) as conn, \
            conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                           (SINGLE_FLIGHT_LOCK, key))
        await res.read_models.caught_up()
        existing = await res.read_models.job_by_cache_key(key)
        if existing is None:
            await check_job_quota(res.pool, user)
            job_id = await asyncio.to_thread(
                res.studio.request_job, project_id, GENERATE,
                {"asset_id": wanted.asset.asset_id, "blob_key": wanted.asset.blob_key},
                wanted.params, user, key)
            return job_id, False
    if existing["state"] == JobState.SUCCEEDED.value:
        await _show_cached(res, project_id, existing, wanted, user)
    return existing["id"], True


async def _show_cached(res: Resources, project_id: UUID, job: dict[str, Any],
                       wanted: GenerationRequest, actor: str) -> None:
    """A cache hit still lands in this project's scene, as a new object showing the result."""
    final = job["stages"].get("final", {})
    fields = {"name": wanted.name, "asset": wanted.asset.asset_id, "blob": final.get("blob"),
              "stage": "final", "visible": True, "locked": False, "created_by": actor,
              "style": "", "material": {}, "cached_from": str(job["id"]),
              "transform": {"position": [0.0, 0.0, 0.0], "rotation": [0.0, 0.0, 0.0, 1.0],
                            "scale": [1.0, 1.0, 1.0]}}
    await asyncio.to_thread(res.studio.edit_scene, project_id, {str(uuid4()): fields}, actor,
                            f"cache:{job['id']}")
    await announce_scene_change(res, project_id)


# -- the stream --------------------------------------------------------------------------------


async def _stream(res: Resources, job_id: UUID, reused: bool,
                  sse: bool) -> AsyncIterator[bytes]:
    sent: set[str] = set()
    async with res.progress.watch(job_id) as pinged:
        while True:
            pinged.clear()
            job = await asyncio.to_thread(res.studio.job, job_id)
            for name, body in await _news(res, job, sent, reused):
                yield _frame(name, body | {"job_id": str(job_id)}, sse)
            if job.state.finished:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pinged.wait(), RECHECK_S)


async def _news(res: Resources, job: Job, sent: set[str],
                reused: bool) -> list[tuple[str, dict[str, Any]]]:
    news: list[tuple[str, dict[str, Any]]] = []

    def once(name: str, body: dict[str, Any]) -> None:
        if name not in sent:
            sent.add(name)
            news.append((name, body))

    if job.state is JobState.REQUESTED:
        once("queued", {"position": await res.read_models.queue_position(
            GENERATE, job.created_on), "shared": reused})
    if job.worker is not None:
        once("started", {"worker": job.worker, "device": job.device, "shared": reused})
    for stage in STAGES:
        if stage in job.stages:
            done = job.stages[stage]
            once(stage, {"blob": done["blob"], "faces": done["stats"].get("faces"),
                         "seconds": done["stats"].get("seconds"),
                         "url": f"/api/v1/jobs/{job.id}/stages/{stage}.glb",
                         "cached": reused and job.state is JobState.SUCCEEDED})
    if job.state is JobState.FAILED:
        once("failed", {"reason": job.error})
    elif job.state is JobState.CANCELLED:
        once("cancelled", {})
    return news


def _frame(name: str, body: dict[str, Any], sse: bool) -> bytes:
    if sse:
        return f"event: {name}\ndata: {json.dumps(body)}\n\n".encode()
    return (json.dumps({"event": name} | body) + "\n").encode()
