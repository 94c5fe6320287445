"""An upload costs the API process little memory, whatever the file; a file that would cost the
check too much is refused with 413 and the API carries on.

A valid 63 MiB STL used to make the API process grow by 971 MiB: the mesh was parsed and
validated inside it. The first test uploads a 60 MiB binary STL, as a raw body and as a
multipart form, to a real ``orfeas api`` process and measures that process's resident memory
(its peak during each upload) with psutil and ``/proc``. The others give the bounded check
tight limits and send a mesh that needs more.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from starlette.testclient import TestClient

from core.settings import Settings
from core.upload_check import MIB, CheckLimits, UploadChecker
from infra.admin import create_user
from infra.embedded.ports import free_port
from infra.process import wait_until
from tests.integration.conftest import Account
from tests.integration.helpers import box_stl, bucket_keys, event_topics
from tests.stl import binary_stl

REPO = Path(__file__).resolve().parents[2]
Upload = Callable[[str, bytes], Any]
"""Uploads a file under a name as a raw body; returns the response."""
ALLOWED_GROWTH = 96 * MIB  # the goal is 64 MiB; bench.abuse measures it precisely


class PeakMemory:
    """The highest resident memory of ``process`` while the block runs.

    Where Linux allows it the kernel's own high-water mark is reset first and read after
    (``/proc/PID/clear_refs``, ``VmHWM``): no sample can miss a short peak. A sampling thread
    runs as well, for kernels without it.
    """

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.peak = 0
        self._done = threading.Event()

    def __enter__(self) -> PeakMemory:
        try:
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
            self._high_water_mark = True
        except OSError:  # the mark would be the process's whole life's: samples only
            self._high_water_mark = False
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.005):
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()
        if not self._high_water_mark:
            return
        with contextlib.suppress(OSError, ValueError):
            status = Path(f"/proc/{self.process.pid}/status").read_text()
            line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
            self.peak = max(self.peak, int(line.split()[1]) * 1024)


@pytest.fixture
def api_process(prepared: Settings, tmp_path: Path) -> Iterator[tuple[str, psutil.Process]]:
    """A real ``orfeas api`` process on ``prepared``: its URL and its psutil handle."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "api.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "api", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, env=os.environ | prepared.to_env(), stdout=log.open("ab"),
        stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the API exited:\n{log.read_text()}")
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200

        wait_until(healthy, timeout=60, what="api")
        yield url, psutil.Process(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _signed_in(prepared: Settings, url: str) -> tuple[dict[str, str], str]:
    create_user(prepared, "uploader", "uploader-secret-pw", is_admin=False, email=None)
    token = httpx.post(f"{url}/api/v1/auth/tokens", timeout=30,
                       json={"username": "uploader", "password": "uploader-secret-pw"})
    assert token.status_code == 201, token.text
    headers = {"Authorization": f"Bearer {token.json()['token']}"}
    project = httpx.post(f"{url}/api/v1/projects", json={"name": "Big"}, headers=headers,
                         timeout=30)
    assert project.status_code == 201, project.text
    return headers, project.json()["id"]


def test_a_60_mib_stl_upload_grows_the_api_by_less_than_64_mib(
        prepared: Settings, api_process: tuple[str, psutil.Process]) -> None:
    url, api = api_process
    headers, project = _signed_in(prepared, url)
    assets = f"{url}/api/v1/projects/{project}/assets"
    with httpx.Client(headers=headers, timeout=300) as http:
        # A first small upload of each kind: what the first upload of a process sets up once
        # (the S3 connection pool, the check's fork server) is not an upload's cost.
        warm = http.post(assets, params={"filename": "warm.stl"}, content=box_stl())
        assert warm.status_code == 201, warm.text
        warm = http.post(assets, files={"file": ("warm2.stl", box_stl(3.0))})
        assert warm.status_code == 201, warm.text

        uploads: dict[str, Callable[[bytes], httpx.Response]] = {
            "raw": lambda data: http.post(assets, params={"filename": "big.stl"}, content=data),
            "multipart": lambda data: http.post(assets, files={"file": ("big.stl", data)}),
        }
        for seed, (how, upload) in enumerate(uploads.items()):
            data = binary_stl(60 * MIB // 50, seed)
            before = api.memory_info().rss
            with PeakMemory(api) as memory:
                response = upload(data)
            assert response.status_code == 201, response.text
            assert response.json()["size"] == len(data)
            growth = memory.peak - before
            assert growth < ALLOWED_GROWTH, (
                f"{how}: the API grew by {growth / MIB:.0f} MiB for a "
                f"{len(data) / MIB:.0f} MiB upload")
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200


@pytest.fixture
def uploads_to(client: TestClient, make_account: Callable[..., Account]) -> Upload:
    owner = make_account("owner")
    project = client.post("/api/v1/projects", json={"name": "Limits"}, headers=owner.headers)
    assert project.status_code == 201, project.text
    assets = f"/api/v1/projects/{project.json()['id']}/assets"

    def upload(filename: str, data: bytes) -> Any:
        return client.post(assets, params={"filename": filename}, content=data,
                           headers=owner.headers)

    return upload


def _limit_checks(client: TestClient, limits: CheckLimits) -> None:
    client.app.state.resources.upload_checker = UploadChecker(limits)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("limits", "reason"), [
    pytest.param(CheckLimits(memory_bytes=32 * MIB), "MiB of memory", id="memory"),
    pytest.param(CheckLimits(seconds=0.01), "took longer than", id="time"),
])
def test_a_mesh_over_the_checks_limits_is_413_and_the_api_carries_on(
        client: TestClient, prepared: Settings, uploads_to: Upload,
        limits: CheckLimits, reason: str) -> None:
    """A 10 MiB STL takes ~120 MB and a few hundred ms to check: over these limits."""
    _limit_checks(client, limits)
    topics, keys = event_topics(prepared), bucket_keys(prepared)
    refused = uploads_to("heavy.stl", binary_stl(10 * MIB // 50, seed=7))
    assert refused.status_code == 413, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "heavy.stl" in refused.json()["detail"] and reason in refused.json()["detail"]
    assert event_topics(prepared) == topics and bucket_keys(prepared) == keys

    _limit_checks(client, CheckLimits())
    assert client.get("/healthz").status_code == 200
    accepted = uploads_to("box.stl", box_stl())
    assert accepted.status_code == 201, accepted.text
