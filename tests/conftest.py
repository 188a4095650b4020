from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox import SAMPLE_ORG, LocalOrg, Org, SandboxConfig, local_org
from bot.sandbox.azurite import Azurite, start_azurite

PLAYGROUND = "00000000-0000-0000-0000-00000000000"  # + "20".."25": the Agents Playground's mock users
ALEX = PLAYGROUND + "20"


@pytest.fixture(scope="session")
def sample_data() -> dict[str, Any]:
    return json.loads(Path(SAMPLE_ORG).read_text())


@pytest.fixture
def org_data(sample_data: dict[str, Any]) -> dict[str, Any]:
    """A private copy of the sample org's JSON, for tests that change it."""
    return copy.deepcopy(sample_data)


@pytest.fixture
async def local() -> AsyncIterator[LocalOrg]:
    async with local_org() as running:
        yield running


def make_local(data: dict[str, Any] | Org, config: SandboxConfig | None = None, **kwargs: Any) -> Any:
    org = data if isinstance(data, Org) else Org.from_dict(data)
    return local_org(org, config=config, **kwargs)


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One Azurite (npm, in memory, loopback) for the session; each test names its own tables and queues."""
    with start_azurite() as running:
        yield running
