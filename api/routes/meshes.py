"""Mesh commands and their results. Each command is a ``Job.Requested`` event; the outbox
dispatcher, not this route, hands it to NATS."""

from __future__ import annotations

import asyncio
import re
import tempfile
import unicodedata
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote
from uuid import UUID

from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api.activity import record_usage
from api.auth import Access, Scope, current_user, guard
from api.conditional import blob_headers, not_modified
from api.jsonbody import MAX_JSON_BYTES, Json, json_object, read_limited
from api.openapi import Query, contract
from api.ratelimit import charge_job
from api.resources import Resources, resources
from api.routes.jobs import job_body, wait_for_job
from api.routes.projects import asset_body
from api.schemas import ASSET, MATERIALS, QUEUED
from core.contracts.export import EXPORT_FORMATS
from core.contracts.mesh_params import (
    TEXTURE_SIZES,
    AnalysisParams,
    MaterialParams,
    OptimiseParams,
    RepairParams,
    StyleParams,
    check_mesh_params,
    material_catalogue,
)
from core.errors import InvalidInput, NotFound
from core.events.activity import exported
from core.events.job_kinds import MESH_ANALYSE, MESH_MATERIAL, MESH_OPERATIONS
from core.events.roles import Role
from core.geometry_tasks import export_file, fetch_blobs
from core.meshopt_glb import encoding_wanted
from core.scene import document

MAX_WAIT_S = 300.0
# Operations that rebuild the surface (and so lose its UVs and textures): a material the mesh
# wore is made again on their result.
_KEEPS_THE_MATERIAL = frozenset(MESH_OPERATIONS.values()) - {MESH_MATERIAL}
WAIT = (Query("wait", {"type": "string", "enum": ["true", "false", "1", "0"]},
              "true: answer when the job has ended (or at the timeout, with 202)."),
        Query("timeout", {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_WAIT_S},
              "Seconds to wait with wait=true (default and most: 300)."))
EXPORT_MEDIA_TYPES = ("model/gltf-binary", "model/stl", "model/obj", "model/ply", "model/off",
                      "model/gltf+json", "model/3mf", "application/zip",
                      "application/vnd.ms-package.3dmanufacturing-3dmodel+xml")
JOB: dict[str, Any] = {"type": "object", "required": ["job_id", "state"]}


async def _mesh(request: Request) -> dict[str, Any]:
    asset = await resources(request).read_models.asset(UUID(request.path_params["asset_id"]))
    if asset is None:
        raise NotFound(f"mesh {request.path_params['asset_id']} not found")
    if asset["kind"] != "mesh":
        raise InvalidInput(f"asset {asset['asset_id']} is an {asset['kind']}, not a mesh")
    return asset


@contract(response=MATERIALS)
@guard(Access(Scope.USER))
async def materials(request: Request) -> Response:
    """The material kinds with their defaults, and the texture sizes a bake may ask for: the
    workspace lists and previews materials from this, not from a copy of the worker's table."""
    return Json({"materials": material_catalogue(), "texture_sizes": list(TEXTURE_SIZES)})


@contract(response=ASSET)
@guard(Access(Scope.ASSET, Role.VIEWER))
async def get_mesh(request: Request) -> Response:
    return Json(asset_body(await _mesh(request)))


@contract(body=AnalysisParams, body_optional=True, query=WAIT, status=202, response=QUEUED,
          answers={200: JOB})
@guard(Access(Scope.ASSET, Role.EDITOR))
async def request_analysis(request: Request) -> Response:
    return await _request(request, MESH_ANALYSE)


@contract(per="operation", bodies={"repair": RepairParams, "style": StyleParams,
                                   "material": MaterialParams, "optimise": OptimiseParams},
          body_optional=True, query=WAIT, status=202, response=QUEUED, answers={200: JOB})
@guard(Access(Scope.ASSET, Role.EDITOR))
async def request_operation(request: Request) -> Response:
    """``POST /meshes/{id}/<operation>``: queue a job that makes a new mesh from this one."""
    operation = request.path_params["operation"]
    kind = MESH_OPERATIONS.get(operation)
    if kind is None:
        raise NotFound(f"no mesh operation {operation!r}; operations are "
                       f"{', '.join(sorted(MESH_OPERATIONS))}, and analysis")
    return await _request(request, kind)


async def _request(request: Request, kind: str) -> Response:
    asset = await _mesh(request)
    raw = await read_limited(request, MAX_JSON_BYTES)
    data = json_object(raw) if raw.strip() else {}
    return await queue_mesh_job(request, asset, kind, data)


RecordJob = Callable[[UUID, str, dict[str, Any], dict[str, Any], str], UUID]
"""Records a job command: (project, kind, inputs, params, actor) → the job's id."""


async def queue_mesh_job(request: Request, asset: dict[str, Any], kind: str,
                         data: dict[str, Any], record: RecordJob | None = None) -> Response:
    """Check everything (the mesh, the parameters, the wait) before the job is recorded, then
    answer at once (202) or, with ``?wait=true``, when the job has ended. ``record`` writes
    the command (by default a plain :meth:`Studio.request_job`; the assistant records its
    suggestion as applied in the same transaction), so every mesh job, whoever asks for it,
    passes the same checks, limits and quotas."""
    res = resources(request)
    wait_s = _wait_seconds(request)
    data = dict(data)
    if kind == MESH_ANALYSE:
        data.setdefault("units", asset.get("units", "mm"))
    params = check_mesh_params(kind, data)
    if "object_id" in params:
        await _check_object(res, asset["project_id"], params["object_id"])
    inputs = {
        "asset_id": str(asset["asset_id"]),
        "blob_key": asset["blob_key"],
        "format": asset["filename"].rsplit(".", 1)[-1].lower(),
        "filename": asset["filename"],
        "units": asset.get("units", "mm"),
    }
    if kind in _KEEPS_THE_MATERIAL:
        worn = await res.read_models.worn_material(UUID(str(asset["asset_id"])))
        if worn is not None:  # made again on the result (workers.mesh.operations.operate)
            inputs["material"] = {k: v for k, v in worn.items() if k != "object_id"}
    await charge_job(request, res.pool, current_user(request).key)
    job_id = await asyncio.to_thread(
        record or res.studio.request_job, asset["project_id"], kind, inputs, params,
        current_user(request).key,
    )
    headers = {"Location": f"/api/v1/jobs/{job_id}"}
    if wait_s is None:
        return Json({"job_id": job_id, "state": "requested", "job_url": f"/api/v1/jobs/{job_id}",
                     "events_url": f"/api/v1/jobs/{job_id}/events"},
                    status_code=HTTPStatus.ACCEPTED, headers=headers)
    job = await wait_for_job(res, job_id, wait_s)
    body = job_body(job) | {"job_id": job_id, "mesh_id": _made_mesh(job)}
    finished = job["state"] in ("succeeded", "failed", "cancelled")
    return Json(body, status_code=HTTPStatus.OK if finished else HTTPStatus.ACCEPTED,
                headers=headers)


def _wait_seconds(request: Request) -> float | None:
    """``?wait=true`` holds the request for up to ``?timeout=`` seconds (default and most:
    :data:`MAX_WAIT_S`); a job still running then is answered 202 and can be polled."""
    wait = request.query_params.get("wait", "false").lower()
    if wait not in ("true", "false", "1", "0"):
        raise InvalidInput("wait must be true or false")
    if wait in ("false", "0"):
        return None
    raw = request.query_params.get("timeout", str(MAX_WAIT_S))
    try:
        timeout = float(raw)
    except ValueError:
        raise InvalidInput("timeout must be a number of seconds") from None
    if not 0 < timeout <= MAX_WAIT_S:
        raise InvalidInput(f"timeout must lie in (0, {MAX_WAIT_S}] seconds")
    return timeout


async def _check_object(res: Resources, project_id: UUID, object_id: str) -> None:
    scene = await asyncio.to_thread(res.studio.scene, project_id)
    if object_id not in document.snapshot(scene.state)[document.OBJECTS]:
        raise NotFound(f"object {object_id} is not in the scene of project {project_id}")


def _made_mesh(job: dict[str, Any]) -> str | None:
    made = (job.get("result") or {}).get("mesh")
    return made.get("asset_id") if isinstance(made, dict) else None


@contract(answers={202: JOB})
@guard(Access(Scope.ASSET, Role.VIEWER))
async def get_analysis(request: Request) -> Response:
    asset = await _mesh(request)
    models = resources(request).read_models
    analysis = await models.mesh_analysis(asset["asset_id"])
    if analysis is not None:
        maps = analysis["stats"].get("face_maps")
        return Json({"asset_id": asset["asset_id"], "job_id": analysis["job_id"],
                     "analysed_at": analysis["analysed_at"], "stats": analysis["stats"],
                     "face_maps_url": maps and f"/api/v1/meshes/{asset['asset_id']}"
                                               "/analysis/faces"})
    job = await models.latest_job(MESH_ANALYSE, asset["asset_id"])
    if job is None:
        raise NotFound(f"mesh {asset['asset_id']} has not been analysed; POST to request it")
    if job["state"] == "failed":
        raise InvalidInput(f"the analysis failed: {job['error']}")
    return Json({"asset_id": asset["asset_id"], "job_id": job["id"], "state": job["state"]},
                status_code=HTTPStatus.ACCEPTED)


@contract(media_types=("application/octet-stream",))
@guard(Access(Scope.ASSET, Role.VIEWER))
async def face_maps(request: Request) -> Response:
    """The last analysis's per-face maps (overhang, wall thickness) for the viewer's heat
    maps, in the binary of :func:`workers.mesh.printability.encode_face_maps`."""
    key = await _analysis_blob(request, "face_maps", "no analysis with face maps")
    # no-cache: a new analysis replaces the maps, so a client asks each time (and gets a 304
    # while they are the ones it holds).
    return await _blob_answer(request, key, "application/octet-stream", "private, no-cache")


THUMBNAIL_MAX_AGE_S = 86_400


async def _analysis_blob(request: Request, field: str, missing: str) -> str:
    """The key of a blob the mesh's last analysis stored beside its figures
    (``stats[field]``)."""
    asset = await _mesh(request)
    analysis = await resources(request).read_models.mesh_analysis(asset["asset_id"])
    key = analysis and analysis["stats"].get(field)
    if not key:
        raise NotFound(f"mesh {asset['asset_id']} has {missing}; POST /analysis to make one")
    return str(key)


async def _blob_answer(request: Request, key: str, media_type: str,
                       cache_control: str) -> Response:
    """A small blob whole (its length known), or 304 where the client holds it already."""
    headers = blob_headers(key, cache_control)
    unchanged = not_modified(request, headers)
    if unchanged is not None:
        return unchanged
    data = await asyncio.to_thread(resources(request).blobs.get_bytes, key)
    return Response(data, media_type=media_type, headers=headers)


@contract(media_types=("image/png",))
@guard(Access(Scope.ASSET, Role.VIEWER))
async def thumbnail(request: Request) -> Response:
    """The small picture the last analysis drew of the mesh (:mod:`workers.mesh.thumbnail`),
    for lists of designs. Its bytes are content-addressed, so the ETag is their sha256 and a
    client may keep them a while: a new analysis of a changed mesh names other bytes."""
    key = await _analysis_blob(
        request, "thumbnail", "no thumbnail: it has not been analysed yet")
    return await _blob_answer(request, key, "image/png",
                              f"private, max-age={THUMBNAIL_MAX_AGE_S}")


@contract(media_types=EXPORT_MEDIA_TYPES, query=(
    Query("format", {"type": "string", "enum": ["original", *EXPORT_FORMATS]},
          "original (the default): the file as uploaded; else converted."),
    Query("encoding", {"type": "string", "enum": ["meshopt"]},
          "meshopt: the GLB's geometry packed (EXT_meshopt_compression).")))
@guard(Access(Scope.ASSET, Role.VIEWER))
async def export_mesh(request: Request) -> Response:
    """``?format=glb|stl|obj|3mf`` converts; ``original`` (the default) sends the file as
    stored. Conversion is light next to the worker's jobs (load and write), so the client
    gets it at once; it runs in a bounded child process (:mod:`core.geometry_tasks`), which
    bounds its memory and keeps the geometry stack out of the API process."""
    res = resources(request)
    asset = await _mesh(request)
    stored = asset["filename"].rsplit(".", 1)[-1].lower()
    fmt = request.query_params.get("format", "original").lower()
    stem = PurePosixPath(asset["filename"]).stem
    packed = encoding_wanted(request.query_params.get("encoding"))
    if packed and fmt != "glb":
        raise InvalidInput("encoding=meshopt applies to format=glb only")
    if fmt in ("original", stored) and not packed:
        headers = _download(asset["filename"])
        headers |= blob_headers(asset["blob_key"], headers["Cache-Control"])
        unchanged = not_modified(request, headers)
        if unchanged is not None:  # the client has the file: nothing is exported again
            return unchanged
        chunks = await asyncio.to_thread(lambda: iter(res.blobs.iter_chunks(asset["blob_key"])))
        record_usage(request.scope,
                     exported(current_user(request).key, str(asset["asset_id"]), fmt))
        return StreamingResponse(iterate_in_threadpool(chunks), media_type=asset["media_type"],
                                 headers=headers)
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"format must be original or one of {', '.join(EXPORT_FORMATS)}")
    inner = re.sub(r"[^A-Za-z0-9._-]", "_", stem).lstrip("._-")[:64] or "mesh"
    with tempfile.TemporaryDirectory(prefix="orfeas-export-") as folder:
        files = await asyncio.to_thread(fetch_blobs, res.blobs, [asset["blob_key"]],
                                        Path(folder))
        converted = await res.upload_checker.run(
            export_file, (files[asset["blob_key"]], stored, fmt, asset["filename"], inner,
                          asset.get("units", "mm"), packed),
            asset["filename"], user=current_user(request).key)
    record_usage(request.scope,
                 exported(current_user(request).key, str(asset["asset_id"]), fmt))
    return Response(converted.data, media_type=converted.media_type,
                    headers=_download(f"{stem}.{converted.extension}"))


def _download(filename: str) -> dict[str, str]:
    """Name the download as RFC 6266 says: a header is Latin-1, so a file name in any
    other script goes as UTF-8 in ``filename*`` (RFC 5987, which browsers prefer), beside a
    plain ASCII ``filename`` for clients that know only that one. Names come from users (an
    upload's, a generation's), so the fallback keeps no quote, backslash, percent sign or
    control character that could end the quoted string or the header."""
    plain = "".join(c if " " <= c <= "~" and c not in '"\\%' else "_"
                    for c in unicodedata.normalize("NFKD", filename)
                    if not unicodedata.combining(c))
    return {"Content-Disposition": f"attachment; filename=\"{plain}\";"
                                   f" filename*=UTF-8''{quote(filename, safe='')}",
            "Cache-Control": "private, max-age=3600"}
