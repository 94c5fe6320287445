"""Issue 5: image to 3D with the weight-free ``inflate`` backend, served on this machine's CPU.

``python -m bench.generation [--quick]`` (about a minute on 2 cores; ``--quick`` about 40 s)

The whole studio runs as an operator runs it: embedded PostgreSQL (fsync on), NATS and S3, then
one API node, the projection runner, the outbox dispatcher and one GPU worker, each its own
process (``python -m infra.cli ...``). Requests go over HTTP to ``generate-progressive``
(multipart upload, NDJSON stream), with images rendered from corpus meshes
(:mod:`tests.renders`); each gets its own seed, so none is answered from the cache unless meant
to be.

One table; each figure sits beside its peer from the same run:

- time to first preview and to final, server side (from the job's ``Started`` event, written
  when the worker picks the job up, to its ``StageCompleted`` events) beside the same stages
  computed by the backend alone in this process: the difference is what serving costs
  (image fetch, GLB export, S3, events, scene);
- the same end to end (from sending the request to reading the stage's line of the stream),
  beside the server-side figure;
- jobs per minute with 4 requests at once beside 1 at a time (one worker: the queue absorbs
  the burst);
- peak memory per job (resident set growth of the worker during a stage, from the stage
  events) beside the worker's whole resident set at that peak;
- a dedup hit end to end (the same image and parameters again) beside a fresh job's final.

Medians over the jobs. Goals from the issue are printed beside the figures; nothing asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import torch
from PIL import Image

from bench.harness import Table, median
from core.events.job import Job
from core.events.studio import Studio
from core.settings import Settings
from infra.admin import create_user
from infra.embedded.ports import free_port
from infra.embedded.stack import EmbeddedStack
from infra.schema import prepare
from tests.renders import SUBJECTS, view
from workers.gpu.backends import InflateBackend
from workers.gpu.worker import DEFAULT_FACE_BUDGET

ROOT = Path(__file__).resolve().parents[1]
PARTS = (("api", ()), ("projections", ()), ("dispatcher", ()), ("worker", ("gpu",)))
IMAGE_SIDE = 512
GOAL_PREVIEW_S = 0.5
GOAL_FINAL_S = 5.0
GOAL_HIT_MS = 50.0
USERNAME = "bench"
PASSWORD = secrets.token_urlsafe(12)


@dataclass(frozen=True)
class Plan:
    """How many jobs each part of the run sends; ``--quick`` is the same code, fewer jobs."""

    sequential: int
    concurrent: int
    hits: int


FULL = Plan(sequential=12, concurrent=16, hits=20)
QUICK = Plan(sequential=4, concurrent=8, hits=8)


# -- the studio, as processes ---------------------------------------------------------------


@dataclass
class RunningStudio:
    """The running studio: its URL, a signed-in HTTP client and a project to generate in."""

    url: str
    http: httpx.Client
    project: str
    settings: Settings


@contextlib.contextmanager
def running_studio(folder: Path) -> Iterator[RunningStudio]:
    with EmbeddedStack(Settings(data_dir=folder), fast=False) as stack:
        settings = stack.replace(port=free_port())
        prepare(settings)
        # enterprise: the bench's hundreds of jobs an hour are what that tier allows
        create_user(settings, USERNAME, PASSWORD, is_admin=True, email=None, tier="enterprise")
        with _parts(settings, folder) as url, httpx.Client(base_url=url, timeout=120) as http:
            token = http.post("/api/v1/auth/tokens",
                              json={"username": USERNAME, "password": PASSWORD}).json()["token"]
            http.headers["Authorization"] = f"Bearer {token}"
            project = http.post("/api/v1/projects", json={"name": "bench"}).json()["id"]
            _wait_for_worker(http)
            yield RunningStudio(url, http, project, settings)


@contextlib.contextmanager
def _parts(settings: Settings, folder: Path) -> Iterator[str]:
    """API, projections, dispatcher and GPU worker, each ``python -m infra.cli``."""
    env = os.environ | settings.to_env()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, extra in PARTS:
            argv = [sys.executable, "-m", "infra.cli", name, *extra]
            if name == "api":
                argv += ["--port", str(settings.port)]
            log = (folder / f"{name}.log").open("wb")
            processes.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log,
                                              stderr=subprocess.STDOUT))
        url = f"http://{settings.host}:{settings.port}"
        _wait_ready(url, processes, folder)
        yield url
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_ready(url: str, processes: list[subprocess.Popen[bytes]], folder: Path,
                timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process, (name, _) in zip(processes, PARTS, strict=True):
            if process.poll() is not None:
                log = (folder / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited:\n{log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/readyz", timeout=2).json().get("status") == "ready":
                return
        time.sleep(0.2)
    raise RuntimeError(f"the studio was not ready after {timeout} s")


def _wait_for_worker(http: httpx.Client, timeout: float = 90.0) -> None:
    """Until the GPU worker has reported its backends (it has started and imported torch)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = http.get("/api/v1/generators").json()["generators"]
        if any(g["name"] == "inflate" and g["available"] for g in listed):
            return
        time.sleep(0.3)
    raise RuntimeError("the GPU worker did not report its generators")


# -- one request ----------------------------------------------------------------------------


@dataclass
class Run:
    """One request: when each stream line arrived (seconds after sending) and its job."""

    job_id: str = ""
    arrived: dict[str, float] = field(default_factory=dict)
    cached: bool = False

    @property
    def total(self) -> float:
        return max(self.arrived.values())


def generate(studio: RunningStudio, image: bytes, seed: int) -> Run:
    """Upload and stream one generation; returns when the stream ends."""
    run = Run()
    started = time.perf_counter()
    with studio.http.stream(
            "POST", f"/api/v1/projects/{studio.project}/generate-progressive",
            files={"image": ("object.png", image, "image/png")}, data={"seed": str(seed)}) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line:
                continue
            event = json.loads(line)
            run.arrived.setdefault(event["event"], time.perf_counter() - started)
            run.job_id = event["job_id"]
            run.cached = run.cached or bool(event.get("cached"))
    if "final" not in run.arrived:
        raise RuntimeError(f"job {run.job_id} ended without a final stage: {run.arrived}")
    return run


@dataclass(frozen=True)
class ServerSide:
    """One job as its events tell it: seconds from pick-up to each stage, and memory."""

    preview_s: float
    final_s: float
    peak_delta_bytes: int
    peak_bytes: int


def server_side(store: Studio, job_id: str) -> ServerSide:
    started = None
    stages: dict[str, Any] = {}
    for event in store.events.get(UUID(job_id)):
        if isinstance(event, Job.Started):
            started = event.timestamp
        elif isinstance(event, Job.StageCompleted):
            stages[event.stage] = event
    assert started is not None, f"job {job_id} has no Started event"
    stats = [stage.stats for stage in stages.values()]
    return ServerSide(
        (stages["preview"].timestamp - started).total_seconds(),
        (stages["final"].timestamp - started).total_seconds(),
        max(int(s.get("peak_memory_delta_bytes", 0)) for s in stats),
        max(int(s.get("peak_memory_bytes", 0)) for s in stats),
    )


# -- the measurements -----------------------------------------------------------------------


@dataclass
class Figures:
    runs: list[Run] = field(default_factory=list)
    server: list[ServerSide] = field(default_factory=list)
    per_minute_1: float = float("nan")
    per_minute_4: float = float("nan")
    hits_upload: list[float] = field(default_factory=list)
    hits_asset: list[float] = field(default_factory=list)
    alone_preview: list[float] = field(default_factory=list)
    alone_final: list[float] = field(default_factory=list)


def images() -> list[bytes]:
    out = []
    for name in sorted(SUBJECTS):
        buffer = io.BytesIO()
        view(name, IMAGE_SIDE).image.save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def measure(studio: RunningStudio, plan: Plan, pictures: list[bytes]) -> Figures:
    assert studio.settings.database_url is not None
    figures = Figures()
    seeds = iter(range(1, 1_000_000))
    generate(studio, pictures[0], next(seeds))  # warm-up: first imports, first connections
    store = Studio.connect(studio.settings.database_url)
    try:
        began = time.perf_counter()
        for i in range(plan.sequential):
            run = generate(studio, pictures[i % len(pictures)], next(seeds))
            figures.runs.append(run)
        figures.per_minute_1 = 60 * plan.sequential / (time.perf_counter() - began)
        figures.server = [server_side(store, run.job_id) for run in figures.runs]
    finally:
        store.close()

    chosen = [(pictures[i % len(pictures)], next(seeds)) for i in range(plan.concurrent)]
    began = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda job: generate(studio, *job), chosen))
    figures.per_minute_4 = 60 * plan.concurrent / (time.perf_counter() - began)

    picture, seed = chosen[0]  # finished above: every repeat is a hit
    for _ in range(plan.hits):
        hit = generate(studio, picture, seed)
        assert hit.cached, "a repeated request was not answered from the cache"
        figures.hits_upload.append(hit.total)
    asset = studio.http.post(f"/api/v1/projects/{studio.project}/assets?filename=o.png",
                             content=picture).json()["id"]
    for _ in range(plan.hits):
        started = time.perf_counter()
        with studio.http.stream("POST", f"/api/v1/projects/{studio.project}/"
                                "generate-progressive",
                                json={"asset_id": asset, "seed": seed}) as r:
            body = r.read()
        assert b'"cached": true' in body, body[:300]
        figures.hits_asset.append(time.perf_counter() - started)
    return figures


def backend_alone(pictures: list[bytes], figures: Figures, rounds: int) -> None:
    """The same three stages in this process: no HTTP, queue, S3 or events."""
    backend = InflateBackend()
    cpu = torch.device("cpu")
    for i in range(rounds):
        image = Image.open(io.BytesIO(pictures[i % len(pictures)]))
        image.load()
        started = time.perf_counter()
        for stage in ("preview", "medium", "final"):
            backend.generate(image, stage=stage, seed=0, device=cpu,
                             face_budget=DEFAULT_FACE_BUDGET[stage])
            if stage == "preview":
                figures.alone_preview.append(time.perf_counter() - started)
        figures.alone_final.append(time.perf_counter() - started)


# -- the table ------------------------------------------------------------------------------


def table(figures: Figures, plan: Plan) -> Table:
    out = Table(
        f"inflate on {os.cpu_count()} CPU cores, {IMAGE_SIDE}px renders of "
        f"{len(SUBJECTS)} corpus meshes; medians of {plan.sequential} jobs one at a time "
        f"(one GPU worker process, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads here)",
        ["measure", "studio", "peer", "peer value", "goal", "met"])
    preview = median([s.preview_s for s in figures.server])
    final = median([s.final_s for s in figures.server])
    e2e_preview = median([r.arrived["preview"] for r in figures.runs])
    e2e_final = median([r.arrived["final"] for r in figures.runs])
    out.add("first preview after pick-up, s", preview, "backend alone, in process",
            median(figures.alone_preview), f"<= {GOAL_PREVIEW_S}", _met(preview, GOAL_PREVIEW_S))
    out.add("final after pick-up, s", final, "backend alone, 3 stages",
            median(figures.alone_final), f"<= {GOAL_FINAL_S:g}", _met(final, GOAL_FINAL_S))
    out.add("first preview end to end, s", e2e_preview, "after pick-up (above)", preview, "",
            "")
    out.add("final end to end, s", e2e_final, "after pick-up (above)", final, "", "")
    out.add("jobs per minute, 4 requests at once", figures.per_minute_4, "1 at a time",
            figures.per_minute_1, "", "")
    out.add("peak memory per job, MiB (RSS growth)",
            median([s.peak_delta_bytes / 2**20 for s in figures.server]),
            "worker RSS at that peak, MiB",
            median([s.peak_bytes / 2**20 for s in figures.server]), "", "")
    hit_ms = 1000 * median(figures.hits_upload)
    out.add("dedup hit end to end, ms (image sent)", hit_ms, "fresh job's final, ms",
            1000 * e2e_final, f"<= {GOAL_HIT_MS:g}", _met(hit_ms, GOAL_HIT_MS))
    asset_ms = 1000 * median(figures.hits_asset)
    out.add("dedup hit end to end, ms (asset_id)", asset_ms, "hit with image sent, ms", hit_ms,
            f"<= {GOAL_HIT_MS:g}", _met(asset_ms, GOAL_HIT_MS))
    return out


def _met(value: float, goal: float) -> str:
    return "yes" if value <= goal else "no"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer jobs (under 2 minutes)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    began = time.monotonic()
    pictures = images()
    with tempfile.TemporaryDirectory(prefix="orfeas-generation-") as folder, \
            running_studio(Path(folder)) as studio:
        figures = measure(studio, plan, pictures)
    backend_alone(pictures, figures, plan.sequential)
    table(figures, plan).print()
    print(f"({time.monotonic() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
