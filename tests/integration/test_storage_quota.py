"""The tier's storage allowance is enforced on every route that stores a user's file (an
upload, a generation's input image), before anything is stored, on real PostgreSQL and S3."""

from __future__ import annotations

import io
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PIL import Image
from starlette.testclient import TestClient

from core.projections.runner import ProjectionRunner
from core.settings import Settings
from tests.integration.conftest import Account, BackgroundPart
from tests.integration.helpers import bucket_keys, event_topics, poll

MIB = 1024**2


@pytest.fixture
def projections(prepared: Settings) -> Iterator[Settings]:
    """The projection runner: the catalogue (which the allowance counts) follows the log."""
    assert prepared.database_url is not None
    runner = ProjectionRunner(prepared.database_url)
    part = BackgroundPart("projections", runner.run)
    yield prepared
    part.stop()
    runner.close()


def noise_png(seed: int, side: int = 440) -> bytes:
    """An image that does not compress: about 3 bytes a pixel."""
    pixels = random.Random(seed).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, format="PNG")
    return out.getvalue()


def _project(client: TestClient, account: Account) -> str:
    made = client.post("/api/v1/projects", json={"name": "files"}, headers=account.headers)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _upload(client: TestClient, account: Account, project: str, body: bytes) -> Any:
    return client.post(f"/api/v1/projects/{project}/assets?filename=noise.png", content=body,
                       headers=account.headers)


def test_an_upload_past_the_tiers_storage_is_refused_before_anything_is_stored(
        client: TestClient, projections: Settings,
        make_account: Callable[..., Account]) -> None:
    """Free with 1 MiB: a second half-MiB file is refused with 403 and the figures (as an
    upload, and as a generation's input image); nothing is stored or recorded. Pro (50 GiB
    by default) stores the same files."""
    admin = make_account("root", admin=True)
    table = client.get("/api/v1/admin/limits", headers=admin.headers).json()["tiers"]
    assert client.put("/api/v1/admin/limits/free", headers=admin.headers,
                      json=table["free"] | {"storage_bytes": MIB}).status_code == 200
    fay, pat = make_account("fay"), make_account("pat")
    assert client.put("/api/v1/admin/users/pat/tier", json={"tier": "pro"},
                      headers=admin.headers).status_code == 200
    first, second, third = noise_png(1), noise_png(2), noise_png(3)
    assert MIB / 2 < len(first) < MIB and len(first) + len(second) > MIB
    fay_project, pat_project = _project(client, fay), _project(client, pat)
    assert _upload(client, fay, fay_project, first).status_code == 201

    keys, topics = bucket_keys(projections), event_topics(projections)
    refused = _upload(client, fay, fay_project, second)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["type"] == "https://orfeas.studio/problems/storage-quota"
    assert problem["tier"] == "free" and problem["limit_bytes"] == MIB
    assert problem["used_bytes"] == len(first) and problem["upload_bytes"] == len(second)
    assert problem["available_bytes"] == MIB - len(first)
    assert "Delete files" in problem["detail"]
    generate = client.post(f"/api/v1/projects/{fay_project}/generate-progressive",
                           headers=fay.headers,
                           files={"image": ("third.png", third, "image/png")})
    assert generate.status_code == 403, generate.text
    assert generate.json()["type"].endswith("/problems/storage-quota")
    assert bucket_keys(projections) == keys and event_topics(projections) == topics

    usage = poll(lambda: client.get("/api/v1/me/usage", headers=fay.headers).json(),
                 lambda u: u["storage"]["used_bytes"] > 0)
    assert usage["storage"] == {"used_bytes": len(first), "limit_bytes": MIB}
    for body in (first, second):
        assert _upload(client, pat, pat_project, body).status_code == 201
