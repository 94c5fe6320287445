"""Scene-change origins: one format written, everything ever stored read back."""

from __future__ import annotations

from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from core.scene import origins
from core.scene.origins import Kind
from core.scene.undo import LoggedChange, change_to_undo, undo_to_redo


def test_what_is_written_reads_back() -> None:
    job = uuid4()
    for written, kind, version in ((origins.SOCKET, Kind.SOCKET, None),
                                   (origins.SERVER, Kind.SERVER, None),
                                   (origins.job(job), Kind.JOB, None),
                                   (origins.job_undo(job), Kind.JOB_UNDO, None),
                                   (origins.undo(41), Kind.UNDO, 41),
                                   (origins.redo(42), Kind.REDO, 42),
                                   (origins.revert("v1"), Kind.REVERT, None)):
        parsed = origins.parse(written)
        assert (parsed.kind, parsed.version) == (kind, version)
        assert str(parsed) == written


def test_origins_stored_before_the_format_are_read() -> None:
    job = uuid4()
    assert origins.parse(f"undo:{job}") == origins.parse(origins.job_undo(job))
    assert origins.parse(f"cache:{job}").kind is Kind.CACHE
    for odd in ("undo:", "undo:x", "redo:", "redo:7:8", "undo:٣", "test", "", "w"):
        assert origins.parse(odd).kind is Kind.OTHER, odd


@given(st.text())
def test_any_text_parses(text: str) -> None:
    parsed = origins.parse(text)
    if parsed.kind in (Kind.UNDO, Kind.REDO):
        assert parsed.version is not None and parsed.version >= 0


def test_a_job_undo_is_on_nobodys_undo_stack() -> None:
    job = str(uuid4())
    history = [LoggedChange(1, "ann", "ws"), LoggedChange(2, "ann", f"undo:{job}"),
               LoggedChange(3, "ann", origins.job_undo(uuid4()))]
    assert change_to_undo(history, "ann") == history[0]
    assert undo_to_redo(history, "ann") is None
    undone = [*history, LoggedChange(4, "ann", origins.undo(1)),
              LoggedChange(5, "ann", origins.job_undo(uuid4()))]
    assert change_to_undo(undone, "ann") is None
    assert undo_to_redo(undone, "ann") == undone[3]
