"""Checking an upload in a child process with bounded memory and time.

Proving that an upload is what it claims means parsing it, and parsing a mesh costs many
times its size: a valid 63 MiB STL made the API process grow by 971 MiB, and the face limit
lets a file ask for several GB. Inside the API that memory stayed with the process, and a slow
parse held a thread every other request shares. So the file is checked in a child process:
the API keeps only the spooled file on disk, and gets back a small :class:`MediaInfo` or the
reason for a refusal.

Why a fresh child per check, forked from a ``forkserver`` that has the readers imported:

- Fresh: nothing one hostile file does (a heap left fragmented, a reader's cache) reaches the
  next upload, and killing a child over its limit fails that upload alone. A shared process
  pool would fail every check in flight with it.
- Forked from a preloaded server: a fork costs milliseconds, where starting an interpreter and
  importing trimesh, NumPy and Pillow costs 0.6 s per upload.
- Not the mesh worker: an upload must be refused before anything is stored or recorded, and a
  round trip through the outbox, JetStream and a worker would queue every upload behind other
  users' repairs.

The child limits itself before it reads a byte: ``RLIMIT_AS`` (address space beyond what it
inherited, so an allocation past the limit raises ``MemoryError``) and ``RLIMIT_CPU`` (a
backstop); the parent enforces the wall-clock limit and kills the child past it. At most
:attr:`CheckLimits.at_once` checks run at a time per API process, so the machine's exposure
is bounded too. A child ends with the API process (:func:`core.lifeline.die_with`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import os
import resource
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import IO, Any, Final, TypeVar

from core import media
from core.errors import InvalidInput, MalformedInput, TooLarge, UnsupportedMedia
from core.lifeline import die_with
from core.media import MediaInfo, sniff_media

log = logging.getLogger(__name__)

T = TypeVar("T")

MIB: Final = 1024 * 1024

_REFUSALS: Final[dict[str, type[InvalidInput]]] = {
    cls.__name__: cls for cls in (InvalidInput, MalformedInput, TooLarge, UnsupportedMedia)}
"""The refusals a check may end with, sent by name and raised again in the API process."""


@dataclass(frozen=True)
class CheckLimits:
    """What one check may use.

    The defaults admit the largest mesh the face limit allows: a 5M-face binary STL (250 MB)
    takes about 2.9 GB and 15 s to load on a 2-core machine, 60 MiB about 700 MB and 1.5 s.
    """

    memory_bytes: int = 4096 * MIB
    seconds: float = 120.0
    at_once: int = 2


IN_PROCESS_PIXELS: Final = 4_000_000
"""Largest image decoded in the API process for a generation check: 16 MB as RGBA."""

IMAGE_LIMITS: Final = CheckLimits(memory_bytes=1024 * MIB, seconds=60.0)
"""A generation image has at most 40 megapixels: ~300 MB to decode, convert and inspect."""

COPY_CHUNK: Final = 1024 * 1024


@dataclass
class UploadChecker:
    """Runs upload checks in bounded children: :attr:`CheckLimits.at_once` at a time, and
    one at a time per uploader, so that one user's slow files wait for each other and never
    hold every check for everyone else."""

    limits: CheckLimits = field(default_factory=CheckLimits)
    _slots: asyncio.Semaphore | None = field(default=None, init=False, repr=False)
    _turns: dict[str, tuple[asyncio.Lock, int]] = field(default_factory=dict, init=False,
                                                        repr=False)

    async def sniff(self, path: Path, filename: str, *, uploader: str = "") -> MediaInfo:
        """:func:`core.media.sniff_media` of the file at ``path``, in a bounded child.

        Raises what ``sniff_media`` raises, and :class:`TooLarge` when the check needs more
        memory or time than :attr:`limits` allow.
        """
        return await self.run(sniff_media, (path, filename), filename, user=uploader)

    async def run(self, fn: Callable[..., T], args: tuple[Any, ...], label: str, *,
                  user: str = "") -> T:
        """:func:`run_bounded` within :attr:`limits`, taking turns as :meth:`sniff` does.

        Also what the API's other geometry runs in (a download's conversion, a diff's mesh
        distances, :mod:`core.geometry_tasks`): the same children bound its memory, and the
        same slots bound how many run at once.
        """
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limits.at_once)
        async with self._turn_of(user), self._slots:
            return await asyncio.to_thread(run_bounded, fn, args, label, self.limits)

    @asynccontextmanager
    async def _turn_of(self, uploader: str) -> AsyncIterator[None]:
        """Hold ``uploader``'s one turn; the lock is dropped once nobody waits for it."""
        lock, users = self._turns.get(uploader, (asyncio.Lock(), 0))
        self._turns[uploader] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._turns[uploader]
            if users == 1:
                del self._turns[uploader]
            else:
                self._turns[uploader] = (lock, users - 1)


def check_generation_image(source: Path | IO[bytes], filename: str) -> tuple[int, int]:
    """:func:`core.media.check_generation_image`, decoding a large image in a bounded child.

    The header is read here (the size limits need no pixels). An image of at most
    :data:`IN_PROCESS_PIXELS` is decoded here too, which is quicker than a child; a larger one
    (up to 40 megapixels, 280 MB once decoded and converted) is decoded in a child within
    :data:`IMAGE_LIMITS`, from the file itself or from a copy on disk. Blocks: call it in a
    thread. An open ``source`` is read from its start and left open.
    """
    width, height = media.generation_image_size(_rewound(source), filename)
    if width * height <= IN_PROCESS_PIXELS:
        return media.check_generation_image(_rewound(source), filename)
    if isinstance(source, Path):
        return run_bounded(media.check_generation_image, (source, filename), filename,
                           IMAGE_LIMITS)
    with tempfile.NamedTemporaryFile(prefix="orfeas-image-") as copy:
        source.seek(0)
        shutil.copyfileobj(source, copy, COPY_CHUNK)
        copy.flush()
        source.seek(0)
        return run_bounded(media.check_generation_image, (Path(copy.name), filename),
                           filename, IMAGE_LIMITS)


def _rewound(source: Path | IO[bytes]) -> Path | IO[bytes]:
    if not isinstance(source, Path):
        source.seek(0)
    return source


def run_bounded(fn: Callable[..., T], args: tuple[Any, ...], label: str,
                limits: CheckLimits) -> T:
    """Run ``fn(*args)`` in a fresh child within ``limits``; blocks, so call it in a thread.

    ``fn`` must be importable by name and return something picklable; the studio errors it
    raises are raised again here. ``label`` names the input in error messages.
    """
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, daemon=True, name=f"upload-check {label}",
                            args=(sender, os.getpid(), limits, fn, args))
    try:
        child.start()
        sender.close()
        ready = wait([receiver, child.sentinel], timeout=limits.seconds)
        outcome = _receive(receiver) if receiver in ready else None
    finally:
        if child.is_alive():
            child.kill()
        child.join(5)
        receiver.close()
    if outcome is None:
        raise _failure(label, child.exitcode, limits, timed_out=not ready)
    return _result(outcome, label, limits)


PRELOAD: Final = (__name__, "core.media", "core.meshio", "core.geometry_tasks",
                  "core.mesh_export", "core.meshopt_glb", "core.projections.diff")
"""What the fork server imports before it forks a child: the image and mesh readers and the
geometry the API's other children run (Pillow, trimesh, NumPy, SciPy), none of which the API
process itself imports. A child that imported them itself took some 200 ms more to convert a
small mesh (a 44 KB STL to GLB: 240 ms, against 40 ms with them preloaded)."""


def _context() -> Any:
    """The fork server's context, asked to preload :data:`PRELOAD` (and so the readers).

    The preload list is the process's one fork server's; it takes effect if no fork server runs
    yet. Otherwise each child imports what it needs itself: correct, only slower.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


def _receive(receiver: Connection) -> tuple[str, Any] | None:
    try:
        outcome: tuple[str, Any] = receiver.recv()
    except (EOFError, OSError):  # the child died while sending
        return None
    return outcome


def _result(outcome: tuple[str, Any], label: str, limits: CheckLimits) -> Any:
    status, value = outcome
    if status == "ok":
        return value
    if status == "memory":
        raise _over_memory(label, limits)
    if status == "refused":
        name, message = value
        raise _REFUSALS.get(name, InvalidInput)(message)
    log.error("upload check of %s failed: %s", label, value)
    raise UnsupportedMedia(f"{label}: could not be read ({value})")


def _failure(label: str, exitcode: int | None, limits: CheckLimits,
             *, timed_out: bool) -> TooLarge | UnsupportedMedia:
    """The error for a child that sent nothing: killed at the time limit, or died."""
    if timed_out or exitcode == -signal.SIGXCPU:
        return TooLarge(f"{label}: processing it took longer than {limits.seconds:g} s; "
                        "a file this complex is beyond this studio's limits")
    if exitcode == -signal.SIGKILL:  # nobody but the kernel's OOM killer sends it
        return _over_memory(label, limits)
    return UnsupportedMedia(f"{label}: could not be read (the reader ended with code "
                            f"{exitcode})")


def _over_memory(label: str, limits: CheckLimits) -> TooLarge:
    return TooLarge(f"{label}: processing it needs more than {limits.memory_bytes // MIB} MiB "
                    "of memory; a file this large or complex is beyond this studio's limits")


def _child_main(sender: Connection, parent_pid: int, limits: CheckLimits,
                fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """The child: limit itself, run ``fn``, send back one tagged outcome, and end."""
    die_with(parent_pid)
    _limit_self(limits)
    try:
        outcome: tuple[str, Any] = ("ok", fn(*args))
    except MemoryError:
        outcome = ("memory", None)
    except InvalidInput as error:
        name = type(error).__name__
        outcome = ("refused", (name if name in _REFUSALS else "InvalidInput", str(error)))
    except Exception as error:  # a reader's bug: reported, not raised in a child's stderr
        outcome = ("failed", f"{type(error).__name__}: {error}")
    sender.send(outcome)
    sender.close()


def _limit_self(limits: CheckLimits) -> None:
    """Cap this process's address space at what it has now plus the budget, and its CPU time.

    The budget is counted from the current size because the fork server's image (interpreter,
    NumPy, trimesh: ~1 GB of mostly shared mappings) is already part of the address space.
    """
    mapped = _address_space_bytes()
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = mapped + limits.memory_bytes
    soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    cpu = math.ceil(limits.seconds) + 1
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    if cpu_hard == resource.RLIM_INFINITY or cpu + 2 <= cpu_hard:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))


def _address_space_bytes() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[0])
    return pages * os.sysconf("SC_PAGE_SIZE")
