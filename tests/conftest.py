from __future__ import annotations

import copy
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from bot.clients.http import THROTTLES
from bot.sandbox import SAMPLE_ORG, LocalOrg, Org, SandboxConfig, local_org, start_sandbox
from bot.sandbox.azurite import Azurite, start_azurite
from bot.sandbox.server import RunningSandbox

PLAYGROUND = "00000000-0000-0000-0000-00000000000"  # + "20".."25": the Agents Playground's mock users
ALEX = PLAYGROUND + "20"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers by folder: everything under tests/e2e/ drives the Playground in Chromium (`-m "not e2e"`
    is the fast loop and starts neither)."""
    for item in items:
        if "e2e" in item.path.relative_to(Path(__file__).parent).parts[:1]:
            item.add_marker(pytest.mark.e2e)


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


def make_local(data: dict[str, Any] | Org, config: SandboxConfig | None = None, **kwargs: Any) -> Any:
    org = data if isinstance(data, Org) else Org.from_dict(data)
    return local_org(org, config=config, **kwargs)


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One Azurite (npm, in memory, loopback) for the session; each test names its own tables and queues."""
    with start_azurite() as running:
        yield running


# An org over HTTPS (a test CA that the standard variables trust) and the real MSAL path.
CLIENT_ID = "11111111-2222-4333-8444-555555555555"
SECRET = "s3cret-value"


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
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    running = await start_sandbox(
        Org.from_dict(sample_data), SandboxConfig(client_secrets={CLIENT_ID: SECRET}), ssl_context=context
    )
    yield running
    await running.close()


def env(monkeypatch: pytest.MonkeyPatch, url: str, secret: str = SECRET) -> None:
    for name, value in {
        "DATAVERSE_URL": url,
        "GRAPH_URL": url,
        "AZURE_AUTHORITY_HOST": url,
        "AZURE_TENANT_ID": "contoso.example",
        "AZURE_CLIENT_ID": CLIENT_ID,
        "AZURE_CLIENT_SECRET": secret,
    }.items():
        monkeypatch.setenv(name, value)
