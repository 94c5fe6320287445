"""Settings come from ORFEAS_* variables, refuse values that cannot work, and survive the trip
to a child process."""

from __future__ import annotations

import pytest

from core.errors import ConfigurationError
from core.settings import WS_FRAME_CEILING_BYTES, Settings


def test_the_frame_limit_defaults_to_the_ceiling_and_may_be_lowered() -> None:
    assert Settings.from_env({}).ws_max_frame_bytes == WS_FRAME_CEILING_BYTES
    lowered = Settings.from_env({"ORFEAS_WS_MAX_FRAME_BYTES": "65536"})
    assert lowered.ws_max_frame_bytes == 65536
    assert Settings.from_env(lowered.to_env()).ws_max_frame_bytes == 65536


@pytest.mark.parametrize("value", ["100", str(WS_FRAME_CEILING_BYTES + 1), "lots"])
def test_a_frame_limit_out_of_range_is_refused_by_name(value: str) -> None:
    with pytest.raises(ConfigurationError, match="ORFEAS_WS_MAX_FRAME_BYTES"):
        Settings.from_env({"ORFEAS_WS_MAX_FRAME_BYTES": value})
