"""Builds the Dataverse and Graph clients for given endpoints and tokens.

Which endpoints and tokens (settings, or a sandbox) is the composition root's choice: `bot/setup.py`.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from bot.clients.api import ClientOptions
from bot.clients.auth import BearerAuth, TokenProvider, scope_for
from bot.clients.dataverse import DataverseClient
from bot.clients.graph import GraphClient
from bot.clients.http import RetryPolicy

__all__ = ["Clients", "clients_for"]


@dataclass
class Clients:
    """Dataverse and Graph clients sharing one token provider; `aclose` closes all three."""

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

    def options(url: str) -> ClientOptions:
        """What both clients take: a token for the resource, and the same transport and retries."""
        auth = BearerAuth(tokens, scope_for(url))
        return ClientOptions(
            auth=auth, verify=verify, policy=policy, transport=transport, event_hooks=event_hooks
        )

    return Clients(
        dataverse=DataverseClient(dataverse_url, **options(dataverse_url)),
        graph=GraphClient(graph_url, **options(graph_url)),
        tokens=tokens,
    )
