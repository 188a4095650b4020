"""Builds the Dataverse and Graph clients from settings, or for a sandbox."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from bot.clients.auth import BearerAuth, MsalTokenProvider, TokenProvider, scope_for
from bot.clients.dataverse import DataverseClient
from bot.clients.graph import GraphClient
from bot.clients.http import RetryPolicy
from bot.config import Settings
from bot.errors import ConfigError

__all__ = ["Clients", "clients_for", "clients_from_settings", "missing_settings", "tokens_from_settings"]


@dataclass
class Clients:
    dataverse: DataverseClient
    graph: GraphClient
    tokens: TokenProvider

    async def aclose(self) -> None:
        await self.dataverse.aclose()
        await self.graph.aclose()
        await self.tokens.aclose()


def clients_for(
    dataverse_url: str,
    graph_url: str,
    tokens: TokenProvider,
    *,
    verify: ssl.SSLContext | bool = True,
    policy: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    event_hooks: Mapping[str, list[Any]] | None = None,
) -> Clients:
    """Clients for the given endpoints, authenticated by `tokens`."""
    return Clients(
        dataverse=DataverseClient(
            dataverse_url,
            auth=BearerAuth(tokens, scope_for(dataverse_url)),
            verify=verify,
            policy=policy,
            transport=transport,
            event_hooks=event_hooks,
        ),
        graph=GraphClient(
            graph_url,
            auth=BearerAuth(tokens, scope_for(graph_url)),
            verify=verify,
            policy=policy,
            transport=transport,
            event_hooks=event_hooks,
        ),
        tokens=tokens,
    )


def missing_settings(settings: Settings) -> list[str]:
    """The settings the production clients need that are not set."""
    required = (
        ("DATAVERSE_URL", settings.dataverse_url),
        ("AZURE_TENANT_ID", settings.azure_tenant_id),
        ("AZURE_CLIENT_ID", settings.azure_client_id),
        ("AZURE_CLIENT_SECRET", settings.azure_client_secret),
    )
    return [name for name, value in required if not value]


def clients_from_settings(settings: Settings, *, policy: RetryPolicy | None = None) -> Clients:
    """Clients for the real services named in settings, with MSAL client-credentials tokens.

    Raises:
        ConfigError: naming the missing settings.
    """
    missing = missing_settings(settings)
    if missing:
        raise ConfigError(
            f"not set: {', '.join(missing)}. Set them to reach your Dynamics 365 org, "
            "or use the sample org (--fixture bot/sandbox/sample_org.json, or serve --sandbox)."
        )
    assert settings.dataverse_url  # for mypy
    return clients_for(
        settings.dataverse_url,
        settings.graph_url,
        tokens_from_settings(settings, policy=policy),
        verify=settings.verify(),
        policy=policy,
    )


def tokens_from_settings(settings: Settings, *, policy: RetryPolicy | None = None) -> MsalTokenProvider:
    """MSAL client-credentials tokens for Dataverse and Graph; call only when `missing_settings` is empty.

    `policy` is the clients' own: a token is retried and timed like the request that needs it."""
    assert settings.azure_tenant_id and settings.azure_client_id and settings.azure_client_secret  # for mypy
    return MsalTokenProvider(
        tenant_id=settings.azure_tenant_id,
        client_id=settings.azure_client_id,
        client_secret=settings.azure_client_secret.get_secret_value(),
        authority_host=settings.azure_authority_host,
        policy=policy,
    )
