"""``orfeas up`` as a user runs it: a subprocess on a data folder, real services, real signals.

Every test starts the real command (``python -m infra.cli up``), reads its output as a terminal
would, talks to it over HTTP and with the other ``orfeas`` commands, and stops it with a signal.
After each stop no process it started may be left: every descendant pid is recorded while it
runs and checked afterwards, and so is every process whose command line names the data folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

import httpx
import psutil
import pytest
import trimesh

from infra.embedded.ports import free_port

REPO = Path(__file__).resolve().parents[2]
READY_WITHIN_S = 60.0  # the requirement, on a 2-core machine
STOP_WITHIN_S = 60.0
READY_LINE = "ready: ORFEAS Studio at http://"
PARTS = ("api", "projections", "dispatcher", "worker-mesh", "worker-gpu")
SERVICES = ("postgres", "nats", "s3")


def cli_env() -> dict[str, str]:
    """This environment without any ``ORFEAS_*`` variable, so every service is embedded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORFEAS_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def orfeas(*args: str, timeout: float = 120,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run one ``orfeas`` command to its end, as a user in the repository would."""
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args], cwd=REPO, env=env or cli_env(),
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those of ``processes`` still running (pid reuse is told apart by the start time)."""
    running = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
    return running


def processes_naming(folder: Path) -> list[psutil.Process]:
    """Running processes whose command line mentions ``folder``."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        with contextlib.suppress(psutil.Error):
            zombie = process.info["status"] == psutil.STATUS_ZOMBIE
            if not zombie and any(str(folder) in arg for arg in process.info["cmdline"] or ()):
                found.append(process)
    return found


def describe(processes: list[psutil.Process]) -> str:
    lines = []
    for process in processes:
        try:
            lines.append(f"{process.pid}: {' '.join(process.cmdline())[:160]}")
        except psutil.Error:
            lines.append(f"{process.pid}: (gone)")
    return "\n".join(lines)


class Up:
    """One ``orfeas up`` subprocess, its output read line by line in a thread.

    It runs in a session of its own, so that :meth:`stop` can send SIGINT to its whole process
    group as a terminal's Ctrl-C does, and :meth:`cleanup` can take everything down whatever a
    test left behind.
    """

    def __init__(self, data_dir: Path, port: int | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self._eof = False
        self._changed = threading.Condition()
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "up", "--data", str(data_dir),
             "--port", str(self.port)],
            cwd=REPO, env=cli_env() | (env or {}), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name="up-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float, *, after: int = 0) -> str:
        """The first output line from index ``after`` on that contains ``text``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[after:]:
                    if text in line:
                        return line
                if self._eof:
                    raise AssertionError(
                        f"up exited (code {self.process.poll()}) before printing {text!r}:\n"
                        + "\n".join(self.lines))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {text!r} from up within {timeout:g}s:\n"
                                         + "\n".join(self.lines))
                self._changed.wait(left)

    def wait_ready(self, timeout: float = READY_WITHIN_S) -> float:
        """Seconds from the start of the command to its ready line."""
        line = self.wait_for_line(READY_LINE, timeout)
        took = time.monotonic() - self.started
        assert self.url in line, line
        return took

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def wait_exit(self, timeout: float) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"up still runs after {timeout:g}s:\n{self.output}") from None
        self._reader.join(5)
        return code

    def stop(self, sig: signal.Signals = signal.SIGTERM, *, group: bool = False) -> int:
        """Send ``sig`` (to the whole process group with ``group``) and wait for the exit code."""
        if group:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        try:
            return self.process.wait(STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"up did not stop within {STOP_WITHIN_S:g}s after {sig.name}:\n"
                                 + self.output) from None

    def stop_cleanly(self, sig: signal.Signals = signal.SIGTERM, *, group: bool = False) -> float:
        """Stop it and prove that it exited 0 and left no process behind; returns the seconds."""
        recorded = self.descendants()
        assert len(recorded) >= len(PARTS) + len(SERVICES), describe(recorded)
        began = time.monotonic()
        code = self.stop(sig, group=group)
        took = time.monotonic() - began
        assert code == 0, f"up exited with {code} after {sig.name}:\n{self.output}"
        assert not alive(recorded), "left running:\n" + describe(alive(recorded))
        assert not processes_naming(self.data_dir), describe(processes_naming(self.data_dir))
        assert not (self.data_dir / "state.json").exists()
        self._reader.join(5)
        assert self.lines[-1].endswith("stopped"), self.output
        return took

    def cleanup(self) -> None:
        """For ``finally``: leave nothing running, whatever state the test got it into."""
        recorded: list[psutil.Process] = []
        if self.process.poll() is None:
            with suppress(psutil.Error):
                recorded = self.descendants()
            self.process.terminate()
            try:
                self.process.wait(STOP_WITHIN_S)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError, psutil.NoSuchProcess):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        for process in alive(recorded) + processes_naming(self.data_dir):
            with suppress(ProcessLookupError, psutil.NoSuchProcess):
                process.kill()
        self._reader.join(5)


def readiness(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=15)


def token_for(url: str, username: str, password: str) -> str:
    response = httpx.post(f"{url}/api/v1/auth/tokens",
                          json={"username": username, "password": password}, timeout=15)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def project_names(url: str, token: str) -> list[str]:
    response = httpx.get(f"{url}/api/v1/projects", timeout=15,
                         headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return [p["name"] for p in response.json()["projects"]]


def status_pids(data_dir: Path) -> dict[str, tuple[int, bool]]:
    """``orfeas status``: exit code 0 required; each process's pid and whether it runs."""
    result = orfeas("status", "--data", str(data_dir), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = re.findall(r"^\s+(\S+)\s+pid (\d+)\s+(running|NOT RUNNING)$", result.stdout, re.M)
    return {name: (int(pid), state == "running") for name, pid, state in rows}


def timing(name: str, seconds: float) -> None:
    print(f"\n[timing] {name}: {seconds:.1f}s", file=sys.stderr)


# -- one studio for the checks made while it runs ---------------------------------------------


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory):
    up = Up(tmp_path_factory.mktemp("up-data"))
    try:
        timing("up, cold (new data folder), to the ready line", up.wait_ready())
        yield up
        timing("up, stop after SIGTERM", up.stop_cleanly(signal.SIGTERM))
    finally:
        up.cleanup()


def test_cli_repairs_a_mesh_through_the_running_studio(studio: Up, tmp_path: Path):
    """`orfeas mesh repair FILE -o OUT` uploads, follows the job with a progress bar and
    writes the repaired mesh in the format the output's extension names."""
    created = orfeas("admin", "create-user", "mendy", "--password", "mendy-secret-pw",
                     "--data", str(studio.data_dir))
    assert created.returncode == 0, created.stderr
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=5.0)
    broken = tmp_path / "broken.stl"
    trimesh.Trimesh(sphere.vertices, sphere.faces[4:], process=False).export(broken)
    out = tmp_path / "fixed.3mf"
    login = ["--user", "mendy", "--password", "mendy-secret-pw", "--data", str(studio.data_dir)]
    result = orfeas("mesh", "repair", str(broken), "-o", str(out), *login, timeout=150)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "step" in result.stderr and "succeeded" in result.stderr  # the progress bar
    assert f"wrote {out}" in result.stdout
    fixed = trimesh.load(out, force="mesh")
    assert fixed.is_watertight and fixed.is_winding_consistent and fixed.volume > 0

    refused = orfeas("mesh", "style", str(broken), "-o", str(out), "--params",
                     '{"style": "gothic"}', *login)
    assert refused.returncode != 0 and "style must be one of" in refused.stderr


@pytest.mark.timeout(120)
def test_up_prints_progress_and_is_ready(studio: Up):
    output = studio.output
    for expected in ("starting ORFEAS Studio in", "postgres: ready on", "nats: ready on",
                     "s3: ready on", "preparing tables", *(f"{p}: started (pid" for p in PARTS)):
        assert expected in output, f"no {expected!r} in:\n{output}"
    ready_at = next(i for i, line in enumerate(studio.lines) if READY_LINE in line)
    assert ready_at >= 8, "progress lines must come before the ready line"

    response = readiness(studio.url)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    checks = body["checks"]
    assert all(checks[name]["ok"] for name in ("postgres", "nats", "s3", "projections")), checks
    assert re.match(r"^\d+(\.\d+)?", checks["postgres"]["version"]), checks["postgres"]
    assert re.search(r"\d+\.\d+\.\d+", checks["nats"]["version"]), checks["nats"]
    assert checks["s3"]["server"], checks["s3"]
    lag = checks["projections"]["lag"]
    assert lag and all(isinstance(n, int) and n >= 0 for n in lag.values()), checks

    state = json.loads((studio.data_dir / "state.json").read_text())
    assert state["pid"] == studio.process.pid and state["url"] == studio.url
    assert (studio.data_dir / "state.json").stat().st_mode & 0o077 == 0, "it holds the S3 keys"


@pytest.mark.timeout(120)
def test_status_lists_every_process_as_running(studio: Up):
    result = orfeas("status", "--data", str(studio.data_dir), timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ORFEAS Studio at {studio.url} (supervisor pid {studio.process.pid})" in result.stdout
    pids = status_pids(studio.data_dir)
    assert set(pids) >= {*PARTS, *SERVICES}, result.stdout
    descendants = {p.pid for p in studio.descendants()}
    for name in (*PARTS, *SERVICES):
        pid, running = pids[name]
        assert running and pid in descendants, f"{name}:\n{result.stdout}"
    for check in ("postgres", "nats", "s3", "projections"):
        assert re.search(rf"^\s+{check}\s+ok\s", result.stdout, re.M), result.stdout


@pytest.mark.timeout(180)
def test_create_user_while_up_runs(studio: Up):
    created = orfeas("admin", "create-user", "alice", "--password", "alice-secret-pw",
                     "--data", str(studio.data_dir))
    assert created.returncode == 0, created.stdout + created.stderr
    assert re.search(r"created user alice \([0-9a-f-]{36}\)", created.stdout), created.stdout

    token = token_for(studio.url, "alice", "alice-secret-pw")
    response = httpx.post(f"{studio.url}/api/v1/projects", json={"name": "Bracket"}, timeout=15,
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    assert project_names(studio.url, token) == ["Bracket"]

    again = orfeas("admin", "create-user", "alice", "--password", "other-secret-pw",
                   "--data", str(studio.data_dir))
    assert again.returncode != 0
    assert "user 'alice' already exists" in again.stderr, again.stderr
    assert token_for(studio.url, "alice", "alice-secret-pw")  # the first password still holds


@pytest.mark.timeout(180)
def test_cli_generates_through_the_running_studio(studio: Up, tmp_path: Path):
    """`orfeas generate` streams the stages with a progress bar and writes the final GLB,
    through the studio's own API, dispatcher and GPU worker processes."""
    from tests.integration.test_generation import disc_png

    created = orfeas("admin", "create-user", "gena", "--password", "gena-secret-pw",
                     "--data", str(studio.data_dir))
    assert created.returncode == 0, created.stderr
    image = tmp_path / "disc.png"
    image.write_bytes(disc_png())
    out = tmp_path / "disc.glb"
    result = orfeas("generate", str(image), "-o", str(out), "--face-budget", "3000",
                    "--user", "gena", "--password", "gena-secret-pw",
                    "--data", str(studio.data_dir), timeout=150)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "final" in result.stderr and "stage" in result.stderr  # the progress bar
    assert f"wrote {out}" in result.stdout
    mesh = trimesh.load(out, force="mesh")
    assert mesh.is_watertight and 0 < len(mesh.faces) <= 3000

    missing = orfeas("generate", str(tmp_path / "nope.png"), "-o", str(out),
                     "--user", "gena", "--password", "gena-secret-pw",
                     "--data", str(studio.data_dir))
    assert missing.returncode == 2 and "no such file" in missing.stderr


@pytest.mark.timeout(120)
def test_second_up_on_the_same_folder_fails_fast(studio: Up):
    began = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-m", "infra.cli", "up", "--data", str(studio.data_dir),
         "--port", str(free_port())],
        cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=60, check=False,
    )
    took = time.monotonic() - began
    timing("second up on a folder in use, to its refusal", took)
    assert second.returncode != 0
    assert "another `orfeas up` is running on" in second.stderr, second.stdout + second.stderr
    assert "Traceback" not in second.stderr
    assert took < 15
    assert studio.process.poll() is None
    assert readiness(studio.url).status_code == 200
    state = json.loads((studio.data_dir / "state.json").read_text())
    assert state["pid"] == studio.process.pid


@pytest.mark.timeout(120)
def test_up_on_a_taken_port_fails_fast(studio: Up, tmp_path: Path):
    """Another folder but the first studio's port: refused before anything starts, because
    the new supervisor would otherwise take the first studio's /readyz for its own."""
    other = Up(tmp_path / "other", port=studio.port)
    try:
        code = other.wait_exit(30)
        assert code != 0, other.output
        assert f"port {studio.port}" in other.output and "in use" in other.output, other.output
        assert READY_LINE not in other.output
        assert not processes_naming(other.data_dir), describe(processes_naming(other.data_dir))
    finally:
        other.cleanup()
    assert readiness(studio.url).status_code == 200


@pytest.mark.timeout(120)
def test_a_killed_child_is_restarted(studio: Up):
    before = status_pids(studio.data_dir)
    old_pid, running = before["worker-mesh"]
    assert running
    mark = len(studio.lines)
    os.kill(old_pid, signal.SIGKILL)

    studio.wait_for_line("worker-mesh: exited with code -9; restarting", 30, after=mark)
    line = studio.wait_for_line("worker-mesh: restarted (pid", 30, after=mark)
    new_pid = int(re.findall(r"pid (\d+)", line)[0])
    assert new_pid != old_pid
    assert new_pid in {p.pid for p in studio.descendants()}
    after = status_pids(studio.data_dir)
    assert after["worker-mesh"] == (new_pid, True), after
    assert {k: v for k, v in after.items() if k != "worker-mesh"} == {
        k: v for k, v in before.items() if k != "worker-mesh"}
    assert readiness(studio.url).status_code == 200


@pytest.mark.timeout(120)
def test_sigterm_while_starting_stops_everything(tmp_path: Path):
    up = Up(tmp_path / "studio")
    try:
        up.wait_for_line("api: started (pid", READY_WITHIN_S)
        recorded = up.descendants()
        began = time.monotonic()
        up.process.send_signal(signal.SIGTERM)
        code = up.wait_exit(STOP_WITHIN_S)
        timing("up, SIGTERM while waiting for /readyz, to its exit", time.monotonic() - began)
        assert code == 130, up.output
        assert READY_LINE not in up.output, "it went on to ready after the signal"
        assert up.lines[-1].endswith("stopped"), up.output
        assert not alive(recorded), "left running:\n" + describe(alive(recorded))
        assert not processes_naming(up.data_dir), describe(processes_naming(up.data_dir))
    finally:
        up.cleanup()


# -- stop, start again, crash, start again ----------------------------------------------------


@pytest.mark.timeout(300)
def test_data_survives_restarts_and_nothing_outlives_up(tmp_path: Path):
    data = tmp_path / "studio"
    up = Up(data)
    try:
        timing("up, cold, to the ready line", up.wait_ready())
        created = orfeas("admin", "create-user", "alice", "--password", "alice-secret-pw",
                         "--data", str(data))
        assert created.returncode == 0, created.stdout + created.stderr
        token = token_for(up.url, "alice", "alice-secret-pw")
        response = httpx.post(f"{up.url}/api/v1/projects", json={"name": "Kept"}, timeout=15,
                              headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 201, response.text
        timing("up, stop after SIGTERM", up.stop_cleanly(signal.SIGTERM))
    finally:
        up.cleanup()

    up = Up(data)  # warm: the same folder, the same port is not needed
    try:
        timing("up, warm (existing data folder), to the ready line", up.wait_ready())
        assert project_names(up.url, token) == ["Kept"]  # the old token still works
        assert project_names(up.url, token_for(up.url, "alice", "alice-secret-pw")) == ["Kept"]

        # The supervisor itself dies (OOM killer, kill -9): its children must die with it.
        recorded = up.descendants()
        up.process.send_signal(signal.SIGKILL)
        up.process.wait(10)
        deadline = time.monotonic() + 30
        while alive(recorded) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive(recorded), "outlived a killed supervisor:\n" + describe(alive(recorded))
        assert not processes_naming(data), describe(processes_naming(data))
        status = orfeas("status", "--data", str(data), timeout=60)
        assert status.returncode == 3 and "not running" in status.stdout, status.stdout
    finally:
        up.cleanup()

    up = Up(data)  # after a crash: stale state.json and postmaster.pid are left behind
    try:
        timing("up after kill -9 of the previous one, to the ready line", up.wait_ready())
        assert project_names(up.url, token) == ["Kept"]
        timing("up, stop after Ctrl-C (SIGINT to the process group)",
               up.stop_cleanly(signal.SIGINT, group=True))
    finally:
        up.cleanup()
