"""ORFEAS_GENERATOR_HEARTBEAT_S (issue 21, item 11): how often GPU workers report their
generators, and with it how soon the menu says "(no worker)" of one that stopped."""

from __future__ import annotations

import pytest

from core.errors import ConfigurationError
from core.settings import Settings


def test_the_heartbeat_is_read_and_handed_to_child_processes() -> None:
    assert Settings.from_env({}).generator_heartbeat_s == 30.0
    settings = Settings.from_env({"ORFEAS_GENERATOR_HEARTBEAT_S": "2"})
    assert settings.generator_heartbeat_s == 2.0
    assert Settings.from_env(settings.to_env()) == settings


@pytest.mark.parametrize("raw", ["0", "-5", "soon"])
def test_a_heartbeat_under_a_second_is_refused(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="ORFEAS_GENERATOR_HEARTBEAT_S"):
        Settings.from_env({"ORFEAS_GENERATOR_HEARTBEAT_S": raw})
