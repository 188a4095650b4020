"""The real MSAL path: client credentials against the sandbox's token endpoint over HTTPS (trustme CA)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from bot.clients.factory import clients_from_settings
from bot.config import load_settings
from bot.errors import BackendRefused
from bot.investigation import Investigator
from bot.sandbox import Org, SandboxConfig, start_sandbox
from bot.sandbox.server import RunningSandbox

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


async def test_msal_tokens_reach_dataverse_and_are_cached(
    https_sandbox: RunningSandbox, ca_bundle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env(monkeypatch, https_sandbox.url)
    clients = clients_from_settings(load_settings())
    try:
        report = await Investigator(clients.dataverse, clients.graph).run(
            "alexw@example.com", "quarterly review"
        )
        assert report.causes == ["outside-sync-filter"]
        first = https_sandbox.sandbox.counts["token"]
        assert first >= 1
        await Investigator(clients.dataverse, clients.graph).run("meganb@example.com")
        assert https_sandbox.sandbox.counts["token"] == first  # served from MSAL's cache

        https_sandbox.sandbox.revoke_tokens()  # tokens expire or are revoked: one refresh, no error
        report = await Investigator(clients.dataverse, clients.graph).run("meganb@example.com")
        assert report.causes == ["act-not-server-side-sync"]
        assert https_sandbox.sandbox.counts["token"] > first
    finally:
        await clients.aclose()


async def test_wrong_secret_is_a_clear_refusal(
    https_sandbox: RunningSandbox, ca_bundle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env(monkeypatch, https_sandbox.url, secret="wrong")
    clients = clients_from_settings(load_settings())
    try:
        with pytest.raises(BackendRefused) as caught:
            await Investigator(clients.dataverse, clients.graph).run("alexw@example.com")
        assert caught.value.service == "Entra" and "invalid_client" in str(caught.value)
        assert "wrong" not in str(caught.value)
    finally:
        await clients.aclose()
