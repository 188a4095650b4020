"""A one-click fix end to end in the Agents Playground: Alex asks about his owner-only "Quarterly review with
Contoso", presses **Fix it for me**, reads the change on the confirmation card, confirms, and once the
sandbox's server-side sync has run (on demand here) and the bot has checked again (FIX_RECHECK_AFTER, short),
he is told in his chat that it is in his Outlook now.

The fix writes to the sandbox org: this module runs its own bot (and Playground), so the other end-to-end
tests still meet Alex's appointment outside his filters.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.support.playground import SHOTS, running_playground, say
from tests.support.playground_flows import sandbox_of, sync
from tests.support.processes import bot_env, running_bot

RECHECK_AFTER = "8,40"  # seconds after the fix: the first check finds the sync cycle the test runs


@pytest.fixture(scope="module")
def fix_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """This module's bot (`serve --sandbox`, its own store) and its log, which says where its sandbox is."""
    folder = tmp_path_factory.mktemp("fix-bot")
    env = bot_env(folder / "store.sqlite3", FIX_RECHECK_AFTER=RECHECK_AFTER, LOG_FORMAT="text")
    with running_bot(folder, env) as url:
        port = url.rsplit(":", 1)[1]
        yield url, folder / f"bot-{port}.log"


@pytest.fixture(scope="module")
def bot_url(fix_bot: tuple[str, Path]) -> str:
    return fix_bot[0]


@pytest.fixture(scope="module")
def playground_url(bot_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_playground(tmp_path_factory.mktemp("fix-playground"), bot_url) as url:
        yield url


async def test_fix_it_for_me_confirm_and_told_it_is_in_outlook(page: Page, fix_bot: tuple[str, Path]) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    cards = page.locator(".ac-adaptiveCard")
    await expect(cards.first).to_contain_text("I'm Sync Doctor", timeout=30_000)

    await say(page, "Quarterly review isn't on my calendar")
    diagnosis = cards.filter(has_text="Why “Quarterly review with Contoso” isn't in Outlook")
    await expect(diagnosis).to_have_count(1, timeout=30_000)
    await expect(diagnosis).to_contain_text("This appointment doesn't meet your synchronization filters")
    await expect(diagnosis).to_contain_text("I can do it for you: Fix it for me")
    await page.screenshot(path=str(SHOTS / "fix-offer.png"), full_page=True)
    await diagnosis.get_by_role("button", name="Fix it for me").click()

    # The confirmation card replaces it: the exact change, and what Undo would do.
    confirm = cards.filter(has_text="Fix it for me?")
    await expect(confirm).to_have_count(1, timeout=30_000)
    await expect(confirm).to_contain_text("Create a sync filter “Appointments I own” owned by you")
    await expect(confirm).to_contain_text("removed from your Outlook")
    await page.screenshot(path=str(SHOTS / "fix-confirm.png"), full_page=True)
    await confirm.get_by_role("button", name="Confirm").click()

    done = cards.filter(has_text="Change made")
    await expect(done).to_have_count(1, timeout=30_000)
    await expect(done).to_contain_text("Done. I'll check again after the next sync")
    await expect(done.get_by_role("button", name="Undo")).to_have_count(1)

    # Server-side sync's next cycle (on demand): the appointment meets Alex's new filter and reaches his
    # calendar; the bot's check after the fix finds it there and tells him.
    await sync(sandbox_of(fix_bot[1]))
    told = page.get_by_text("Fixed: Quarterly review with Contoso is in your Outlook now.")
    await expect(told.first).to_be_visible(timeout=90_000)
    await page.screenshot(path=str(SHOTS / "fix.png"), full_page=True)
