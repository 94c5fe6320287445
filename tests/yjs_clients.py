"""Real Yjs clients for the tests: drives ``tests/node/peer.mjs`` (yjs + y-websocket) over pipes.

One ``YjsPeers`` is one Node process holding any number of named clients. Each command is one
JSON line to the process and exactly one JSON line back::

    with YjsPeers() as peers:
        peers.connect("a", "ws://127.0.0.1:8000/ws/projects", project_id, token=token)
        peers.wait_synced("a")
        peers.set("a", "o1", "name", "chair")
        objects = wait_converged(peers, ["a", "b"])

``reference_server()`` starts the reference y-websocket server (``@y/websocket-server``), for the
harness's own test and for benchmarks. The Node packages live in ``tests/node/node_modules``,
installed by ``make tests/node/node_modules`` (a prerequisite of ``make test``).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from infra.embedded.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "tests" / "node"
PEER_SCRIPT = NODE_DIR / "peer.mjs"
REFERENCE_SERVER = NODE_DIR / "node_modules" / "@y" / "websocket-server" / "src" / "server.js"


class YjsPeerError(RuntimeError):
    """A command failed, timed out, or the Node process died."""


def node_available() -> bool:
    """Whether a ``node`` executable is on PATH."""
    return shutil.which("node") is not None


def ensure_node_modules(root: Path = ROOT) -> Path:
    """The ``tests/node/node_modules`` folder under ``root``; a clear error if it cannot be used."""
    if not node_available():
        raise RuntimeError(
            "Node.js is not installed: the Yjs client tests need `node` (20 or newer) on PATH"
        )
    modules = root / "tests" / "node" / "node_modules"
    if not (modules / "yjs").is_dir() or not (modules / "y-websocket").is_dir():
        raise RuntimeError(
            f"{modules} is missing or incomplete: run `make tests/node/node_modules`"
        )
    return modules


class YjsPeers:
    """A Node process running named Yjs clients, driven one JSON command at a time."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._stderr: deque[str] = deque(maxlen=50)
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._proc: subprocess.Popen[str] | None = None
        self._readers: list[threading.Thread] = []

    def __enter__(self) -> YjsPeers:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        ensure_node_modules()
        self._proc = subprocess.Popen(
            ["node", str(PEER_SCRIPT)],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._readers = [
            threading.Thread(target=self._read_replies, args=(self._proc.stdout,), daemon=True),
            threading.Thread(target=self._read_stderr, args=(self._proc.stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        self.send({"cmd": "ping"})

    def _read_replies(self, stream: IO[str]) -> None:
        for line in stream:
            self._replies.put(line)
        self._replies.put(None)  # end of the reply stream: the process is gone

    def _read_stderr(self, stream: IO[str]) -> None:
        for line in stream:
            self._stderr.append(line.rstrip("\n"))

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)

    def send(
        self, message: dict[str, Any], timeout: float | None = None, check: bool = True
    ) -> dict[str, Any]:
        """Send one command and return its reply. Raises ``YjsPeerError`` if no reply comes within
        ``timeout`` seconds, the process dies, or (with ``check``) the reply is not ``ok``."""
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise YjsPeerError("the Node peer process is not running")
        try:
            proc.stdin.write(json.dumps(message) + "\n")
            proc.stdin.flush()
            line = self._replies.get(timeout=self.timeout if timeout is None else timeout)
        except (BrokenPipeError, queue.Empty):
            line = None
        if line is None:
            what = f"exited ({proc.returncode})" if proc.poll() is not None else "did not answer"
            proc.kill()  # a late reply would be taken for the next command's: stop here
            time.sleep(0.1)  # let the stderr reader catch the last words
            raise YjsPeerError(f"node peer {what} on {message}; stderr tail:\n{self.stderr_tail()}")
        reply: dict[str, Any] = json.loads(line)
        if check and not reply.get("ok"):
            raise YjsPeerError(f"{message.get('cmd')} failed: {reply.get('error')}")
        return reply

    def close(self) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                self.send({"cmd": "quit"}, timeout=5, check=False)
            proc.wait(timeout=5)
        except (YjsPeerError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            self._proc = None
            for reader in self._readers:
                reader.join(timeout=5)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                with suppress(OSError):  # stdin may hold unsent bytes for a dead process
                    if stream is not None:
                        stream.close()

    # -- convenience wrappers, one per command ---------------------------------------------

    def connect(
        self,
        client: str,
        url: str,
        room: str,
        token: str | None = None,
        wait: bool = False,
        **options: Any,
    ) -> int:
        """Start client ``client`` on ``{url}/{room}?token=...``; returns its Yjs clientID."""
        reply = self.send(
            {
                "cmd": "connect",
                "client": client,
                "url": url,
                "room": room,
                "token": token,
                **options,
            }
        )
        if wait:
            self.wait_synced(client)
        return int(reply["client_id"])

    def set(self, client: str, object_id: str, field: str, value: Any) -> None:
        self.send(
            {"cmd": "set", "client": client, "object": object_id, "field": field, "value": value}
        )

    def set_fields(self, client: str, object_id: str, fields: dict[str, Any]) -> None:
        """Set several fields of one object in one transaction."""
        self.send({"cmd": "set", "client": client, "object": object_id, "fields": fields})

    def set_objects(self, client: str, objects: dict[str, dict[str, Any]]) -> None:
        """Create (or replace) many objects in one transaction, so one update carries them."""
        self.send({"cmd": "set_objects", "client": client, "objects": objects})

    def set_meta(self, client: str, key: str, value: Any) -> None:
        self.send({"cmd": "set_meta", "client": client, "key": key, "value": value})

    def set_hostile(self, client: str, object_id: str, kind: str, depth: int = 3000) -> None:
        """Put what the scene cannot hold under ``object_id`` with the stock Yjs API: ``kind``
        is "bytes" (a Uint8Array), "subdoc", "xml" (a Y.XmlFragment) or "deep" (an object
        whose field nests arrays ``depth`` deep)."""
        self.send({"cmd": "set_hostile", "client": client, "object": object_id, "kind": kind,
                   "depth": depth})

    def delete(self, client: str, object_id: str, field: str | None = None) -> None:
        message: dict[str, Any] = {"cmd": "delete", "client": client, "object": object_id}
        if field is not None:
            message["field"] = field
        self.send(message)

    def state(self, client: str) -> dict[str, Any]:
        """``objects``, ``meta``, ``synced``, ``status`` and ``client_id`` of one client."""
        return self.send({"cmd": "state", "client": client})

    def wait_synced(self, client: str, timeout: float = 5.0) -> None:
        self.send(
            {"cmd": "wait_synced", "client": client, "timeout_ms": int(timeout * 1000)},
            timeout=timeout + 5,
        )

    def disconnect(self, client: str) -> None:
        self.send({"cmd": "disconnect", "client": client})

    def reconnect(self, client: str) -> None:
        self.send({"cmd": "reconnect", "client": client})

    def close_client(self, client: str) -> None:
        """Destroy one client's provider and document; the name can be reused."""
        self.send({"cmd": "close", "client": client})

    def notices(self, client: str) -> list[dict[str, Any]]:
        """The studio's notices (``{"type", "detail", ...}``) received by a client connected
        with ``notices=True``, oldest first (a stock client only logs them)."""
        notices: list[dict[str, Any]] = self.send({"cmd": "notices", "client": client})["notices"]
        return notices

    def awareness(self, client: str, state: dict[str, Any] | None) -> None:
        self.send({"cmd": "awareness", "client": client, "state": state})

    def awareness_states(self, client: str) -> dict[int, Any]:
        """The awareness states this client sees, by Yjs clientID (its own included)."""
        states = self.send({"cmd": "awareness_states", "client": client})["states"]
        return {int(client_id): state for client_id, state in states.items()}

    def close_info(self, client: str) -> dict[str, Any]:
        """The last server close seen: ``code``, ``reason`` (None if none yet), ``closes`` (count),
        ``terminal`` (set once the provider stopped reconnecting), ``last_error``, ``status``."""
        return self.send({"cmd": "close_info", "client": client})


def _abridged(value: Any, longest: int = 80) -> Any:
    """The value with long strings cut short, so that a failure report stays readable."""
    if isinstance(value, str) and len(value) > longest:
        return f"{value[:longest]}... ({len(value)} characters)"
    if isinstance(value, dict):
        return {key: _abridged(item, longest) for key, item in value.items()}
    if isinstance(value, list):
        return [_abridged(item, longest) for item in value]
    return value


def wait_converged(peers: YjsPeers, clients: Iterable[str], timeout: float = 5.0) -> dict[str, Any]:
    """Poll until every listed client reports the same ``objects``; return them."""
    names = list(clients)
    deadline = time.monotonic() + timeout
    while True:
        seen: dict[str, dict[str, Any]] = {name: peers.state(name)["objects"] for name in names}
        first = seen[names[0]]
        if all(objects == first for objects in seen.values()):
            return first
        if time.monotonic() > deadline:
            raise AssertionError(f"clients did not converge within {timeout} s: "
                                 f"{json.dumps(_abridged(seen), sort_keys=True)}")
        time.sleep(0.02)


@contextmanager
def reference_server(timeout: float = 10.0) -> Iterator[str]:
    """Run the reference y-websocket server on a free local port; yields its ``ws://`` base URL."""
    ensure_node_modules()
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    proc = subprocess.Popen(
        ["node", str(REFERENCE_SERVER)],
        cwd=NODE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    _, err = proc.communicate()
                    raise RuntimeError(
                        f"reference y-websocket server did not start: {err.decode()}"
                    ) from None
                time.sleep(0.05)
        yield f"ws://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
