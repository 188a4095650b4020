"""The real MSAL path: client credentials against the sandbox's token endpoint over HTTPS (trustme CA)."""

from __future__ import annotations

import pytest

from bot.config import load_settings
from bot.errors import BackendRefused
from bot.investigation import Investigator
from bot.sandbox.server import RunningSandbox
from bot.setup import clients_from_settings
from tests.support.org import env


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
