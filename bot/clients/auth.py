"""Access tokens for Dataverse and Graph: MSAL client credentials in production, a fixed token locally.

`BearerAuth` plugs a token provider into httpx: it adds the bearer token to each request and, on a
401, drops the cached token and retries once with a fresh one.

Getting a token is part of the request that needs it: it happens inside that request's deadline
(`bot.clients.http.time_left()`). The production provider, `MsalTokenProvider`, lives in
`bot.clients.msal_tokens` (its own threads, shared acquisitions, retries) and is importable from here.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from bot.clients.http import time_left
from bot.clients.msal_tokens import MsalTokenProvider

__all__ = ["BearerAuth", "MsalTokenProvider", "StaticTokenProvider", "TokenProvider", "scope_for"]


def scope_for(resource_url: str) -> str:
    """The client-credentials scope of a resource: its origin plus `/.default`."""
    parts = urlsplit(resource_url)
    return f"{parts.scheme}://{parts.netloc}/.default"


class TokenProvider(Protocol):
    async def token(self, scope: str, *, force_refresh: bool = False) -> str: ...

    async def aclose(self) -> None: ...


class StaticTokenProvider:
    """A fixed token: for the local sandbox, which has no Entra to ask."""

    def __init__(self, value: str) -> None:
        self._value = value

    async def token(self, scope: str, *, force_refresh: bool = False) -> str:
        return self._value

    async def aclose(self) -> None:
        return None


def _fit_timeout(request: httpx.Request) -> None:
    """Shorten the request's timeouts to what is left of the deadline, now that the token took its share."""
    left = time_left()
    if left is None:
        return
    left = max(left, 0.01)
    current = request.extensions.get("timeout") or {}
    request.extensions["timeout"] = {
        part: left if current.get(part) is None else min(current[part], left)
        for part in ("connect", "read", "write", "pool")
    }


class BearerAuth(httpx.Auth):
    """httpx auth that adds `Authorization: Bearer` and refreshes the token once on a 401."""

    def __init__(self, provider: TokenProvider, scope: str) -> None:
        self._provider = provider
        self._scope = scope

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {await self._provider.token(self._scope)}"
        _fit_timeout(request)
        response = yield request
        if response.status_code == 401:
            await response.aread()
            fresh = await self._provider.token(self._scope, force_refresh=True)
            request.headers["Authorization"] = f"Bearer {fresh}"
            _fit_timeout(request)
            yield request
