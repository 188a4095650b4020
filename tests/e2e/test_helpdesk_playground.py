"""Helpdesk end to end in the Agents Playground: set the channel, escalate from personal chat, then in the
team channel assign and resolve the ticket, and see the user told in their chat.

One Playground signs in one user, so here Alex Wilber is both the user and (through HELPDESK_AGENTS) the
agent (test_fix_ticket_playground.py runs a Playground per person).
The channel's ticket card is the read-only view everyone sees; Teams refreshes it to the agent view for the
agents (Universal Actions `refresh`), which the Playground doesn't ("User specific view is not supported yet
in Microsoft 365 Agents playground"): here the agent refreshes it by hand, from the card's overflow menu.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import Page, expect

from tests.support.playground import SHOTS, say
from tests.support.playground_flows import agent_view, delivered, set_helpdesk_channel


async def test_escalate_assign_resolve_and_the_user_is_told(page: Page, bot_store: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    cards = page.locator(".ac-adaptiveCard")
    await expect(cards.first).to_contain_text("I'm Sync Doctor", timeout=30_000)

    # In the team channel, an agent @mentions the bot to make it the helpdesk channel.
    await set_helpdesk_channel(page)

    # In personal chat, the user escalates the diagnosis with a comment.
    await page.get_by_text("Personal Chat", exact=True).first.click()
    await say(page, "Quarterly review isn't on my calendar")
    diagnosis = cards.filter(has_text="Why “Quarterly review with Contoso” isn't in Outlook")
    await expect(diagnosis).to_have_count(1, timeout=30_000)
    await diagnosis.get_by_role("button", name="Escalate").click()
    form = cards.filter(has_text="Escalate to the helpdesk")
    await expect(form).to_have_count(1, timeout=30_000)
    await form.locator("textarea").fill("Still missing after an hour")
    await form.get_by_role("button", name="Send to helpdesk").click()
    confirmation = cards.filter(has_text="is with the helpdesk")
    await expect(confirmation).to_have_count(1, timeout=30_000)
    found = re.search(r"SD-\d+", await confirmation.inner_text())
    assert found is not None
    key = found.group(0)

    # In the channel, the ticket card carries the diagnosis and the comment; the agent assigns and resolves.
    await page.get_by_text("General", exact=True).first.click()
    ticket = cards.filter(has_text=f"{key}: ")
    await expect(ticket).to_have_count(1, timeout=30_000)
    await expect(ticket).to_contain_text("This appointment doesn't meet your synchronization filters")
    await expect(ticket).to_contain_text("Still missing after an hour")
    await expect(ticket).not_to_contain_text("{{")  # the last change's time, in the reader's time zone
    await agent_view(page, ticket)
    await ticket.get_by_role("button", name="Assign me").click()
    await expect(ticket).to_contain_text(f"{key}: Assigned", timeout=30_000)
    # The bot also updates the channel's card for everyone (a PUT from its outbox, the read-only view);
    # typing before that lands would be wiped by the re-render, as it would in Teams.
    await delivered(bot_store)
    await expect(ticket.get_by_role("button", name="Resolve")).to_have_count(0, timeout=30_000)
    await agent_view(page, ticket)
    note = ticket.locator("textarea")
    await note.fill("Added you as a required attendee")
    await expect(note).to_have_value("Added you as a required attendee")
    await ticket.get_by_role("button", name="Resolve").click()
    await expect(ticket).to_contain_text(f"{key}: Resolved", timeout=30_000)
    await expect(ticket).to_contain_text("Resolution: Added you as a required attendee")
    await page.screenshot(path=str(SHOTS / "helpdesk-channel.png"), full_page=True)

    # Back in personal chat, the user was told at each step.
    await page.get_by_text("Personal Chat", exact=True).first.click()
    await expect(page.get_by_text(f"Your ticket {key} was assigned to Alex Wilber").first).to_be_visible(
        timeout=30_000
    )
    await expect(page.get_by_text(f"Your ticket {key} was resolved by Alex Wilber").first).to_be_visible(
        timeout=30_000
    )
    await page.screenshot(path=str(SHOTS / "helpdesk-user.png"), full_page=True)
