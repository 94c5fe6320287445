"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import secrets
import socket
from contextlib import ExitStack
from pathlib import Path
from typing import Final

LOOPBACK = "127.0.0.1"

LOWEST_PORT: Final = 10_000
"""Ports below this are left alone: the well-known and registered services people run."""

_EPHEMERAL_SETTING: Final = Path("/proc/sys/net/ipv4/ip_local_port_range")
_EPHEMERAL_DEFAULT: Final = (49152, 65535)
"""IANA's dynamic ports, which macOS, Windows and the BSDs hand to outgoing connections."""

_TRIES: Final = 200
"""Random ports tried per port wanted before the kernel is asked for any free one."""


def ephemeral_range() -> tuple[int, int]:
    """The ports the kernel hands to outgoing connections, ``(low, high)`` inclusive."""
    try:
        low, high = (int(part) for part in _EPHEMERAL_SETTING.read_text().split())
    except (OSError, ValueError):
        return _EPHEMERAL_DEFAULT
    return low, high


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that nothing listens on right now, outside the range the
    kernel hands to outgoing connections.

    A port the kernel picks for ``bind(0)`` comes from that range, so an outgoing connection
    can take it as its source port before the server it was chosen for binds it. SeaweedFS
    connects its master, volume server and filer to one another for seconds before its S3
    gateway binds its gRPC port, and a fresh-clone run failed so ("s3 failed to listen on grpc
    port 60621: bind: address already in use"; Linux hands out 32768-60999). So ports are
    drawn at random from outside that range (and above :data:`LOWEST_PORT`), each kept only
    if it can be bound; all stay bound until every port is chosen, so none is handed out twice
    in one call. Another process may still take one before the server binds it; the window
    is milliseconds and the server then fails loudly with "address already in use".
    """
    low, high = ephemeral_range()
    below = max(low - LOWEST_PORT, 0)  # ports LOWEST_PORT .. low - 1
    above = max(65535 - high, 0)  # ports high + 1 .. 65535
    with ExitStack() as held:
        ports: list[int] = []
        for _ in range(count):
            for _ in range(_TRIES if below + above else 0):
                pick = secrets.randbelow(below + above)
                port = LOWEST_PORT + pick if pick < below else high + 1 + pick - below
                if port not in ports and _bound(held, port):
                    ports.append(port)
                    break
            else:
                ports.append(_bound_any(held))  # nothing free outside: any port will do
        return ports


def _bound(held: ExitStack, port: int) -> bool:
    """Bind ``port`` on the loopback and keep it bound in ``held``; False if it is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((LOOPBACK, port))
    except OSError:
        sock.close()
        return False
    held.enter_context(sock)
    return True


def _bound_any(held: ExitStack) -> int:
    """A port the kernel picks, kept bound in ``held``."""
    sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    sock.bind((LOOPBACK, 0))
    return int(sock.getsockname()[1])


def free_port() -> int:
    """One free loopback port."""
    return free_ports(1)[0]


def accepts_connections(port: int, timeout: float = 0.5) -> bool:
    """Whether something listens on ``127.0.0.1:port``."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False
