"""A loopback stand-in for App Service's managed identity endpoint (`IDENTITY_ENDPOINT` with
`IDENTITY_HEADER`, API version 2019-08-01), as MSAL's ManagedIdentityClient and azure-identity's
ManagedIdentityCredential call it: `GET ?api-version=2019-08-01&resource=...&client_id=...` with the
`X-IDENTITY-HEADER` header, answered with `access_token`, `expires_on`, `resource`, `token_type`.

Tokens are unsigned JWTs whose claims say which identity and resource they are for (Azurite's `--oauth
basic` reads them that way); wrong headers, unknown client ids and injected failures answer as App Service
does (401, 400 with `statusCode`/`message`, or the status asked for).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web

__all__ = ["TENANT", "IdentityEndpoint", "identity_endpoint", "jwt"]

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def jwt(claims: dict[str, object]) -> str:
    """An unsigned JWT (alg none) carrying `claims`."""

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@dataclass
class IdentityEndpoint:
    url: str
    header: str
    client_ids: set[str]
    requests: list[dict[str, str]] = field(default_factory=list)
    fail_with: list[int] = field(default_factory=list)  # statuses to answer the next requests with

    def resources(self) -> list[str]:
        return [r.get("resource", "") for r in self.requests]


ENDPOINT = web.AppKey("endpoint", IdentityEndpoint)


async def _token(request: web.Request) -> web.Response:
    endpoint = request.app[ENDPOINT]
    query = dict(request.query)
    endpoint.requests.append({**query, "header": request.headers.get("X-IDENTITY-HEADER", "")})
    if endpoint.fail_with:
        status = endpoint.fail_with.pop(0)
        return web.json_response({"statusCode": status, "message": "injected failure"}, status=status)
    if request.headers.get("X-IDENTITY-HEADER") != endpoint.header:
        return web.json_response({"statusCode": 401, "message": "Invalid X-IDENTITY-HEADER"}, status=401)
    if query.get("api-version") != "2019-08-01" or "resource" not in query:
        return web.json_response({"statusCode": 400, "message": "Invalid request"}, status=400)
    client_id = query.get("client_id", "")
    if client_id not in endpoint.client_ids:
        message = "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId."
        return web.json_response({"statusCode": 400, "message": message}, status=400)
    now = int(time.time())
    claims = {
        "aud": query["resource"],
        "iss": f"https://sts.windows.net/{TENANT}/",
        "tid": TENANT,
        "appid": client_id,
        "oid": client_id,
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + 3600,
    }
    return web.json_response(
        {
            "access_token": jwt(claims),
            "expires_on": str(now + 3600),
            "resource": query["resource"],
            "token_type": "Bearer",
            "client_id": client_id,
        }
    )


@asynccontextmanager
async def identity_endpoint(
    monkeypatch: pytest.MonkeyPatch, *client_ids: str, header: str = "test-identity-header"
) -> AsyncIterator[IdentityEndpoint]:
    """Serve the endpoint on 127.0.0.1 and point IDENTITY_ENDPOINT / IDENTITY_HEADER at it, as App
    Service does for a container with managed identities (`client_ids` are the user-assigned ones)."""
    endpoint = IdentityEndpoint("", header, set(client_ids))
    app = web.Application()
    app[ENDPOINT] = endpoint
    app.router.add_get("/msi/token", _token)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    endpoint.url = f"http://127.0.0.1:{port}/msi/token"
    for name in ("IMDS_ENDPOINT", "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.url)
    monkeypatch.setenv("IDENTITY_HEADER", header)
    try:
        yield endpoint
    finally:
        await runner.cleanup()
