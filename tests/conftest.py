from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from bot.clients.http import THROTTLES
from bot.sandbox import SAMPLE_ORG, LocalOrg, local_org
from bot.sandbox.azurite import Azurite, start_azurite
from bot.sandbox.server import RunningSandbox
from bot.store.sqlite import SqliteStore
from tests.support.org import start_https_sandbox

# The longest tests, longest first (about 35, 30, 25, 15 and 10 s): run in parallel (pytest-xdist), they
# start first, so that the short ones fill in around them instead of one long test finishing last, alone.
SLOW_FIRST = (
    "store/test_multi_instance.py",
    "e2e/",
    "test_fuzz.py",
    "test_infra.py",
    "test_observability.py",
    "notify/test_crash.py",
)


def _slowness(item: pytest.Item) -> int:
    path = item.path.relative_to(Path(__file__).parent).as_posix()
    return next((n for n, prefix in enumerate(SLOW_FIRST) if path.startswith(prefix)), len(SLOW_FIRST))


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the xdist_group markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers by folder: everything under tests/e2e/ drives the Playground in Chromium (`-m "not e2e"`
    is the fast loop and starts neither). Its tests share one Playground, one bot and their ports: they
    run in one xdist worker, one after the other (group "e2e", with `--dist loadgroup`)."""
    for item in items:
        if "e2e" in item.path.relative_to(Path(__file__).parent).parts[:1]:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.xdist_group("e2e"))
    items.sort(key=_slowness)  # stable: the order within each file, and among the rest, is kept


@pytest.fixture(autouse=True)
def _forget_throttles() -> Iterator[None]:
    """The 429 memory is process-wide: each test starts and ends with none remembered (sandbox ports are
    reused, so one test's Retry-After must not hold the next one's requests)."""
    THROTTLES.clear()
    yield
    THROTTLES.clear()


@pytest.fixture(scope="session")
def sample_data() -> dict[str, Any]:
    return json.loads(Path(SAMPLE_ORG).read_text())


@pytest.fixture
def org_data(sample_data: dict[str, Any]) -> dict[str, Any]:
    """A private copy of the sample org's JSON, for tests that change it."""
    return copy.deepcopy(sample_data)


@pytest.fixture
async def local() -> AsyncIterator[LocalOrg]:
    async with local_org() as running:
        yield running


@pytest.fixture
async def store() -> AsyncIterator[SqliteStore]:
    """An in-memory SQLite store (a module with a `store` of its own, both stores say, overrides it)."""
    opened = SqliteStore(":memory:")
    yield opened
    await opened.close()


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One Azurite (npm, in memory, loopback) for the session; each test names its own tables and queues."""
    with start_azurite() as running:
        yield running


# An org over HTTPS (a test CA that the standard variables trust) and the real MSAL path.
@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_bundle(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    # The standard variables: requests (inside MSAL) reads the first, our settings both.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(path))
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    yield str(path)


@pytest.fixture
async def https_sandbox(ca: trustme.CA, sample_data: dict[str, Any]) -> AsyncIterator[RunningSandbox]:
    running = await start_https_sandbox(ca, sample_data)
    yield running
    await running.close()
