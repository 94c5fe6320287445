"""Downloads of meshes named in any script (issue 19, reproduction 8).

A response header is Latin-1: a ``Content-Disposition`` carrying a Cyrillic or CJK file
name as it was made the export answer 500. It now names the file as RFC 6266 says, with the
exact name in ``filename*`` (RFC 5987) and an ASCII fallback that nothing can break out of.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import pytest
import trimesh
from starlette.testclient import TestClient

from api.routes.meshes import _download
from core.settings import Settings
from tests.integration.helpers import box_stl, poll

FALLBACK = re.compile(r'filename="([ !#-\[\]-~]*)"')  # printable ASCII, no quote or backslash
EXACT = re.compile(r"filename\*=UTF-8''([A-Za-z0-9!#$&+.^_`|~%-]+)")  # RFC 5987 attr-chars


def _names(header: str) -> tuple[str, str]:
    fallback, exact = FALLBACK.search(header), EXACT.search(header)
    assert fallback is not None and exact is not None, header
    return fallback.group(1), unquote(exact.group(1), errors="strict")


@pytest.mark.parametrize("stem", ["Тест", "模型"])
def test_meshes_named_in_any_script_download(client: TestClient, pipeline: Settings,
                                             make_account: Callable[..., Any], stem: str) -> None:
    ana = make_account("ana")
    project = client.post("/api/v1/projects", json={"name": "Names"},
                          headers=ana.headers).json()["id"]
    uploaded = client.post(f"/api/v1/projects/{project}/assets",
                           params={"filename": f"{stem}.stl"}, content=box_stl(),
                           headers=ana.headers)
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["filename"] == f"{stem}.stl"
    url = f"/api/v1/meshes/{uploaded.json()['id']}/export"
    for fmt, name, file_type in (("original", f"{stem}.stl", "stl"),
                                 ("glb", f"{stem}.glb", "glb")):
        def fetch(fmt: str = fmt) -> Any:
            return client.get(url, params={"format": fmt}, headers=ana.headers)

        exported = poll(fetch, lambda r: r.status_code != 404)  # the catalogue caught up
        assert exported.status_code == 200, exported.text
        fallback, exact = _names(exported.headers["content-disposition"])
        assert exact == name
        assert fallback.isascii() and fallback.endswith(f".{file_type}")
        mesh = trimesh.load(io.BytesIO(exported.content), file_type=file_type, force="mesh")
        assert isinstance(mesh, trimesh.Trimesh) and len(mesh.faces) == 12
    # the file as uploaded is its content-addressed blob: a client holding it gets a 304
    original = client.get(url, headers=ana.headers)
    assert original.headers["etag"] == f'"{hashlib.sha256(original.content).hexdigest()}"'
    held = client.get(url, headers=ana.headers | {"If-None-Match": original.headers["etag"]})
    assert held.status_code == 304 and held.content == b"", held.text
    assert held.headers["cache-control"] == original.headers["cache-control"]


def test_the_fallback_name_cannot_break_the_header() -> None:
    """Names of generated meshes come from a request's ``name``: quotes, backslashes, percent
    signs and line breaks stay inside ``filename*``'s percent-encoding."""
    name = 'a "b" \\ 50% \r\nSet-Cookie: x=1 é.glb'
    header = _download(name)["Content-Disposition"]
    header.encode("latin-1")  # a header's alphabet
    assert "\r" not in header and "\n" not in header
    fallback, exact = _names(header)
    assert exact == name
    assert fallback == "a _b_ _ 50_ __Set-Cookie: x=1 e.glb"
