"""``orfeas up`` brings its dead embedded services back, and the studio carries on.

Issue 19, reproduction 9: a NATS server killed under a running studio stayed dead (its
replacement, had there been one, would have listened on another port), so jobs were accepted
and never run while the dispatcher crash-looped. Here the real command runs on a data folder of
its own; its NATS and then its PostgreSQL are killed with SIGKILL, and the studio must restart
each on its old address, keep its processes running through the NATS outage, run a job
requested afterwards to the end and serve what was stored before.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trimesh

from tests.integration.test_up import Up, orfeas, project_names, readiness, token_for

RESTART_WITHIN_S = 60.0


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data folder outside pytest's temporary root: PostgreSQL runs as another user, and
    every pytest session started meanwhile resets that root to mode 0700."""
    folder = Path(tempfile.mkdtemp(prefix="orfeas-test-supervision-"))
    try:
        yield folder / "studio"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def service_pids(up: Up) -> dict[str, int]:
    state = json.loads((up.data_dir / "state.json").read_text())
    services: dict[str, int] = state["services"]
    return services


def wait_ready_again(up: Up, timeout: float = RESTART_WITHIN_S) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            response = readiness(up.url)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.HTTPError as e:
            last = repr(e)
        time.sleep(0.5)
    raise AssertionError(f"not ready again within {timeout:g}s: {last}\n{up.output}")


def repair_through(up: Up, tmp_path: Path, login: list[str]) -> None:
    """A mesh repair job from request to result, through the dispatcher and the mesh worker."""
    sphere = trimesh.creation.icosphere(subdivisions=1, radius=5.0)
    broken = tmp_path / "broken.stl"
    trimesh.Trimesh(sphere.vertices, sphere.faces[2:], process=False).export(broken)
    out = tmp_path / "fixed.stl"
    result = orfeas("mesh", "repair", str(broken), "-o", str(out), *login, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr + "\n" + up.output
    fixed = trimesh.load(out, force="mesh")
    assert isinstance(fixed, trimesh.Trimesh) and fixed.is_watertight


@pytest.mark.timeout(300)
def test_killed_nats_and_postgres_are_restarted_and_the_studio_carries_on(
        tmp_path: Path, data_dir: Path) -> None:
    up = Up(data_dir)
    try:
        up.wait_ready()
        created = orfeas("admin", "create-user", "sam", "--password", "sam-secret-pw",
                         "--data", str(up.data_dir))
        assert created.returncode == 0, created.stdout + created.stderr
        token = token_for(up.url, "sam", "sam-secret-pw")
        response = httpx.post(f"{up.url}/api/v1/projects", json={"name": "Kept"}, timeout=15,
                              headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 201, response.text
        login = ["--user", "sam", "--password", "sam-secret-pw", "--data", str(up.data_dir)]

        old = service_pids(up)
        mark = len(up.lines)
        os.kill(old["nats"], signal.SIGKILL)
        up.wait_for_line("nats: exited with code -9; restarting", 30, after=mark)
        line = up.wait_for_line("nats: restarted (pid", RESTART_WITHIN_S, after=mark)
        assert int(line.rsplit("pid ", 1)[1].rstrip(")")) == service_pids(up)["nats"]
        wait_ready_again(up)
        repair_through(up, tmp_path, login)
        after_nats = "\n".join(up.lines[mark:])
        for part in ("api", "dispatcher", "worker-mesh"):  # they reconnected, none crashed
            assert f"{part}: exited" not in after_nats, after_nats

        mark = len(up.lines)
        os.kill(old["postgres"], signal.SIGKILL)
        up.wait_for_line("postgres: exited with code -9; restarting", 30, after=mark)
        up.wait_for_line("postgres: restarted (pid", RESTART_WITHIN_S, after=mark)
        wait_ready_again(up)
        assert "Kept" in project_names(up.url, token)  # stored before the kill
        repair_through(up, tmp_path, login)
        up.stop_cleanly(signal.SIGTERM)
    finally:
        up.cleanup()
