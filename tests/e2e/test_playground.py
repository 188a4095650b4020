"""End to end in a real Teams client: the Microsoft 365 Agents Playground, driven in headless Chromium.

As the Playground's default user (Alex Wilber), ask in your own words, pick the appointment, see the
owner-only cause on the card, press Re-check (in the card's overflow menu, beside Fix it for me) and see the
same card update in place.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.async_api import Page, expect

from tests.support.playground import SHOTS, say
from tests.support.timing import until


async def test_ask_pick_diagnose_and_recheck_in_place(page: Page) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    cards = page.locator(".ac-adaptiveCard")
    await expect(cards.first).to_contain_text("I'm Sync Doctor", timeout=30_000)  # welcome card on install

    await say(page, "why isn't my appointment in Outlook?")
    picker = cards.filter(has_text="Which appointment is missing from Outlook?")
    await expect(picker).to_have_count(1, timeout=30_000)
    await picker.get_by_text("Quarterly review with Contoso").click()
    await picker.get_by_role("button", name="Check this one").click()

    diagnosis = cards.filter(has_text="Why “Quarterly review with Contoso” isn't in Outlook")
    await expect(diagnosis).to_have_count(1, timeout=30_000)
    await expect(diagnosis).to_contain_text("This appointment doesn't meet your synchronization filters")
    await expect(diagnosis).to_contain_text("owner")
    await expect(picker).to_have_count(0)  # the picker was replaced in place
    await page.screenshot(path=str(SHOTS / "diagnosis.png"), full_page=True)

    # The check's time is Teams' {{DATE()}}/{{TIME()}}: the client shows it in its own time zone and format,
    # to the minute. Once the clock has left the minute of this check, the next check's time differs.
    seen = datetime.now(UTC)
    await expect(diagnosis).not_to_contain_text("{{")
    await expect(diagnosis).not_to_contain_text("UTC")
    checked = re.compile(r"Checked [^\n]*\d")
    before = checked.search(await diagnosis.inner_text())
    assert before is not None
    next_minute = seen.replace(second=0, microsecond=0) + timedelta(minutes=1)
    await until(lambda: datetime.now(UTC) >= next_minute, "the next minute", seconds=65, every=0.1)
    count = await cards.count()
    # "Fix it for me" and Escalate lead this card (Alex may fix it himself); Re-check is in its overflow menu.
    await expect(diagnosis.get_by_role("button", name="Fix it for me")).to_have_count(1)
    await diagnosis.get_by_role("button", name="More options").click()
    await page.get_by_role("menuitem", name="Re-check").click()
    await expect(diagnosis).not_to_contain_text(before.group(0), timeout=30_000)
    await expect(diagnosis).to_contain_text("This appointment doesn't meet your synchronization filters")
    assert await cards.count() == count  # updated in place, not a new message
    await page.screenshot(path=str(SHOTS / "rechecked.png"), full_page=True)


async def test_mailbox_cause_for_a_question_with_typos(page: Page) -> None:
    cards = page.locator(".ac-adaptiveCard")
    await expect(cards.first).to_contain_text("I'm Sync Doctor", timeout=30_000)
    await say(page, "appt from CRM not on my calender")
    await expect(cards.filter(has_text="Which appointment is missing from Outlook?")).to_have_count(
        1, timeout=30_000
    )
