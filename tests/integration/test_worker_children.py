"""A killed mesh worker takes its geometry processes with it.

The worker runs its geometry in a ``forkserver`` process pool; those processes are children of
the fork server, not of the worker, and each SIGKILL of the worker used to leave the fork
server, the resource tracker and the geometry child running (~300 MiB each time), also after
``orfeas up`` had stopped. Here the worker is a real ``orfeas worker mesh`` process on the
session's stack: it runs one job (so its pool exists), is SIGKILLed alone (not its process
group, as a crash or the OOM killer would end it), and every process it had started must be
gone within a few seconds. ``orfeas up`` also ends whatever a stopped or dead part left in
its process group, which reaches processes that no death signal covers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil

from core.events.job import JobState
from core.events.job_kinds import MESH_ANALYSE
from core.events.outbox import OutboxDispatcher
from core.events.project import Asset
from core.events.studio import Studio
from core.settings import Settings
from infra.process import ChildProcess, wait_until
from tests.integration.conftest import async_part
from tests.integration.helpers import box_stl, poll

REPO = Path(__file__).resolve().parents[2]
GONE_WITHIN_S = 10.0


def _living(processes: list[psutil.Process]) -> list[psutil.Process]:
    living = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                living.append(process)
    return living


def _describe(processes: list[psutil.Process]) -> str:
    lines = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            lines.append(f"{process.pid}: {' '.join(process.cmdline())[:160]}")
    return "\n".join(lines)


def test_sigkilled_mesh_worker_leaves_no_geometry_process(prepared: Settings,
                                                          tmp_path: Path) -> None:
    assert prepared.database_url is not None and prepared.s3 is not None
    from core.events.blobs import BlobStore

    studio = Studio.connect(prepared.database_url)
    data = box_stl()
    key = BlobStore(prepared.s3).put_bytes(data, "model/stl")
    project = studio.create_project("children", actor="u")
    asset = Asset(str(uuid.uuid4()), key, "0" * 64, "model/stl", "mesh", len(data),
                  "box.stl", "u")
    studio.record_asset(project, asset, "u")
    dispatcher = OutboxDispatcher(prepared)
    part = async_part("dispatcher", dispatcher.run)
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "worker", "mesh"], cwd=REPO,
        env=os.environ | prepared.to_env(), stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True)
    descendants: list[psutil.Process] = []
    try:
        job_id = studio.request_job(project, MESH_ANALYSE, {
            "asset_id": asset.asset_id, "blob_key": key, "format": "stl",
            "filename": "box.stl", "units": "mm"}, {}, actor="u")
        job = poll(lambda: studio.job(job_id), lambda j: j.state.finished, timeout=120)
        assert job.state is JobState.SUCCEEDED, job.error
        descendants = psutil.Process(worker.pid).children(recursive=True)
        assert descendants, "the worker ran a job without a geometry process"

        worker.send_signal(signal.SIGKILL)  # the worker alone, not its process group
        worker.wait(10)
        deadline = time.monotonic() + GONE_WITHIN_S
        while _living(descendants) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _living(descendants)
        assert not left, f"still running after the worker was killed:\n{_describe(left)}"
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        for process in _living(descendants):
            process.kill()
        part.stop()
        dispatcher.close()
        studio.close()


def test_a_dead_child_process_takes_its_process_group_along(tmp_path: Path) -> None:
    """What a supervised child started (here a shell's background ``sleep``) outlives the
    child's SIGKILL; :meth:`ChildProcess.terminate`, which the supervisor calls on a stop and
    before a restart, ends it."""
    log = tmp_path / "shell.log"
    shell = ChildProcess.spawn(["sh", "-c", "sleep 60 & echo left=$!; wait"], log_path=log)
    wait_until(lambda: "left=" in shell.log_tail(), timeout=10, what="shell")
    left = psutil.Process(int(shell.log_tail().rsplit("left=", 1)[1].split()[0]))
    try:
        os.kill(shell.pid, signal.SIGKILL)
        assert shell.wait(10) == -signal.SIGKILL
        assert _living([left]), "the background process ended with the shell by itself"
        shell.terminate()
        left.wait(timeout=GONE_WITHIN_S)  # psutil.TimeoutExpired if it is still running
    finally:
        for process in _living([left]):
            process.kill()
