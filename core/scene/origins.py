"""What made a scene change: the ``origin`` every ``Scene.Updated`` event records.

An origin is ``<kind>`` or ``<kind>:<reference>``; this module is the only place that writes
or reads one. Per-user undo depends on it: it must tell a user's own undo (which names the
scene version it took back) from everything else, and it reads whatever the log holds. So
:func:`parse` accepts every origin ever stored, never raises, and files what it does not
know under :attr:`Kind.OTHER`; a job's undo was once written as ``undo:<job id>``, the same
prefix as a user's undo, and is read as the job undo it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


class Kind(StrEnum):
    SOCKET = "ws"  # a collaborator's live edit
    SERVER = "server"  # a server command with no more specific kind
    JOB = "job"  # a job showed its result (reference: the job)
    JOB_UNDO = "job-undo"  # someone undid a job (reference: the job)
    UNDO = "undo"  # a user's undo (reference: the scene version it took back)
    REDO = "redo"  # a user's redo (reference: the scene version of the undo it took back)
    REVERT = "revert"  # a revert to a tagged version (reference: the version)
    CACHE = "cache"  # a cached generation shown in the scene (written before jobs of their own)
    OTHER = "other"  # anything else the log holds (tests and tools write free text)


@dataclass(frozen=True)
class Origin:
    kind: Kind
    reference: str = ""

    @property
    def version(self) -> int | None:
        """The scene version a user's undo or redo took back; None for any other origin."""
        if self.kind in (Kind.UNDO, Kind.REDO):
            return int(self.reference)
        return None

    def __str__(self) -> str:
        return f"{self.kind}:{self.reference}" if self.reference else str(self.kind)


SOCKET = str(Origin(Kind.SOCKET))
SERVER = str(Origin(Kind.SERVER))
# The one update that splits a stored scene's legacy transforms (core.scene.transform_keys).
SPLIT_TRANSFORMS = str(Origin(Kind.SERVER, "split-transforms"))


def job(job_id: UUID) -> str:
    return str(Origin(Kind.JOB, str(job_id)))


def job_undo(job_id: UUID) -> str:
    return str(Origin(Kind.JOB_UNDO, str(job_id)))


def undo(version: int) -> str:
    return str(Origin(Kind.UNDO, str(version)))


def redo(version: int) -> str:
    return str(Origin(Kind.REDO, str(version)))


def revert(version_id: str) -> str:
    return str(Origin(Kind.REVERT, version_id))


def parse(text: str) -> Origin:
    """The origin ``text`` stands for; never raises."""
    name, _, reference = text.partition(":")
    try:
        kind = Kind(name)
    except ValueError:
        return Origin(Kind.OTHER, text)
    if kind in (Kind.UNDO, Kind.REDO) and not (reference.isascii() and reference.isdigit()):
        if kind is Kind.UNDO and _is_uuid(reference):
            return Origin(Kind.JOB_UNDO, reference)  # as job undo wrote it before its own kind
        return Origin(Kind.OTHER, text)
    return Origin(kind, reference)


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True
