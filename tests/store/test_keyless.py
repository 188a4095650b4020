"""A STORE_URL without a key is opened as the app's managed identity: the Azure SDK asks App Service's
identity endpoint (a loopback stand-in) for a Storage token and sends it to Azurite, which here accepts
only tokens (`--oauth basic`, over HTTPS with a test CA), so a request signed any other way would fail."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from azure.core.exceptions import HttpResponseError

from bot.config import load_settings
from bot.errors import ConfigError
from bot.sandbox.azurite import AZURITE_ACCOUNT
from bot.setup import store_from_settings
from bot.store.azure.account import endpoints
from tests.support.identity import identity_endpoint
from tests.support.repo import ROOT

IDENTITY = "0b7e5a84-55b1-4b5c-9d0a-3c5d2f1e7a90"
_LISTENING = re.compile(
    r"Azurite (Queue|Table) service is successfully listening at https://127\.0\.0\.1:(\d+)"
)


@dataclass
class OAuthAzurite:
    table_port: int
    queue_port: int

    @property
    def keyless(self) -> str:
        """What the Bicep sets: the account's endpoints and no key."""
        return (
            f"TableEndpoint=https://127.0.0.1:{self.table_port}/{AZURITE_ACCOUNT}/;"
            f"QueueEndpoint=https://127.0.0.1:{self.queue_port}/{AZURITE_ACCOUNT}/"
        )


@pytest.fixture
def oauth_azurite(ca: trustme.CA, tmp_path: Path) -> Iterator[OAuthAzurite]:
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    log = tmp_path / "azurite.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(ROOT / "node_modules" / ".bin" / "azurite"),
                *("--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--loose"),
                *(
                    "--oauth",
                    "basic",
                    "--cert",
                    str(tmp_path / "cert.pem"),
                    "--key",
                    str(tmp_path / "key.pem"),
                ),
                *("--blobHost", "127.0.0.1", "--blobPort", "0"),
                *("--queueHost", "127.0.0.1", "--queuePort", "0"),
                *("--tableHost", "127.0.0.1", "--tablePort", "0"),
            ],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        ends = time.monotonic() + 60
        ports: dict[str, int] = {}
        while len(ports) < 2 and time.monotonic() < ends and process.poll() is None:
            ports = {kind: int(port) for kind, port in _LISTENING.findall(log.read_text(errors="replace"))}
            time.sleep(0.05)
        assert len(ports) == 2, log.read_text(errors="replace")[-2000:]
        yield OAuthAzurite(ports["Table"], ports["Queue"])
    finally:
        process.terminate()
        process.wait(timeout=10)


def identity_settings(monkeypatch: pytest.MonkeyPatch, store_url: str) -> None:
    for name in ("AZURE_CLIENT_SECRET", "AZURE_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_USE_MANAGED_IDENTITY", "true")
    monkeypatch.setenv("AZURE_CLIENT_ID", IDENTITY)
    monkeypatch.setenv("STORE_URL", store_url)


async def test_the_store_opens_with_the_managed_identity_and_no_key(
    oauth_azurite: OAuthAzurite, ca_bundle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with identity_endpoint(monkeypatch, IDENTITY) as endpoint:
        identity_settings(monkeypatch, oauth_azurite.keyless)
        store = store_from_settings(load_settings())
        try:
            await store.set_setting("probe", {"n": 1})  # tables (and queues, created on first use)
            assert await store.get_setting("probe") == {"n": 1}
        finally:
            await store.close()
        # one identity, one token: Azure Storage's resource, asked for as the configured client id
        assert set(endpoint.resources()) == {"https://storage.azure.com"}
        assert {r["client_id"] for r in endpoint.requests} == {IDENTITY}


async def test_a_token_azurite_refuses_is_a_store_error(
    oauth_azurite: OAuthAzurite, ca_bundle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No identity on the platform (the endpoint refuses the client id): the store says so."""
    async with identity_endpoint(monkeypatch, "someone-else"):
        identity_settings(monkeypatch, oauth_azurite.keyless)
        store = store_from_settings(load_settings())
        try:
            with pytest.raises(HttpResponseError, match="No User Assigned or Delegated Managed Identity"):
                await store.set_setting("probe", {"n": 1})
        finally:
            await store.close()


def test_a_keyless_store_url_needs_an_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZURE_USE_MANAGED_IDENTITY", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(
        "STORE_URL",
        "TableEndpoint=https://a.table.core.windows.net/;QueueEndpoint=https://a.queue.core.windows.net/",
    )
    with pytest.raises(ConfigError, match="STORE_URL has no account key"):
        store_from_settings(load_settings())


def test_endpoints_from_a_connection_string() -> None:
    assert endpoints("AccountName=syncdoctor1;EndpointSuffix=core.chinacloudapi.cn") == (
        "https://syncdoctor1.table.core.chinacloudapi.cn",
        "https://syncdoctor1.queue.core.chinacloudapi.cn",
    )
    assert endpoints("TableEndpoint=https://t.example/;QueueEndpoint=https://q.example/") == (
        "https://t.example",
        "https://q.example",
    )
    with pytest.raises(ValueError, match="neither"):
        endpoints("TableEndpoint=https://t.example/")
