from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trustme

from bot.clients.http import THROTTLES
from bot.sandbox import Org, SandboxConfig, start_sandbox
from bot.sandbox.server import RunningSandbox
from tests.conftest import CLIENT_ID, SECRET


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The throttle memory's clock, moved by the test (no sleeping)."""
    fake = FakeClock()
    monkeypatch.setattr(THROTTLES, "clock", fake)
    return fake


@contextlib.asynccontextmanager
async def faulty_sandbox(ca: trustme.CA, data: dict[str, Any]) -> AsyncIterator[RunningSandbox]:
    """The HTTPS sandbox of tests/conftest.py (client secret checked, the test CA), for faults that leave a
    request hanging or abandoned at the end: closing it aborts the connections still open (a TLS shutdown
    with a peer that gave up never finishes, and the loop would close with their sockets open)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    running = await start_sandbox(
        Org.from_dict(data), SandboxConfig(client_secrets={CLIENT_ID: SECRET}), ssl_context=context
    )
    try:
        yield running
    finally:
        server = running.runner.server
        for connection in list(server.connections) if server is not None else []:
            if connection.transport is not None:
                connection.transport.abort()
        await running.close()
        await asyncio.sleep(0)


@pytest.fixture
async def faulty_https_sandbox(ca: trustme.CA, sample_data: dict[str, Any]) -> AsyncIterator[RunningSandbox]:
    async with faulty_sandbox(ca, sample_data) as running:
        yield running
