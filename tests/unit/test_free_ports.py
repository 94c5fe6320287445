"""Ports chosen for the embedded servers lie outside the range the kernel hands to outgoing
connections.

A fresh-clone run failed once because SeaweedFS's S3 gateway could not bind the gRPC port it
was given: an outgoing connection between SeaweedFS's own parts, made during its seconds of
start-up, had taken that port (60621, inside Linux's 32768-60999) as its source port.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from infra.embedded import ports
from infra.embedded.ports import LOOPBACK, LOWEST_PORT, ephemeral_range, free_ports


def test_ports_are_distinct_free_and_outside_the_outgoing_range() -> None:
    low, high = ephemeral_range()
    chosen = free_ports(200)
    assert len(set(chosen)) == 200
    assert all(port >= LOWEST_PORT and not low <= port <= high for port in chosen), chosen
    for port in chosen[:20]:
        with socket.socket() as sock:
            sock.bind((LOOPBACK, port))  # released: the server can bind it


def test_the_outgoing_range_is_read_from_the_kernel(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    setting = tmp_path / "ip_local_port_range"
    setting.write_text("20000\t60000\n")
    monkeypatch.setattr(ports, "_EPHEMERAL_SETTING", setting)
    assert ephemeral_range() == (20000, 60000)
    assert all(not 20000 <= port <= 60000 for port in free_ports(50))


def test_without_room_outside_it_any_free_port_is_taken(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    setting = tmp_path / "ip_local_port_range"
    setting.write_text("1024 65535\n")
    monkeypatch.setattr(ports, "_EPHEMERAL_SETTING", setting)
    chosen = free_ports(5)
    assert len(set(chosen)) == 5 and all(1024 <= port <= 65535 for port in chosen)


def test_a_port_someone_listens_on_is_never_chosen(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Only 65531-65535 lie outside this range: one is listened on, the others are chosen.
    setting = tmp_path / "ip_local_port_range"
    setting.write_text(f"{LOWEST_PORT} 65530\n")
    monkeypatch.setattr(ports, "_EPHEMERAL_SETTING", setting)
    free = [port for port in range(65531, 65536) if _can_bind(port)]
    if len(free) < 2:
        pytest.skip(f"ports 65531-65535 are in use here ({free} free)")
    with socket.socket() as listener:
        listener.bind((LOOPBACK, free[0]))
        listener.listen()
        chosen = free_ports(len(free) - 1)
    assert sorted(chosen) == free[1:]


def _can_bind(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True
