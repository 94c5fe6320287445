"""Making a helper process end when the process it works for ends.

Helper processes started through :mod:`multiprocessing`'s ``forkserver`` are children of the
fork server, not of the process that asked for them, and each of them holds the fork server's
"alive" pipe open, so the fork server never sees its client go either. A geometry child left
waiting on its task queue therefore outlived a SIGKILLed mesh worker for good (~300 MiB each
time, with the fork server and resource tracker beside it). Two mechanisms, because neither
covers every case on its own:

- ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the helper when its own parent (the
  fork server, or the process itself for a plain child) ends. Linux only.
- A watch on the process the helper works for: a daemon thread blocks on a pidfd of that
  process (or polls its pid where pidfds are missing) and ends the helper the moment it exits.
  This is what reaches across the fork server.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import sys
import threading
import time
from typing import Final

_PR_SET_PDEATHSIG: Final = 1
POLL_INTERVAL_S: Final = 0.5
"""How often the fallback watch (no pidfd) looks for the process it depends on."""


def die_with(pid: int) -> None:
    """End this process with SIGKILL as soon as process ``pid`` or this process's parent ends.

    Call it first thing in the helper (a pool initializer, a child's entry point). If ``pid``
    is already gone, this process ends at once.
    """
    _kill_on_parent_death()
    threading.Thread(target=_watch, args=(pid,), name=f"lifeline-{pid}", daemon=True).start()


def _kill_on_parent_death() -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _watch(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        _end()
    except (AttributeError, OSError):  # no pidfd_open (old kernel, not Linux): poll instead
        _poll(pid)
    else:
        select.select([fd], [], [])  # readable once the process has exited
        _end()


def _poll(pid: int) -> None:
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            _end()
        except PermissionError:  # alive, only owned by someone else
            pass
        time.sleep(POLL_INTERVAL_S)


def _end() -> None:
    with contextlib.suppress(OSError):
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(1)
