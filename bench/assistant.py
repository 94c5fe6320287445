"""How long the design assistant takes to answer from a cached analysis, on the stack
``orfeas up`` starts.

A mesh of about 100,000 faces (a UV sphere with a few faces cut away, so the answer has
reasons and a repair to suggest) is uploaded and analysed once; then "will this print?" about
it is asked over HTTP, each answer composed from the cached analysis and stored as events.
Every ask alternates with its peer, ``GET /api/v1/meshes/{id}/analysis`` (the same analysis
read and sent as it is, no words, no events), and with a history question that reads no
analysis. The goal is a p50 under 300 ms for the grounded answer.

``python -m bench.assistant`` (``--quick``: fewer questions).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trimesh

from bench.harness import Table, orfeas_up, percentile
from core.settings import Settings
from infra.admin import create_user

FACES = 100_000
QUICK, FULL = 20, 100


def broken_sphere() -> bytes:
    """About :data:`FACES` faces, not watertight: a few faces cut away."""
    count = int((FACES / 4) ** 0.5)  # a UV sphere of n x n has about 4 n² faces
    sphere = trimesh.creation.uv_sphere(radius=40.0, count=[count, count])
    holed = trimesh.Trimesh(sphere.vertices, sphere.faces[5:], process=False)
    data = holed.export(file_type="stl")
    assert isinstance(data, bytes)
    return data


def _timed(client: httpx.Client, method: str, url: str, **kwargs: object) -> float:
    start = time.perf_counter()
    response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
    elapsed = (time.perf_counter() - start) * 1000
    response.raise_for_status()
    return elapsed


def run(questions: int) -> None:
    with tempfile.TemporaryDirectory(prefix="orfeas-assistant-") as name:
        folder = Path(name)
        print("starting orfeas up ...", flush=True)
        with orfeas_up(folder) as state:
            settings = Settings(data_dir=folder)
            create_user(settings, "bench-user", "bench-user-pw", is_admin=False, email=None,
                        tier="enterprise")  # its requests are over the free tier's rate
            base = state["url"]
            token = httpx.post(f"{base}/api/v1/auth/tokens", timeout=60, json={
                "username": "bench-user", "password": "bench-user-pw"}).json()["token"]
            with httpx.Client(base_url=base, timeout=600,
                              headers={"Authorization": f"Bearer {token}"}) as client:
                project = client.post("/api/v1/projects", json={"name": "bench"}).json()["id"]
                data = broken_sphere()
                asset = client.post(f"/api/v1/projects/{project}/assets", content=data,
                                    params={"filename": "sphere.stl"}).json()
                started = time.perf_counter()
                analysed = client.post(f"/api/v1/meshes/{asset['id']}/analysis?wait=true",
                                       json={})
                analysed.raise_for_status()
                faces = analysed.json()["result"]["faces"]
                print(f"analysed {faces} faces in {time.perf_counter() - started:.1f} s "
                      "(once; every answer below reads the cached analysis)", flush=True)
                ask = f"/api/v1/projects/{project}/assistant/messages"
                body = {"text": "will this print?", "asset_id": asset["id"]}
                first = client.post(ask, json=body).json()
                assert first["facts"] and first["suggestions"], first
                answers, peers, history = [], [], []
                for _ in range(questions):
                    answers.append(_timed(client, "POST", ask, json=body))
                    peers.append(_timed(client, "GET", f"/api/v1/meshes/{asset['id']}/analysis"))
                    history.append(_timed(client, "POST", ask, json={
                        "text": "what changed since the last version?"}))
        table = Table(f"assistant answer latency over HTTP ({questions} each, interleaved, "
                      f"{faces}-face mesh)", ["what", "p50 ms", "p99 ms", "goal"])
        table.add("POST assistant/messages: will this print? (grounded, stored)",
                  percentile(answers, 50), percentile(answers, 99), "p50 < 300 ms")
        table.add("POST assistant/messages: what changed since ...? (history)",
                  percentile(history, 50), percentile(history, 99), "")
        table.add("peer: GET /meshes/{id}/analysis (the cached analysis as is)",
                  percentile(peers, 50), percentile(peers, 99), "")
        table.print()
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
              "(other work on the machine shows in every row alike)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.assistant", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK} questions, not {FULL}")
    args = parser.parse_args(argv)
    print(f"bench.assistant on {os.cpu_count()} CPUs, python {sys.version.split()[0]}",
          flush=True)
    run(QUICK if args.quick else FULL)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
