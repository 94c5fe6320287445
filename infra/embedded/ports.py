"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import socket
from contextlib import ExitStack

LOOPBACK = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that nothing listens on right now.

    All sockets are held open until every port is chosen, so the kernel never hands out the same
    port twice in one call. Another process may still take one before the server binds it; the
    window is milliseconds and the server then fails loudly with "address already in use".
    """
    with ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((LOOPBACK, 0))
            ports.append(sock.getsockname()[1])
        return ports


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
