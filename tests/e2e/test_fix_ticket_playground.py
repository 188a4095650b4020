"""An agent's Fix on a ticket card, end to end in the Agents Playground, with two people in it: each person
in a Playground of their own (one Playground signs in one user), Alex Wilber, the helpdesk agent, in the
team channel of his. All on one bot and one org: a copy of the sample org where Alex's roles let him write
mailboxes (prvWriteMailbox) but not approve email addresses (no prvApproveRejectEmailAddress), and Megan
Bowen's address also waits for approval.

- Isaiah Langer's mailbox was never tested. He presses Fix it for me (Test and enable my mailbox): his roles
  don't let him write his mailbox, so the card says so and the helpdesk gets a ticket. Alex presses Fix on
  it and confirms; the ticket card lists the fix as done, and after the next sync cycle Isaiah is told.
- Megan escalates her mailbox (Appointments, Contacts, and Tasks set to None, the address not approved).
  Alex's Fix for the address is refused by Dataverse, and the ticket card says why (not an error); his
  second fix, server-side synchronization, is made.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from bot.sandbox.privileges import OWN_FILTERS
from tests.support.org import ALEX
from tests.support.playground import CHROMIUM_ARGS, SHOTS, running_playground, say
from tests.support.playground_flows import (
    agent_view,
    delivered,
    mailbox_of,
    org_copy,
    running_playground_as,
    sandbox_of,
    set_helpdesk_channel,
    sync,
    systemuser,
)
from tests.support.processes import bot_env, running_bot

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the pages below live as long as the module
RECHECK_AFTER = "8,40"  # seconds after the fix: the first check finds the sync cycle the test runs
PENDING_APPROVAL = 2  # mailbox.emailrouteraccessapproval


def _agent_roles(data: dict[str, Any]) -> None:
    """Alex may write mailboxes (and his own filters), not approve addresses; Megan's address waits."""
    alex = systemuser(data, "alex")["systemuserid"]
    data["$privileges"] = {alex: sorted(OWN_FILTERS | {"prvWriteMailbox"})}
    mailbox_of(data, "megan")["emailrouteraccessapproval"] = PENDING_APPROVAL


class Desk:
    """This module's bot (`serve --sandbox` on its org, Alex its helpdesk agent) and what tests read of it."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url = url
        self.store = folder / "store.sqlite3"
        self.log = folder / f"bot-{url.rsplit(':', 1)[1]}.log"


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    folder = tmp_path_factory.mktemp("ticket-bot")
    org = org_copy(folder, _agent_roles)
    env = bot_env(
        folder / "store.sqlite3", HELPDESK_AGENTS=ALEX, FIX_RECHECK_AFTER=RECHECK_AFTER, LOG_FORMAT="text"
    )
    with running_bot(folder, env, org) as url:
        yield Desk(url, folder)


@pytest.fixture(scope="module")
def playgrounds(desk: Desk, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The Playground of each person: Alex's (its default user), Isaiah's and Megan's."""
    mktemp = tmp_path_factory.mktemp
    with (
        running_playground(mktemp("alex-playground"), desk.url) as alex,
        running_playground_as(mktemp("isaiah-playground"), desk.url, "isaiah") as isaiah,
        running_playground_as(mktemp("megan-playground"), desk.url, "megan") as megan,
    ):
        yield {"alex": alex, "isaiah": isaiah, "megan": megan}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


async def _open(browser: Browser, url: str) -> Page:
    """A person's Playground, once the bot has greeted them (installed: it can message them now)."""
    page = await browser.new_page(viewport={"width": 1280, "height": 1500})
    await page.goto(url, wait_until="domcontentloaded")
    await expect(page.locator(".ac-adaptiveCard").first).to_contain_text("I'm Sync Doctor", timeout=30_000)
    return page


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pages(browser: Browser, playgrounds: dict[str, str]) -> dict[str, Page]:
    """Each person's page; Alex's in the team channel, which he made the helpdesk channel."""
    opened = {person: await _open(browser, url) for person, url in playgrounds.items()}
    await set_helpdesk_channel(opened["alex"])
    return opened


async def _ticket(page: Page, key: str) -> Locator:
    """The ticket's card in the helpdesk channel, in the agent's view; also as the confirmation card an
    agent's Fix puts in its place (one at a time)."""
    ticket = page.locator(".ac-adaptiveCard").filter(has_text=re.compile(f"{key}: |Apply this fix\\?"))
    await expect(ticket).to_have_count(1, timeout=30_000)
    await agent_view(page, ticket)
    return ticket


async def _confirm(page: Page, ticket: Locator, expected: str) -> dict[str, Any]:
    """Confirm the agent's fix on its confirmation card (in the ticket card's place); the card the bot
    answered with, as Teams shows it to the agent. The channel's read-only card, which the bot also
    updates (its outbox), may land before or after it: the answer is read from the wire, not the screen."""
    await expect(ticket).to_contain_text("Apply this fix?", timeout=30_000)
    await expect(ticket).to_contain_text(expected)
    await expect(ticket).to_contain_text("Dynamics 365 checks that you may make it")
    async with page.expect_response(lambda r: r.url.endswith("/invoke")) as answered:
        await ticket.get_by_role("button", name="Confirm").click()
    answer: dict[str, Any] = await (await answered.value).json()
    return answer


def _texts(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False)


async def test_the_person_may_not_test_their_mailbox_the_agent_does_and_the_person_is_told(
    pages: dict[str, Page], desk: Desk
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    isaiah, alex = pages["isaiah"], pages["alex"]
    cards = isaiah.locator(".ac-adaptiveCard")

    # Isaiah's own Test & Enable: offered (Dataverse decides), refused by his roles, sent to the helpdesk.
    await say(isaiah, "check my mailbox")
    check = cards.filter(has_text="Your mailbox check")
    await expect(check).to_have_count(1, timeout=30_000)
    await expect(check).to_contain_text("I can do it for you: Fix it for me")
    await check.get_by_role("button", name="Fix it for me").click()
    confirm = cards.filter(has_text="Fix it for me?")
    await expect(confirm).to_contain_text("Test and enable my mailbox", timeout=30_000)
    await expect(confirm).to_contain_text("Schedule Test & Enable for your mailbox (isaiahl@example.com)")
    await confirm.get_by_role("button", name="Confirm").click()
    refused = cards.filter(has_text="Your organization doesn't let you change this")
    await expect(refused).to_have_count(1, timeout=30_000)
    found = re.search(r"I've told the helpdesk: ticket (SD-\d+)", await refused.inner_text())
    assert found is not None, await refused.inner_text()
    key = found.group(1)

    # In the channel: the ticket carries Dataverse's words; Alex's Fix, confirmed, is made as him.
    ticket = await _ticket(alex, key)
    await expect(ticket).to_contain_text("Isaiah Langer")
    await expect(ticket).to_contain_text("missing prvWriteMailbox privilege")
    await ticket.get_by_role("button", name="Fix", exact=True).click()
    answer = await _confirm(alex, ticket, "Schedule Test & Enable for the mailbox isaiahl@example.com")
    assert "Done: Test and enable the mailbox isaiahl@example.com" in _texts(answer), answer
    assert "tell Isaiah Langer how it went" in _texts(answer), answer

    # The card everyone sees lists the fix, done (the same fix as Isaiah's refused one: its record now).
    await delivered(desk.store, f"ticket:{key.removeprefix('SD-')}:")
    await expect(ticket).to_contain_text("One-click fixes for this person", timeout=30_000)
    await expect(ticket).to_contain_text("Test and enable the mailbox isaiahl@example.com (done)")
    await agent_view(alex, ticket)
    await ticket.scroll_into_view_if_needed()
    await alex.screenshot(path=str(SHOTS / "fix-ticket.png"), full_page=True)

    # The next sync cycle runs the test; the bot's check after the fix tells Isaiah in his chat.
    await sync(sandbox_of(desk.log))
    told = isaiah.get_by_text("Fixed: nothing keeps your mailbox from syncing with Outlook any more.")
    await expect(told.first).to_be_visible(timeout=90_000)
    await isaiah.screenshot(path=str(SHOTS / "fix-ticket-user.png"), full_page=True)

    # No Entra object id on a card: an agent who isn't the ticket's assignee is "a helpdesk agent".
    assert ALEX not in await ticket.inner_text()
    await expect(ticket).to_contain_text("a helpdesk agent")


async def test_an_agent_without_the_privilege_is_refused_on_the_card(pages: dict[str, Page]) -> None:
    megan, alex = pages["megan"], pages["alex"]
    cards = megan.locator(".ac-adaptiveCard")

    # Megan's fixes are an agent's: her card offers none, and she escalates.
    await say(megan, "check my mailbox")
    check = cards.filter(has_text="Your mailbox check")
    await expect(check).to_have_count(1, timeout=30_000)
    await expect(check).to_contain_text("Appointments, Contacts, and Tasks")
    await expect(check.get_by_role("button", name="Fix it for me")).to_have_count(0)
    await check.get_by_role("button", name="Escalate").click()
    form = cards.filter(has_text="Escalate to the helpdesk")
    await expect(form).to_have_count(1, timeout=30_000)
    await form.get_by_role("button", name="Send to helpdesk").click()
    sent = cards.filter(has_text="is with the helpdesk")
    await expect(sent).to_have_count(1, timeout=30_000)
    found = re.search(r"SD-\d+", await sent.inner_text())
    assert found is not None
    key = found.group(0)

    # Fix: approving her address needs a privilege Alex's roles lack. Dataverse's words, on the card.
    ticket = await _ticket(alex, key)
    await ticket.get_by_role("button", name="Fix", exact=True).click()
    await _confirm(alex, ticket, "Approve the email address of the mailbox meganb@example.com")
    await expect(ticket).to_contain_text("Dynamics 365 refused it", timeout=30_000)
    await expect(ticket).to_contain_text("missing prvApproveRejectEmailAddress privilege")
    await expect(ticket).to_contain_text("(refused by Dynamics 365)")

    # His other fix for her, from the overflow menu, is his to make.
    await ticket.get_by_role("button", name="More options").click()
    await alex.get_by_role("menuitem", name="Fix: server-side sync").click()
    answer = await _confirm(
        alex,
        ticket,
        "Set Appointments, Contacts, and Tasks of the mailbox meganb@example.com from None to "
        "Server-Side Synchronization",
    )
    assert "Done: Set the mailbox meganb@example.com to sync" in _texts(answer), answer
