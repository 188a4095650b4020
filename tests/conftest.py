from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox import SAMPLE_ORG, LocalOrg, Org, SandboxConfig, local_org

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
