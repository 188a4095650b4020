"""The sandbox org as tests meet it: the Agents Playground's people and a record of the sample org, an org
of any data on loopback, and the org over HTTPS with the real MSAL path (a test CA, a client secret)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trustme

from bot.sandbox import Org, SandboxConfig, local_org, start_sandbox
from bot.sandbox.server import RunningSandbox

PLAYGROUND = "00000000-0000-0000-0000-00000000000"  # + "20".."25": the Agents Playground's mock users
ALEX = PLAYGROUND + "20"  # the Playground's default user
MEGAN, ADELE = PLAYGROUND + "21", PLAYGROUND + "22"
QUARTERLY = "c3000000-0000-4000-8000-000000000001"  # Alex's "Quarterly review with Contoso"

CLIENT_ID = "11111111-2222-4333-8444-555555555555"
SECRET = "s3cret-value"


def make_local(data: dict[str, Any] | Org, config: SandboxConfig | None = None, **kwargs: Any) -> Any:
    org = data if isinstance(data, Org) else Org.from_dict(data)
    return local_org(org, config=config, **kwargs)


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


async def start_https_sandbox(ca: trustme.CA, data: dict[str, Any]) -> RunningSandbox:
    """The org over HTTPS on loopback: a certificate from the test CA, the client secret checked."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return await start_sandbox(
        Org.from_dict(data), SandboxConfig(client_secrets={CLIENT_ID: SECRET}), ssl_context=context
    )


@contextlib.asynccontextmanager
async def faulty_sandbox(ca: trustme.CA, data: dict[str, Any]) -> AsyncIterator[RunningSandbox]:
    """The HTTPS sandbox, for faults that leave a request hanging or abandoned at the end: closing it
    aborts the connections still open (a TLS shutdown with a peer that gave up never finishes, and the
    loop would close with their sockets open)."""
    running = await start_https_sandbox(ca, data)
    try:
        yield running
    finally:
        server = running.runner.server
        for connection in list(server.connections) if server is not None else []:
            if connection.transport is not None:
                connection.transport.abort()
        await running.close()
        await asyncio.sleep(0)
