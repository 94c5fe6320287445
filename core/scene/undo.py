"""Per-user undo and redo of scene changes, computed from the log.

The server keeps no undo stacks in memory: a user's request may reach any API node, and a
room may have been unloaded since the change. Instead the change to undo is found in the
scene's events, and pycrdt's ``UndoManager`` computes its inverse the CRDT way: the document
is rebuilt as it was just before the change, the change is applied under a tracked origin and
everything after it under another, and ``undo()`` then reverts the user's change only,
keeping what others did since.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pycrdt import Map, UndoManager

from core.scene import document, origins

TARGET = "target"
LATER = "later"


def inverse(state_before: bytes, change: bytes, later: Iterable[bytes]) -> bytes:
    """The update that takes back ``change`` after ``later`` updates were applied on top.

    Parameters
    ----------
    state_before : bytes
        The document just before ``change``.
    change : bytes
        The update to take back.
    later : iterable of bytes
        Every update applied after ``change``, in order.
    """
    doc = document.load(state_before)
    scopes = [doc.get(document.OBJECTS, type=Map), doc.get(document.META, type=Map)]
    manager = UndoManager(scopes=scopes, capture_timeout_millis=0)
    manager.include_origin(TARGET)
    with doc.transaction(origin=TARGET):
        doc.apply_update(change)
    for update in later:
        with doc.transaction(origin=LATER):
            doc.apply_update(update)
    before = doc.get_state()
    while manager.can_undo():
        manager.undo()
    return bytes(doc.get_update(before))


@dataclass(frozen=True)
class LoggedChange:
    """One ``Scene.Updated`` event as undo needs it."""

    version: int
    actor: str
    origin: str

    @property
    def parsed(self) -> origins.Origin:
        return origins.parse(self.origin)


# What a user's undo stack holds besides their edits: their undos (taken back by redo) and
# nothing else. A job's undo is the job's business (the job records it, and undoing the job
# again is refused), so per-user undo and redo step over it.
_NOT_EDITS = frozenset({origins.Kind.UNDO, origins.Kind.JOB_UNDO})


def change_to_undo(history: Sequence[LoggedChange], user: str) -> LoggedChange | None:
    """The user's latest edit (or redo) that has not been undone; oldest first in ``history``."""
    undone = {c.parsed.version for c in history if c.parsed.kind is origins.Kind.UNDO}
    for change in reversed(history):
        if change.actor == user and change.parsed.kind not in _NOT_EDITS \
                and change.version not in undone:
            return change
    return None


def undo_to_redo(history: Sequence[LoggedChange], user: str) -> LoggedChange | None:
    """The user's latest undo not yet redone, unless the user has edited since (which, as in
    every editor, empties the redo stack)."""
    redone = {c.parsed.version for c in history if c.parsed.kind is origins.Kind.REDO}
    for change in reversed(history):
        if change.actor != user:
            continue
        kind = change.parsed.kind
        if kind is origins.Kind.UNDO:
            if change.version not in redone:
                return change
            continue
        if kind not in (origins.Kind.REDO, origins.Kind.JOB_UNDO):
            return None  # a fresh edit after the undos
    return None
