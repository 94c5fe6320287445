"""ORFEAS_ALLOWED_ORIGINS is read as browsers write an Origin header, and refused when it is
not one (a path or a bare host would never match, silently)."""

from __future__ import annotations

import pytest

from core.errors import ConfigurationError
from core.settings import Settings


def test_origins_are_normalised_and_survive_a_child_process() -> None:
    settings = Settings.from_env({
        "ORFEAS_ALLOWED_ORIGINS": " HTTPS://Studio.Example.com/ ,http://[::1]:5173,,"})
    assert settings.allowed_origins == ("https://studio.example.com", "http://[::1]:5173")
    assert Settings.from_env(settings.to_env()) == settings


@pytest.mark.parametrize("raw", ["studio.example.com", "https://studio.example.com/app",
                                 "ftp://studio.example.com", "null"])
def test_what_is_not_an_origin_is_refused(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="ORFEAS_ALLOWED_ORIGINS"):
        Settings.from_env({"ORFEAS_ALLOWED_ORIGINS": raw})


def test_login_throttle_settings_survive_a_child_process() -> None:
    settings = Settings.from_env({"ORFEAS_LOGIN_ACCOUNT_FAILURES": "3",
                                  "ORFEAS_LOGIN_WINDOW_S": "60"})
    assert (settings.login_account_failures, settings.login_window_s) == (3, 60.0)
    assert Settings.from_env(settings.to_env()) == settings
