"""The other ``orfeas`` commands as a user runs them: subprocesses on a data folder."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from tests.integration.test_up import (
    Up,
    cli_env,
    describe,
    orfeas,
    processes_naming,
    project_names,
    timing,
    token_for,
)


@pytest.mark.timeout(240)
def test_create_user_without_a_running_studio(tmp_path: Path):
    data = tmp_path / "studio"
    created = orfeas("admin", "create-user", "alice", "--password", "alice-secret-pw",
                     "--email", "alice@example.org", "--data", str(data))
    assert created.returncode == 0, created.stdout + created.stderr
    assert created.stdout.startswith("created user alice ("), created.stdout
    # The PostgreSQL it started briefly is stopped again, and nothing claims the folder.
    assert not processes_naming(data), describe(processes_naming(data))
    assert not (data / "postgres" / "postmaster.pid").exists()
    assert not (data / "state.json").exists()

    duplicate = orfeas("admin", "create-user", "alice", "--password", "another-secret",
                       "--data", str(data))
    assert duplicate.returncode != 0
    assert "user 'alice' already exists" in duplicate.stderr, duplicate.stderr
    assert "Traceback" not in duplicate.stderr

    short = orfeas("admin", "create-user", "bob", "--password", "short", "--data", str(data))
    assert short.returncode != 0
    assert "a password has at least 8 characters" in short.stderr, short.stderr
    assert "Traceback" not in short.stderr

    admin = orfeas("admin", "create-user", "carol", "--password", "carol-secret-pw", "--admin",
                   "--tier", "pro", "--data", str(data))
    assert admin.returncode == 0, admin.stdout + admin.stderr
    assert admin.stdout.startswith("created administrator carol ("), admin.stdout
    assert admin.stdout.rstrip().endswith("tier pro"), admin.stdout
    assert not processes_naming(data), describe(processes_naming(data))

    up = Up(data)
    try:
        timing("up on a folder made by create-user, to the ready line", up.wait_ready())
        token = token_for(up.url, "alice", "alice-secret-pw")
        assert project_names(up.url, token) == []
        carol = token_for(up.url, "carol", "carol-secret-pw")
        for who, tier in ((token, "free"), (carol, "pro")):  # a tier is read from the log
            usage = httpx.get(f"{up.url}/api/v1/me/usage", timeout=15,
                              headers={"Authorization": f"Bearer {who}"})
            assert usage.status_code == 200 and usage.json()["tier"] == tier, usage.text
        failed = orfeas("admin", "create-user", "bob", "--password", "short",
                        "--data", str(data))
        assert failed.returncode != 0 and "at least 8 characters" in failed.stderr
        up.stop_cleanly(signal.SIGTERM)
    finally:
        up.cleanup()


@pytest.mark.timeout(60)
def test_status_where_nothing_runs(tmp_path: Path):
    result = orfeas("status", "--data", str(tmp_path), timeout=30)
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"not running on {tmp_path}" in result.stdout

    # What a killed supervisor leaves behind: a state file naming a process that is gone.
    (tmp_path / "state.json").write_text(json.dumps({
        "pid": 2**22 + 1, "url": "http://127.0.0.1:1", "processes": {}, "services": {}}))
    result = orfeas("status", "--data", str(tmp_path), timeout=30)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "not running" in result.stdout


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", [["api"], ["projections"], ["dispatcher"],
                                     ["worker", "mesh"], ["worker", "gpu"]])
def test_a_part_without_a_database_url_says_so(command: list[str]):
    env = cli_env()  # no ORFEAS_* variable at all
    result = orfeas(*command, timeout=60, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "ORFEAS_DATABASE_URL is not set" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
