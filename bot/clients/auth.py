"""Access tokens for Dataverse and Graph: MSAL client credentials in production, a fixed token locally.

`BearerAuth` plugs a token provider into httpx: it adds the bearer token to each request and, on a
401, drops the cached token and retries once with a fresh one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Protocol
from urllib.parse import urlsplit

import httpx
import msal
import requests

from bot.errors import BackendRefused, BackendUnavailable

__all__ = ["BearerAuth", "MsalTokenProvider", "StaticTokenProvider", "TokenProvider", "scope_for"]

log = logging.getLogger(__name__)

# Hosts MSAL knows from Microsoft's instance discovery; any other authority (a sovereign cloud's own,
# a test server) is used as given.
_PUBLIC_AUTHORITY_HOSTS = frozenset({"login.microsoftonline.com"})


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


class MsalTokenProvider:
    """Client-credentials tokens from Microsoft Entra ID through MSAL, cached by MSAL.

    MSAL is synchronous (it uses requests, which trusts `REQUESTS_CA_BUNDLE`), so calls run in a thread.
    """

    def __init__(self, *, tenant_id: str, client_id: str, client_secret: str, authority_host: str) -> None:
        host = authority_host.rstrip("/")
        self._authority = f"{host}/{tenant_id}"
        self._instance_discovery = urlsplit(host).hostname in _PUBLIC_AUTHORITY_HOSTS
        self._client_id = client_id
        self._secret = client_secret
        self._app: msal.ConfidentialClientApplication | None = None
        self._session = requests.Session()  # ours, so that closing the provider closes its connections
        self._lock = asyncio.Lock()

    async def token(self, scope: str, *, force_refresh: bool = False) -> str:
        async with self._lock:
            return await asyncio.to_thread(self._acquire, scope, force_refresh)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._session.close)

    def _acquire(self, scope: str, force_refresh: bool) -> str:
        try:
            if self._app is None:
                # MSAL discovers the tenant's endpoints in its constructor (a blocking request): so here,
                # in the worker thread, never on the event loop.
                self._app = msal.ConfidentialClientApplication(
                    self._client_id,
                    client_credential=self._secret,
                    authority=self._authority,
                    instance_discovery=self._instance_discovery,
                    http_client=self._session,
                )
            if force_refresh:
                self._app.remove_tokens_for_client()
            result = self._app.acquire_token_for_client(scopes=[scope])
        except (requests.RequestException, OSError) as exc:
            raise BackendUnavailable("Entra", f"token endpoint unreachable ({type(exc).__name__})") from exc
        except ValueError as exc:  # MSAL raises ValueError for a bad authority / discovery failure
            raise BackendRefused("Entra", f"authority refused: {exc}", status=400) from exc
        if not isinstance(result, dict) or "access_token" not in result:
            error = result.get("error", "unknown_error") if isinstance(result, dict) else "unknown_error"
            description = result.get("error_description", "") if isinstance(result, dict) else ""
            first_line = str(description).splitlines()[0] if description else ""
            raise BackendRefused(
                "Entra", f"no token for {scope}: {error} {first_line}".strip(), status=401, code=str(error)
            )
        log.debug("token for %s from %s", scope, result.get("token_source", "identity provider"))
        return str(result["access_token"])


class BearerAuth(httpx.Auth):
    """httpx auth that adds `Authorization: Bearer` and refreshes the token once on a 401."""

    def __init__(self, provider: TokenProvider, scope: str) -> None:
        self._provider = provider
        self._scope = scope

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {await self._provider.token(self._scope)}"
        response = yield request
        if response.status_code == 401:
            await response.aread()
            fresh = await self._provider.token(self._scope, force_refresh=True)
            request.headers["Authorization"] = f"Bearer {fresh}"
            yield request
