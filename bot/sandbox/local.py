"""Run the production clients against a sandbox org on loopback: for the CLI, `serve --sandbox` and tests."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.clients.auth import StaticTokenProvider
from bot.clients.factory import Clients, clients_for
from bot.clients.http import RetryPolicy
from bot.sandbox.org import SAMPLE_ORG, Org, load_fixture
from bot.sandbox.server import RunningSandbox, SandboxConfig, start_sandbox

__all__ = ["LocalOrg", "local_org"]


@dataclass
class LocalOrg:
    running: RunningSandbox
    clients: Clients

    @property
    def url(self) -> str:
        return self.running.url


@asynccontextmanager
async def local_org(
    fixture: str | Path | Org | None = None,
    *,
    config: SandboxConfig | None = None,
    port: int = 0,
    policy: RetryPolicy | None = None,
    event_hooks: Mapping[str, list[Any]] | None = None,
) -> AsyncIterator[LocalOrg]:
    """Start a sandbox with `fixture` (default: the sample org) and clients that talk to it over HTTP.

    Raises:
        FixtureError: the fixture can't be loaded.
    """
    org = fixture if isinstance(fixture, Org) else load_fixture(fixture or SAMPLE_ORG)
    config = config or SandboxConfig()
    token = secrets.token_urlsafe(16)
    config.static_tokens.add(token)
    running = await start_sandbox(org, config, port=port)
    clients = clients_for(
        running.url, running.url, StaticTokenProvider(token), policy=policy, event_hooks=event_hooks
    )
    try:
        yield LocalOrg(running=running, clients=clients)
    finally:
        await clients.aclose()
        await running.close()
