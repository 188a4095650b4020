"""Fixtures of the end-to-end tests: the bot (`python -m bot serve --sandbox`) and the Microsoft 365 Agents
Playground, both on loopback, and a Chromium page on the Playground."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.support.org import ALEX
from tests.support.playground import CHROMIUM, CHROMIUM_ARGS, running_playground
from tests.support.processes import bot_env, running_bot


@pytest.fixture(scope="session")
def bot_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SQLite store of the bot the Playground talks to (tests may read it, e.g. its outbox)."""
    return tmp_path_factory.mktemp("bot") / "store.sqlite3"


@pytest.fixture(scope="session")
def bot_url(bot_store: Path) -> Iterator[str]:
    # The Playground signs in one user, Alex Wilber: here he is also the helpdesk agent.
    with running_bot(bot_store.parent, bot_env(bot_store, HELPDESK_AGENTS=ALEX)) as url:
        yield url


@pytest.fixture(scope="session")
def playground_url(bot_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_playground(tmp_path_factory.mktemp("playground"), bot_url) as url:
        yield url


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or (str(CHROMIUM) if CHROMIUM.exists() else None)
    assert path, "Debian's chromium is missing: the README's setup installs it (apt-get install chromium)"
    return path


@pytest.fixture
async def page(playground_url: str, chromium_path: str) -> AsyncIterator[Page]:
    async with async_playwright() as pw:
        browser: Browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 1500})
        await page.goto(playground_url, wait_until="domcontentloaded")
        yield page
        await browser.close()
