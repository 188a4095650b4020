"""Tokens as a user-assigned managed identity: MSAL's ManagedIdentityClient against a loopback App Service
identity endpoint (`IDENTITY_ENDPOINT`/`IDENTITY_HEADER`), with the provider's caching, refresh on a 401,
retries of 5xx and the clear refusal of an identity the app doesn't have."""

from __future__ import annotations

import pytest

from bot.clients.auth import MsalTokenProvider
from bot.clients.http import RetryPolicy
from bot.config import load_settings
from bot.errors import BackendRefused, BackendUnavailable
from bot.setup import bot_tokens_from_settings, missing_settings, tokens_from_settings
from tests.support.identity import identity_endpoint

IDENTITY = "0b7e5a84-55b1-4b5c-9d0a-3c5d2f1e7a90"
DATAVERSE = "https://contoso.crm.dynamics.com/.default"
FAST = RetryPolicy(budget=5.0, attempt_timeout=2.0, max_attempts=3, base_delay=0.01, max_delay=0.05)


async def test_a_token_for_the_resource_from_the_identity_endpoint_cached_until_refreshed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with identity_endpoint(monkeypatch, IDENTITY) as endpoint:
        tokens = MsalTokenProvider.managed_identity(IDENTITY, policy=FAST)
        try:
            first = await tokens.token(DATAVERSE)
            assert await tokens.token(DATAVERSE) == first  # MSAL's cache: one request
            [asked] = endpoint.requests
            assert asked == {
                "api-version": "2019-08-01",
                "resource": "https://contoso.crm.dynamics.com",  # the scope's resource, no /.default
                "client_id": IDENTITY,
                "header": endpoint.header,
            }
            await tokens.token("https://graph.microsoft.com/.default")
            await tokens.token(DATAVERSE, force_refresh=True)  # what BearerAuth does after a 401
            assert endpoint.resources() == [
                "https://contoso.crm.dynamics.com",
                "https://graph.microsoft.com",
                "https://contoso.crm.dynamics.com",
            ]
            assert tokens.identity == f"managed identity {IDENTITY}"
        finally:
            await tokens.aclose()


async def test_a_failing_endpoint_is_unavailable_and_an_unknown_identity_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with identity_endpoint(monkeypatch, IDENTITY) as endpoint:
        endpoint.fail_with = [503]
        tokens = MsalTokenProvider.managed_identity(IDENTITY, policy=FAST)
        try:
            # a 5xx is worth retrying (MSAL itself holds back for a few seconds after one): unavailable,
            # not refused, so /readyz and check-config say "try again", not "fix the identity"
            with pytest.raises(BackendUnavailable, match="HTTP 503 for GET /msi/token"):
                await tokens.token(DATAVERSE)
            assert len(endpoint.requests) == 1
        finally:
            await tokens.aclose()
        stranger = MsalTokenProvider.managed_identity("11111111-0000-4000-8000-000000000000", policy=FAST)
        try:
            with pytest.raises(
                BackendRefused, match="No User Assigned or Delegated Managed Identity"
            ) as refused:
                await stranger.token(DATAVERSE)
            assert refused.value.status == 400
        finally:
            await stranger.aclose()


async def test_no_identity_endpoint_is_unavailable_not_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off Azure (no IDENTITY_ENDPOINT), MSAL asks IMDS: here a closed loopback port stands in for it."""
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "IMDS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9")
    tokens = MsalTokenProvider.managed_identity(IDENTITY, policy=FAST)
    try:
        with pytest.raises(BackendUnavailable, match="managed identity endpoint unreachable"):
            await tokens.token(DATAVERSE)
    finally:
        await tokens.aclose()


def test_settings_choose_the_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "MicrosoftAppPassword"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(
        DATAVERSE_URL="https://contoso.crm.dynamics.com",
        AZURE_USE_MANAGED_IDENTITY="true",
        AZURE_CLIENT_ID=IDENTITY,
        MicrosoftAppType="UserAssignedMSI",
        MicrosoftAppId=IDENTITY,
        MicrosoftAppTenantId="contoso.example",
    )
    assert missing_settings(settings) == []  # no tenant, no secret: the identity is the platform's
    assert tokens_from_settings(settings).identity == f"managed identity {IDENTITY}"
    bot = bot_tokens_from_settings(settings)
    assert bot is not None and bot.identity == f"managed identity {IDENTITY}"
    with_secret = load_settings(
        DATAVERSE_URL="https://contoso.crm.dynamics.com",
        AZURE_TENANT_ID="contoso.example",
        AZURE_CLIENT_ID=IDENTITY,
        AZURE_CLIENT_SECRET="s3cret",
    )
    assert tokens_from_settings(with_secret).identity == f"app {IDENTITY}"
