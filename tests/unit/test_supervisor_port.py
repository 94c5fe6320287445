"""`orfeas up` holds the API's port from its first step, so the embedded servers it starts next
(which pick free ports of their own) can never be given it.

A fresh-clone run once had SeaweedFS listening on the port an e2e test had chosen for the
studio: the supervisor had only checked the port and let it go, and every request of that test
was answered by the S3 gateway.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from core.errors import ConfigurationError
from core.settings import Settings
from infra.embedded.ports import LOOPBACK, free_port, free_ports
from infra.supervisor import Supervisor, parts


def _supervisor(tmp_path: Path, port: int) -> Supervisor:
    return Supervisor(Settings(data_dir=tmp_path, host=LOOPBACK, port=port))


def _can_bind(port: int) -> bool:
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            other.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def test_the_port_is_held_until_the_supervisor_lets_it_go(tmp_path: Path) -> None:
    port = free_port()
    supervisor = _supervisor(tmp_path, port)
    supervisor._hold_port()
    try:
        assert not _can_bind(port)
        assert port not in free_ports(64)
        with socket.create_connection((LOOPBACK, port), timeout=1):
            pass  # it listens: a client arriving before the API child waits in the backlog
    finally:
        assert supervisor._api_socket is not None
        supervisor._api_socket.close()
    assert _can_bind(port)


def test_the_api_child_is_handed_the_held_socket(tmp_path: Path) -> None:
    port = free_port()
    supervisor = _supervisor(tmp_path, port)
    supervisor._hold_port()
    sock = supervisor._api_socket
    assert sock is not None
    try:
        api = parts(supervisor.settings, sock)[0]
        assert api.name == "api"
        assert api.pass_fds == (sock.fileno(),)
        assert f"--fd={sock.fileno()}" in api.argv
    finally:
        sock.close()


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError, match=f"port {port} .* in use"):
            _supervisor(tmp_path, port)._hold_port()
