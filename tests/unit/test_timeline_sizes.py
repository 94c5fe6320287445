"""Timeline lines give sizes as people read them (issue 21, item 10): "uploaded apple.png
(1.5 KB)", not "(1488 bytes)"."""

from __future__ import annotations

import pytest

from core.projections.history import file_size


@pytest.mark.parametrize(("size", "said"), [
    (0, "0 B"), (999, "999 B"), (1000, "1.0 KB"), (1488, "1.5 KB"), (999_949, "999.9 KB"),
    (999_999, "1.0 MB"), (1_500_000, "1.5 MB"), (2_000_000_000, "2.0 GB"),
    (5 * 10**13, "50.0 TB"),
])
def test_file_size(size: int, said: str) -> None:
    assert file_size(size) == said
