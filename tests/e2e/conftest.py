"""One studio and one browser for the end-to-end tests.

Starting ``orfeas up`` and its people costs 15 to 25 s on a busy 2-core machine, and each
module used to start its own. The modules share this one instead: each works in projects of
its own and names anything it creates (projects, accounts) uniquely among them, so that
none depends on what another did before it. Both are package-scoped: they stop once the last
end-to-end test is done, not at the end of the session (an idle studio and browser would
otherwise take CPU from every test after them). Two modules keep a studio of their own, each
saying why (``test_admin_dashboard``: exact platform figures; ``test_editor_history``: a
one-second generator heartbeat).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright import sync_api as playwright_sync

from tests.e2e.pages import CHROMIUM, CHROMIUM_ARGS, DIST, Browser, running_studio
from tests.integration.test_up import Up


@pytest.fixture(scope="package", autouse=True)
def _browser_and_build() -> None:
    """Fail, not skip, without what `make test` provides: a skipped suite reads as a passed one."""
    missing = [f"{path} ({how})" for path, how in (
        (CHROMIUM, "make test installs it: apt-get install -y chromium"),
        (DIST, "make test builds it: cd frontend && npm run build"),
    ) if not path.exists()]
    if missing:
        pytest.fail("the end-to-end tests need " + " and ".join(missing))


@pytest.fixture(scope="package")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """The shared studio: alice, bob and carol (pro) and ``ROOT``, an administrator."""
    with running_studio(tmp_path_factory.mktemp("e2e-data"), admin=True) as up:
        yield up


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
