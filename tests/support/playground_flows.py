"""What the end-to-end modules share: an org of their own (a changed copy of the sample org), the bot's
sandbox and a server-side sync cycle on demand, the Playground signed in as another of its mock users, the
helpdesk channel, and an agent's view of a ticket card."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Locator, Page, expect

from bot.sandbox import SAMPLE_ORG
from bot.store import SqliteStore
from bot.store.base import OutboxQuery
from tests.support.helpdesk import all_sent
from tests.support.playground import running_playground
from tests.support.timing import until

# The Playground's Adaptive Cards renderer throws, and sends nothing, when an Action.Execute's data has a
# property named "key" (agentsplayground 0.2.28): Teams itself sends such data as is.
SANDBOX_URL = re.compile(r"serving the sandbox org from .* at (http://127\.0\.0\.1:\d+)")
# The Agents Playground's mock users (its built-in configuration), in its order: the first signs in.
PEOPLE: dict[str, dict[str, str]] = {
    first: {
        "name": f"{first.capitalize()} {last}",
        "userPrincipleName": upn,
        "aadObjectId": f"00000000-0000-0000-0000-00000000000{20 + n}",
        "givenName": first.capitalize(),
        "surname": last,
        "email": email,
    }
    for n, (first, last, upn, email) in enumerate(
        [
            ("alex", "Wilber", "alexw@example.com", "alexw@example.com"),
            ("megan", "Bowen", "meganb@example.com", "meganb@example.com"),
            ("adele", "Vance", "adelev@example.com", "adelev@example.com"),
            ("isaiah", "Langer", "isaiah@example.com", "isaiahl@example.com"),
            ("patti", "Fernandez", "pattif@example.com", "pattif@example.com"),
            ("lynne", "Robbins", "lynner@example.com", "lynner@example.com"),
        ]
    )
}


# --- the org and its sandbox ---------------------------------------------------------------------------


def org_copy(folder: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """The sample org, changed by `change`, written to `folder`; it syncs on demand only (`sync`), never
    on a timer, so that what a test sees doesn't depend on when a cycle happens to run."""
    data = json.loads(SAMPLE_ORG.read_text())
    data.pop("$sync_cycle_seconds", None)
    change(data)
    path = folder / "org.json"
    path.write_text(json.dumps(data))
    return path


def systemuser(data: dict[str, Any], person: str) -> dict[str, Any]:
    """The Dataverse user of a Playground person ("alex", "megan", ...)."""
    aad = PEOPLE[person]["aadObjectId"]
    return next(u for u in data["systemusers"] if u["azureactivedirectoryobjectid"] == aad)


def mailbox_of(data: dict[str, Any], person: str) -> dict[str, Any]:
    user = systemuser(data, person)["systemuserid"]
    return next(m for m in data["mailboxes"] if m["_regardingobjectid_value"] == user)


def sandbox_of(log: Path) -> str:
    """The bot's sandbox URL, as its log says at start (the bot runs with LOG_FORMAT=text)."""
    found = SANDBOX_URL.search(log.read_text(errors="replace"))
    assert found, f"the bot's log names no sandbox: {log}"
    return found.group(1)


async def sync(sandbox: str) -> None:
    """One cycle of the sandbox's server-side sync, now: scheduled tests complete, records that meet a
    person's filters reach their calendar, and those that stopped meeting them leave it."""
    async with httpx.AsyncClient(timeout=30) as http:
        cycle = await http.post(f"{sandbox}/$sandbox/sync")
        assert cycle.status_code == 200, cycle.text


# --- the Playground ------------------------------------------------------------------------------------


@contextmanager
def running_playground_as(folder: Path, bot_url: str, person: str) -> Iterator[str]:
    """The Agents Playground signed in as `person` (one of `PEOPLE`), the others its team and chat members:
    its configuration file (M365_AGENTS_PLAYGROUND_CONFIG_PATH, read once at start) with the users moved
    round. One Playground is one user, so a test with two people runs two, on the same bot."""
    others = [p for p in PEOPLE if p != person]
    config = {
        "version": "0.1.1",
        "tenantId": "00000000-0000-0000-0000-0000000000001",
        "bot": {"id": "00000000-0000-0000-0000-00000000000011", "name": "Test Bot"},
        "currentUser": {"id": f"user-id-{list(PEOPLE).index(person)}", **PEOPLE[person]},
        "users": [{"id": f"user-id-{list(PEOPLE).index(p)}", **PEOPLE[p]} for p in others],
        "personalChat": {"id": f"personal-chat-{person}"},
        "groupChat": {"id": "group-chat-id", "name": "Group Chat"},
        "team": {
            "id": "team-id",
            "name": "My Team",
            "aadGroupId": "00000000-0000-0000-0000-000000000031",
            "channels": [{"id": "channel-announcements-id", "name": "Announcements"}],
        },
    }
    path = folder / "m365agentsplayground.yml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    with ExitStack() as stack:
        with pytest.MonkeyPatch.context() as env:  # the Playground's environment only: read as it starts
            env.setenv("M365_AGENTS_PLAYGROUND_CONFIG_PATH", str(path))
            url = stack.enter_context(running_playground(folder, bot_url))
        yield url


async def set_helpdesk_channel(page: Page) -> None:
    """In the team channel, an agent @mentions the bot to make it the helpdesk channel."""
    await page.get_by_text("General", exact=True).first.click()
    composer = page.locator('[role="textbox"]').first
    await composer.click()
    await composer.type("@")
    await page.locator(".fui-MenuItem__content").filter(has_text="Test Bot").first.click()
    await page.keyboard.type(" use this channel for helpdesk")
    await page.get_by_role("button", name="Post").click()
    await expect(page.get_by_text("This channel now gets Sync Doctor tickets").first).to_be_visible(
        timeout=30_000
    )


async def delivered(store_path: Path, prefix: str = "") -> None:
    """Wait until the bot's outbox has nothing left to send (bounded): of the entries whose key starts with
    `prefix` (e.g. "ticket:1001:", a ticket's card updates), or of all of them. A fix's checks wait in the
    outbox for minutes: after one, name what to wait for."""
    store = SqliteStore(str(store_path))

    async def nothing_pending() -> bool:
        page = await store.outbox_page(OutboxQuery(status="pending"))
        return not any(entry.dedupe_key.startswith(prefix) for entry in page.records)

    try:
        await (until(nothing_pending, f"the outbox to send {prefix}…") if prefix else all_sent(store))
    finally:
        await store.close()


async def agent_view(page: Page, ticket: Locator) -> None:
    """Refresh the ticket card by hand (its overflow menu), as Teams does on its own for an agent."""
    await expect(ticket.get_by_role("button", name="Resolve")).to_have_count(0)  # the read-only view
    await ticket.get_by_role("button", name="More options").click()
    await page.get_by_role("menuitem", name="Refresh").click()
    await expect(ticket.get_by_role("button", name="Resolve")).to_have_count(1, timeout=30_000)
