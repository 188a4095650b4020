"""What every service client shares: one httpx client on the service's API root, its retry policy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self, TypedDict

import httpx
from typing_extensions import Unpack

from bot.clients.http import RetryPolicy

__all__ = ["ApiClient", "ClientOptions"]


class ClientOptions(TypedDict, total=False):
    """How a client reaches its service: auth, transport (tests), retry policy, TLS, httpx event hooks."""

    auth: httpx.Auth | None
    transport: httpx.AsyncBaseTransport | None
    policy: RetryPolicy | None
    verify: Any
    event_hooks: Mapping[str, list[Any]] | None


class ApiClient:
    """An async context manager around one httpx client rooted at `base_url` + `API_PATH`."""

    API_PATH: ClassVar[str] = "/"
    HEADERS: ClassVar[Mapping[str, str]] = {"Accept": "application/json"}

    def __init__(self, base_url: str, **options: Unpack[ClientOptions]) -> None:
        self._policy = options.get("policy") or RetryPolicy()
        self.base_url = base_url.rstrip("/")  # the service's own URL (Dataverse: its origin is the scope)
        self._http = httpx.AsyncClient(
            base_url=self.base_url + self.API_PATH,
            auth=options.get("auth"),
            transport=options.get("transport"),
            verify=options.get("verify", True),
            headers=dict(self.HEADERS),
            event_hooks=dict(options.get("event_hooks") or {}),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
