"""Proactive notice end to end: the Playground's default user chats once; a sweep run beside the serving
bot (sharing its store) finds their broken mailbox and the card appears in their chat, once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect

from bot.notify.preferences import watches
from bot.sandbox import SAMPLE_ORG
from bot.store import SqliteStore
from tests.support.org import ALEX
from tests.support.playground import CHROMIUM_ARGS, SHOTS, running_playground
from tests.support.processes import bot_env, running_bot
from tests.support.repo import ROOT
from tests.support.timing import until


async def _until_watching(store_path: Path, user: str) -> None:
    """Return once the bot has recorded that `user` wants to hear when it's fixed (the button's effect)."""
    store = SqliteStore(str(store_path))

    async def watching() -> bool:
        return user.lower() in await watches(store)

    try:
        await until(watching, "the watch to be recorded", seconds=30, every=0.1)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def broken_org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample org, except that Alex's mailbox has Appointments, Contacts, and Tasks set to None."""
    data = json.loads(SAMPLE_ORG.read_text())
    alex = next(u for u in data["systemusers"] if u["azureactivedirectoryobjectid"] == ALEX)
    mailbox = next(m for m in data["mailboxes"] if m["_regardingobjectid_value"] == alex["systemuserid"])
    mailbox["actdeliverymethod"], mailbox["actstatus"] = 2, 0
    path = tmp_path_factory.mktemp("org") / "broken.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def services(
    broken_org: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("notify")
    env = bot_env(folder / "store.sqlite3")  # the sweep below shares it, as beside a real serving bot
    with running_bot(folder, env, broken_org) as bot_url, running_playground(folder, bot_url) as url:
        yield url, env


async def test_the_default_user_gets_the_notice_once(
    services: tuple[str, dict[str, str]], broken_org: Path, chromium_path: str
) -> None:
    url, env = services
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        page: Page = await browser.new_page(viewport={"width": 1280, "height": 1400})
        await page.goto(url, wait_until="domcontentloaded")
        cards = page.locator(".ac-adaptiveCard")
        await expect(cards.first).to_contain_text(
            "I'm Sync Doctor", timeout=30_000
        )  # installed: reachable now

        sweep = [
            sys.executable,
            "-m",
            "bot",
            "sweep",
            "--fixture",
            str(broken_org),
            "--json",
            "--deliver-for",
            "30",
        ]
        for run in range(2):  # the second sweep finds the same problem: nothing new is sent
            done = await asyncio.to_thread(
                subprocess.run,
                sweep,
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            result = json.loads(done.stdout)
            alex = next(a for a in result["affected"] if a["aad_object_id"] == ALEX)
            assert alex["causes"] == ["act-not-server-side-sync"]
            assert result["queued"] == (1 if run == 0 else 0)

        notice = cards.filter(has_text="Your Dynamics 365 appointments can't reach Outlook")
        await expect(notice).to_have_count(1, timeout=30_000)
        await expect(notice).to_contain_text("Appointments, Contacts, and Tasks are not set to synchronize")
        await page.screenshot(path=str(SHOTS / "notice.png"), full_page=True)
        await notice.get_by_role("button", name="Notify me").click()
        await _until_watching(Path(env["STORE_URL"].removeprefix("sqlite:///")), ALEX)
        assert await notice.count() == 1  # the card stays; the answer is a message
        await browser.close()
