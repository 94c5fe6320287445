"""Fixtures that run the studio's parts in this process, on the session's real services.

The API runs under Starlette's TestClient (its lifespan included); the projection runner, the
outbox dispatcher and the mesh worker run in background threads, each with its own event loop,
exactly as their processes run them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from core.events.outbox import OutboxDispatcher
from core.projections.runner import ProjectionRunner
from core.settings import Settings
from infra.admin import create_user
from infra.schema import prepare
from workers.mesh.worker import run_mesh_worker


class BackgroundPart:
    """Runs ``target(stop)`` in a thread; :meth:`stop` ends it and re-raises its error."""

    def __init__(self, name: str, target: Callable[[threading.Event], None]) -> None:
        self.name = name
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(target,), name=name, daemon=True)
        self._thread.start()

    def _run(self, target: Callable[[threading.Event], None]) -> None:
        try:
            target(self._stop)
        except BaseException as e:
            self.error = e

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), f"{self.name} did not stop"
        if self.error is not None:
            raise self.error


def async_part(name: str, entry: Callable[[asyncio.Event], object]) -> BackgroundPart:
    def run(stop: threading.Event) -> None:
        async def main() -> None:
            done = asyncio.Event()
            loop = asyncio.get_running_loop()
            def relay() -> None:
                stop.wait()
                with contextlib.suppress(RuntimeError):  # the loop may have ended first
                    loop.call_soon_threadsafe(done.set)

            threading.Thread(target=relay, daemon=True).start()
            await entry(done)  # type: ignore[misc]

        asyncio.run(main())

    return BackgroundPart(name, run)


@pytest.fixture
def prepared(settings: Settings) -> Settings:
    prepare(settings)
    return settings


@pytest.fixture
def pipeline(prepared: Settings) -> Iterator[Settings]:
    """Projections, dispatcher and mesh worker running against ``prepared``."""
    assert prepared.database_url is not None
    url = prepared.database_url
    dispatcher = OutboxDispatcher(prepared)
    runner = ProjectionRunner(url)
    parts = [
        BackgroundPart("projections", runner.run),
        async_part("dispatcher", dispatcher.run),
        async_part("mesh-worker", lambda stop: run_mesh_worker(prepared, stop)),
    ]
    yield prepared
    errors = []
    for part in parts:
        try:
            part.stop()
        except BaseException as e:  # collect, so every part is stopped
            errors.append(e)
    dispatcher.close()
    runner.close()
    if errors:
        raise errors[0]


@pytest.fixture
def gpu_worker(pipeline: Settings) -> Iterator[Settings]:
    """The GPU worker (on this machine's CPU) beside the pipeline."""
    from workers.gpu.worker import run_gpu_worker

    part = async_part("gpu-worker", lambda stop: run_gpu_worker(pipeline, stop))
    yield pipeline
    part.stop()


@pytest.fixture
def client(prepared: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(prepared), raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass
class Account:
    username: str
    password: str
    token: str
    user_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def make_account(prepared: Settings, client: TestClient) -> Callable[..., Account]:
    def make(username: str, *, admin: bool = False) -> Account:
        password = f"{username}-secret-pw"
        user = create_user(prepared, username, password, is_admin=admin, email=None)
        response = client.post("/api/v1/auth/tokens",
                               json={"username": username, "password": password})
        assert response.status_code == 201, response.text
        return Account(username, password, response.json()["token"], str(user.id))

    return make
