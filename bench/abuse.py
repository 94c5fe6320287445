"""What one hostile user can do to everyone else, on the stack ``orfeas up`` starts.

Three measurements, each printed beside its baseline from the same run (issue 19):

- **Sign-in flood**: p50/p99 of ``GET /api/v1/projects/{id}`` by a signed-in user, idle and
  while 20 concurrent clients send wrong passwords, once from one address at one account (the
  throttle blocks it after a few) and once from 20 addresses with a new user name each time
  (a botnet's shape: no throttle applies for a while, so attempts reach Argon2 and only its
  bounded pool, which answers 429 when full, stands between the flood and everyone else).
  Goal: within 2x of idle. A
  flood of ``GET /healthz`` just as fast shows what any flood costs a 2-core machine (the
  clients never wait: they ignore ``Retry-After``). The API's resident memory is sampled
  during each flood.
- **Mesh uploads**: the API process's resident memory before, at its peak during and after an
  upload of a valid binary STL of 1, 10 and 60 MiB. Goal: grows by at most 64 MiB.
- **Hostile frames**: the scene protocol decoder (``core.collab.protocol.parse``, what the socket
  runs on every frame) on 10 KiB to 8 MiB frames: the issue's unterminated varint, a length
  claiming far more than the frame holds, a state vector of one-byte pairs filling the frame
  (every byte a varint to read) and a presence state of JSON nested as deep as the frame
  allows. Goal: linear (the time's ratio to 10 KiB tracks the size's) and 8 MiB under 100 ms.

``python -m bench.abuse`` (``--quick`` takes fewer latency samples).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from bench.harness import Table, median, percentile
from core.collab import protocol
from core.errors import OrfeasError
from core.settings import Settings
from infra.admin import create_user
from infra.embedded.ports import free_port
from infra.supervisor import read_state

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
USERNAME = "bench"
PASSWORD = secrets.token_urlsafe(12)
TARGET = "victim"  # the account the one-address flood guesses at
FLOOD_CLIENTS = 20
GOAL_LATENCY_RATIO = 2.0
GOAL_RSS_MIB = 64.0
GOAL_8MIB_MS = 100.0
SKIP_AFTER_MS = 5000.0  # larger frames of a kind are not tried once one took this long
UPLOAD_MIB = (1, 10, 60)
FRAME_BYTES = (10 * 1024, 100 * 1024, MIB, 8 * MIB)


@dataclass(frozen=True)
class Plan:
    samples: int  # GET requests per latency phase
    warmup_s: float  # flooding before the samples start, so they see its steady state


FULL = Plan(samples=600, warmup_s=2.0)
QUICK = Plan(samples=150, warmup_s=1.0)


# -- the studio, as `orfeas up` runs it -----------------------------------------------------


@dataclass
class Studio:
    url: str
    api: psutil.Process
    http: httpx.Client
    project: str


@contextlib.contextmanager
def running_studio(folder: Path) -> Iterator[Studio]:
    port = free_port()
    log = (folder / "up.log").open("wb")
    up = subprocess.Popen([sys.executable, "-m", "infra.cli", "up", "--data", str(folder),
                           "--port", str(port)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        state = _wait_for_state(folder, up)
        # enterprise: the ordinary requests measured (600 a row) are over the free tier's
        # request rate, which would answer them 429 instead of measuring them
        create_user(Settings(data_dir=folder), USERNAME, PASSWORD, is_admin=False, email=None,
                    tier="enterprise")
        create_user(Settings(data_dir=folder), TARGET, secrets.token_urlsafe(12),
                    is_admin=False, email=None)
        with httpx.Client(base_url=state["url"], timeout=120) as http:
            signed = http.post("/api/v1/auth/tokens",
                               json={"username": USERNAME, "password": PASSWORD})
            signed.raise_for_status()
            http.headers["Authorization"] = f"Bearer {signed.json()['token']}"
            made = http.post("/api/v1/projects", json={"name": "abuse"})
            made.raise_for_status()
            yield Studio(state["url"], psutil.Process(state["processes"]["api"]), http,
                         made.json()["id"])
    finally:
        up.terminate()
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
        log.close()


def _wait_for_state(folder: Path, up: subprocess.Popen[bytes],
                    timeout: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if up.poll() is not None:
            tail = (folder / "up.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"orfeas up exited:\n{tail}")
        state = read_state(folder)
        if state is not None:
            return state
        time.sleep(0.5)
    raise RuntimeError(f"orfeas up was not ready after {timeout} s")


# -- (a) latency under a sign-in flood ------------------------------------------------------


def sample_latency(studio: Studio, samples: int) -> list[float]:
    """Seconds per ``GET /projects/{id}``, one after another on one kept-alive connection."""
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        studio.http.get(f"/api/v1/projects/{studio.project}").raise_for_status()
        times.append(time.perf_counter() - start)
    return times


class Flood(Enum):
    """What the 20 clients send, each as fast as it is answered (Retry-After is ignored)."""

    HEALTHZ = "20 clients: GET /healthz (scale)"
    ONE_ACCOUNT = "20 clients: 1 address, 1 account"
    SPREAD = "20 clients: 20 addresses, new names"


def flood(url: str, kind: Flood, started: EventType, stop: EventType, answers: Any) -> None:
    """The 20 concurrent clients, until ``stop`` (in a process of their own, so that their
    work does not share the measuring client's interpreter)."""

    async def client(index: int, counts: Counter[str]) -> None:
        # 127.0.0.0/8 is all loopback on Linux: each kind (and each spread client) calls from
        # an address of its own, so no throttle carries over from one kind to the next
        local = f"127.0.0.{10 + index}" if kind is Flood.SPREAD else "127.0.0.2"
        transport = httpx.AsyncHTTPTransport(local_address=local)
        async with httpx.AsyncClient(base_url=url, transport=transport, timeout=120) as http:
            attempt = 0
            while not stop.is_set():
                if kind is Flood.HEALTHZ:
                    answer = await http.get("/healthz")
                else:
                    name = f"nobody-{index}-{attempt}" if kind is Flood.SPREAD else TARGET
                    answer = await http.post("/api/v1/auth/tokens", json={
                        "username": name, "password": secrets.token_urlsafe(9)})
                counts[_answer(answer)] += 1
                attempt += 1

    async def main() -> Counter[str]:
        counts: Counter[str] = Counter()
        clients = [client(i, counts) for i in range(FLOOD_CLIENTS)]
        started.set()  # the process has imported what it needs: requests go out now
        await asyncio.gather(*clients)
        return counts

    answers.put(dict(asyncio.run(main())))


def _answer(response: httpx.Response) -> str:
    """The status, and for a 429 which refusal: the Argon2 pool was full, or a block."""
    if response.status_code != 429:
        return str(response.status_code)
    return "429 pool" if "being checked" in response.json()["detail"] else "429 block"


@dataclass
class Flooded:
    times: list[float]
    answers: dict[str, int]
    rss_before: int
    rss_peak: int


def under_flood(studio: Studio, plan: Plan, kind: Flood) -> Flooded:
    context = multiprocessing.get_context("spawn")
    started, stop, answers = context.Event(), context.Event(), context.Queue()
    process = context.Process(target=flood, args=(studio.url, kind, started, stop, answers))
    with PeakRss(studio.api) as rss:
        process.start()
        started.wait(120)
        time.sleep(plan.warmup_s)
        times = sample_latency(studio, plan.samples)
        stop.set()
        counts = answers.get(timeout=180)
        process.join(60)
    return Flooded(times, counts, rss.before, rss.peak)


class PeakRss:
    """The process's resident memory before and at its highest while the block runs."""

    def __init__(self, process: psutil.Process, every_s: float = 0.005) -> None:
        self.process = process
        self.every_s = every_s
        self.before = self.peak = self.after = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> PeakRss:
        self.before = self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.after = self._rss()
        self.peak = max(self.peak, self.after)

    def _watch(self) -> None:
        while not self._done.wait(self.every_s):
            self.peak = max(self.peak, self._rss())

    def _rss(self) -> int:
        return int(self.process.memory_info().rss)


def latency_table(studio: Studio, plan: Plan) -> Table:
    idle = sample_latency(studio, plan.samples)
    table = Table(
        f"(a) GET /api/v1/projects/{{id}}, {plan.samples} requests per row, idle vs. "
        f"{FLOOD_CLIENTS} concurrent clients (goal under a sign-in flood: within "
        f"{GOAL_LATENCY_RATIO:.0f}x of idle; /healthz shows what any flood this fast costs)",
        ["load", "p50 ms", "p99 ms", "p50 x idle", "p99 x idle", "API RSS +MiB",
         "flood answers"])
    p50, p99 = median(idle) * 1000, percentile(idle, 99) * 1000
    table.add("idle (baseline)", p50, p99, "1.00x", "1.00x", "-", "-")
    for kind in Flood:
        run = under_flood(studio, plan, kind)
        f50, f99 = median(run.times) * 1000, percentile(run.times, 99) * 1000
        answers = ", ".join(f"{code} x{n}" for code, n in sorted(run.answers.items()))
        table.add(kind.value, f50, f99, f"{f50 / p50:.2f}x", f"{f99 / p99:.2f}x",
                  (run.rss_peak - run.rss_before) / MIB, answers)
    return table


# -- (b) API memory per mesh upload ---------------------------------------------------------


def binary_stl(size_bytes: int) -> bytes:
    """A valid binary STL of about ``size_bytes``: a wavy triangulated grid (no degenerate or
    repeated faces, so a parser has real geometry to read)."""
    triangles = max(2, (size_bytes - 84) // 50)
    n = int(np.ceil(np.sqrt(triangles / 2)))
    ys, xs = np.mgrid[0:n + 1, 0:n + 1].astype(np.float32)
    vertices = np.stack([xs, ys, np.sin(xs * 0.3) * np.cos(ys * 0.3)], axis=-1).reshape(-1, 3)
    corner = (np.arange(n)[:, None] * (n + 1) + np.arange(n)[None, :]).ravel()
    faces = np.concatenate([
        np.stack([corner, corner + 1, corner + n + 2], axis=1),
        np.stack([corner, corner + n + 2, corner + n + 1], axis=1),
    ])[:triangles]
    record = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attr", "<u2")])
    body = np.zeros(len(faces), dtype=record)
    corners = vertices[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    body["normal"] = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    body["vertices"] = corners
    header = b"bench.abuse grid".ljust(80, b" ") + np.uint32(len(faces)).tobytes()
    return header + body.tobytes()


def upload_table(studio: Studio) -> Table:
    table = Table(
        f"(b) API resident memory around one mesh upload (goal: grows by at most "
        f"{GOAL_RSS_MIB:.0f} MiB)",
        ["upload", "answer", "seconds", "RSS before MiB", "peak MiB", "after MiB",
         "growth MiB", "within goal"])
    for mib in UPLOAD_MIB:
        body = binary_stl(mib * MIB)
        with PeakRss(studio.api) as rss:
            start = time.perf_counter()
            answer = studio.http.post(
                f"/api/v1/projects/{studio.project}/assets",
                params={"filename": f"grid-{mib}mib.stl"}, content=body,
                headers={"Content-Type": "application/octet-stream"})
            seconds = time.perf_counter() - start
        growth = (rss.peak - rss.before) / MIB
        table.add(f"{len(body) / MIB:.1f} MiB STL", answer.status_code, seconds,
                  rss.before / MIB, rss.peak / MIB, rss.after / MIB, growth,
                  "yes" if growth <= GOAL_RSS_MIB else "NO")
    return table


# -- (c) hostile frames through the decoder -------------------------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def unterminated_varint(size: int) -> bytes:
    """The issue's frame: continuation bytes all the way, ended by one final byte."""
    return b"\xff" * (size - 1) + b"\x01"


def overlong_update(size: int) -> bytes:
    """A sync update whose length claims 2^62 bytes, followed by the rest of the frame."""
    head = varint(0) + varint(2) + varint(1 << 62)
    return head + b"\x00" * (size - len(head))


def long_state_vector(size: int) -> bytes:
    """Sync step 1 with a state vector of one-byte (client, clock) pairs filling the frame:
    every byte is a varint the decoder must read."""
    pairs = (size - 16) // 2
    payload = varint(pairs) + b"\x01" * (2 * pairs)
    return varint(0) + varint(0) + varint(len(payload)) + payload


def nested_presence(size: int) -> bytes:
    """An awareness message whose one presence state is JSON nested as deep as the frame
    allows: the decoder parses it once (it refuses it as not JSON, at its recursion limit)."""
    state = b"[" * (size - 32)
    entry = varint(1) + varint(1) + varint(1) + varint(len(state)) + state
    return varint(1) + varint(len(entry)) + entry


def decode_ms(frame: bytes, repeats: int = 3) -> tuple[float, str]:
    """Best of ``repeats`` milliseconds for ``protocol.parse``, and how it answered."""
    best, outcome = float("inf"), ""
    for _ in range(repeats):
        start = time.perf_counter()
        try:
            protocol.parse(frame)
            outcome = "parsed"
        except OrfeasError as e:
            outcome = f"refused ({type(e).__name__})"
        except Exception as e:  # an unhandled error is what the issue found: show it
            outcome = f"crashed ({type(e).__name__})"
        best = min(best, (time.perf_counter() - start) * 1000)
    return best, outcome


def frame_table() -> Table:
    table = Table(
        f"(c) protocol.parse on hostile frames (goal: linear in size; 8 MiB under "
        f"{GOAL_8MIB_MS:.0f} ms)",
        ["frame", "size", "decode ms", "x size", "x time", "ns/byte", "answer", "within goal"])
    for name, make in (("0xff..0x01 varint", unterminated_varint),
                       ("length 2^62", overlong_update),
                       ("state vector, 1-byte pairs", long_state_vector),
                       ("presence JSON [[[...", nested_presence)):
        base: float | None = None
        last_ms = 0.0
        for size in FRAME_BYTES:
            if last_ms > SKIP_AFTER_MS:  # a quadratic decoder would take hours at 8 MiB
                table.add(name, _size(size), "-", "", "", "",
                          f"skipped: the last took {last_ms / 1000:.1f} s", "NO")
                continue
            last_ms, outcome = decode_ms(make(size), repeats=1 if last_ms > 1000 else 3)
            base = base or last_ms
            ok = last_ms < GOAL_8MIB_MS * size / FRAME_BYTES[-1] + 1.0
            table.add(name, _size(size), f"{last_ms:.3f}", f"{size / FRAME_BYTES[0]:.0f}x",
                      f"{last_ms / base:.0f}x", last_ms * 1e6 / size, outcome,
                      "yes" if ok else "NO")
    return table


def _size(size: int) -> str:
    return f"{size // MIB} MiB" if size >= MIB else f"{size // 1024} KiB"


# -- main -----------------------------------------------------------------------------------


def run(plan: Plan, out: Callable[[Table], None]) -> None:
    out(frame_table())
    with tempfile.TemporaryDirectory(prefix="orfeas-abuse-") as folder:
        print("starting orfeas up ...", flush=True)
        with running_studio(Path(folder)) as studio:
            out(latency_table(studio, plan))
            out(upload_table(studio))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.abuse", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer latency samples")
    args = parser.parse_args(argv)
    print(f"bench.abuse on {os.cpu_count()} CPUs, python {sys.version.split()[0]}", flush=True)
    run(QUICK if args.quick else FULL, Table.print)
    return 0


if __name__ == "__main__":
    sys.exit(main())
