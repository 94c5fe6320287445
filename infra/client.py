"""A small client of the studio's HTTP API for the command line (standard library only)."""

from __future__ import annotations

import json
import mimetypes
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import OrfeasError


class ApiError(OrfeasError):
    """The studio answered with a problem (or could not be reached)."""


class StudioClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def sign_in(self, username: str, password: str) -> None:
        self.token = self.json("POST", "/api/v1/auth/tokens",
                               {"username": username, "password": password})["token"]

    def json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        with self._open(method, path, data, {"Content-Type": "application/json"}) as response:
            return json.load(response)

    def download(self, path: str, target: Path) -> int:
        with self._open("GET", path) as response:
            data = response.read()
        target.write_bytes(data)
        return len(data)

    def upload(self, path: str, data: bytes) -> Any:
        """POST a raw body (a file's bytes) and return the JSON answer."""
        with self._open("POST", path, data,
                        {"Content-Type": "application/octet-stream"}) as response:
            return json.load(response)

    def stream(self, path: str) -> Iterator[dict[str, Any]]:
        """GET an NDJSON stream and yield its events as they arrive."""
        with self._open("GET", path, None, {"Accept": "application/x-ndjson"}) as response:
            for line in response:
                if line.strip():
                    yield json.loads(line)

    def stream_upload(self, path: str, field: str, file: Path,
                      fields: dict[str, str]) -> Iterator[dict[str, Any]]:
        """POST a multipart form and yield the NDJSON events of the response."""
        boundary = uuid.uuid4().hex
        body = _multipart(boundary, field, file, fields)
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        with self._open("POST", path, body, headers) as response:
            for line in response:
                if line.strip():
                    yield json.loads(line)

    def _open(self, method: str, path: str, data: bytes | None = None,
              headers: dict[str, str] | None = None) -> Any:
        request = urllib.request.Request(self.base_url + path, data=data, method=method,  # noqa: S310
                                         headers=dict(headers or {}))
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310
        except urllib.error.HTTPError as e:
            raise ApiError(_problem(e)) from None
        except OSError as e:
            raise ApiError(f"cannot reach the studio at {self.base_url}: {e}") from None


def _problem(error: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(error.read())
        return f"{body.get('title', error.code)}: {body.get('detail', '')}"
    except ValueError:
        return f"HTTP {error.code}"


def _multipart(boundary: str, field: str, file: Path, fields: dict[str, str]) -> bytes:
    media = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        .encode() for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{file.name}"\r\nContent-Type: {media}\r\n\r\n'.encode()
        + file.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)
