from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trustme

from bot.clients.http import THROTTLES
from bot.sandbox.server import RunningSandbox
from tests.support.org import faulty_sandbox
from tests.support.timing import FakeClock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The throttle memory's clock, moved by the test (no sleeping)."""
    fake = FakeClock()
    monkeypatch.setattr(THROTTLES, "clock", fake)
    return fake


@pytest.fixture
async def faulty_https_sandbox(ca: trustme.CA, sample_data: dict[str, Any]) -> AsyncIterator[RunningSandbox]:
    async with faulty_sandbox(ca, sample_data) as running:
        yield running
