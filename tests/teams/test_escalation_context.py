"""Issue 13: "talk to a human" carries the last diagnosis shown in that chat to that person (record, causes,
evidence), as the card's Escalate button does; with none, the ticket says no record was named, never "no
blocking cause found"."""

from __future__ import annotations

import copy
import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.app import BOT
from bot.errors import StoreError
from bot.helpdesk.shown import LIFETIME
from bot.helpdesk.tickets import Ticket
from bot.store import SqliteStore
from cards.common import to_dict
from cards.ticket import build_ticket_card
from tests.support.cards import card_text
from tests.support.helpdesk import AGENTS, set_channel
from tests.support.org import ALEX, MEGAN, PLAYGROUND, QUARTERLY, make_local
from tests.support.teams import Teams, running_bot, running_connector
from tests.support.timing import until

RENEWAL = "c3000000-0000-4000-8000-000000000099"  # Alex's "Fabrikam renewal call"
ASKED = "my Fabrikam renewal call from dynamics isn't in my outlook calendar"
HUMAN = "this didn't help, I want to talk to a human"
OUTSIDE_FILTERS = "This appointment doesn't meet your synchronization filters"
MAILBOX_OFF = "Appointments, Contacts, and Tasks are not set to synchronize"
ISAIAH = PLAYGROUND + "23"


def with_renewal_call(data: dict[str, Any]) -> dict[str, Any]:
    """The sample org plus the record of the issue: a copy of Alex's quarterly review (its parties too),
    outside his synchronization filters."""
    data = copy.deepcopy(data)
    quarterly = next(a for a in data["appointments"] if a["activityid"] == QUARTERLY)
    data["appointments"].append({**quarterly, "activityid": RENEWAL, "subject": "Fabrikam renewal call"})
    parties = [p for p in data["activityparties"] if p["_activityid_value"] == QUARTERLY]
    for n, party in enumerate(parties, start=1):
        data["activityparties"].append(
            {
                **party,
                "activitypartyid": f"d4000000-0000-4000-8000-0000000099{n:02d}",
                "_activityid_value": RENEWAL,
            }
        )
    return data


@pytest.fixture
async def desk(sample_data: dict[str, Any]) -> AsyncIterator[Teams]:
    async with make_local(with_renewal_call(sample_data)) as local, running_bot(local, AGENTS) as teams:
        yield teams


async def ticket(teams: Teams, number: int = 1001) -> Ticket:
    assert teams.store is not None
    stored = await teams.store.get_ticket(number)
    assert stored is not None
    return Ticket.from_stored(stored)


async def escalated(teams: Teams, *, user: str = ALEX, name: str = "Alex Wilber") -> str:
    """Say "talk to a human"; the text of the ticket card the person gets back."""
    await teams.say(HUMAN, user=user, display_name=name)
    await teams.settle()
    text = card_text(teams.connector.cards()[-1])
    assert "SD-10" in text
    return text


def assert_no_record_named(text: str) -> None:
    assert "none named" in text and "no diagnosis was run in this chat" in text
    assert "no blocking cause" not in text


async def test_the_story_of_issue_13(desk: Teams) -> None:
    await set_channel(desk)
    await desk.say(ASKED, user=ALEX)
    shown = card_text(desk.connector.cards()[-1])
    assert "Fabrikam renewal call" in shown and OUTSIDE_FILTERS in shown
    mine = await escalated(desk)
    assert "appointment: Fabrikam renewal call" in mine and OUTSIDE_FILTERS in mine
    await until(lambda: len(desk.connector.created) == 1, "the ticket post")
    posted = card_text(desk.connector.created[0]["activity"]["attachments"][0]["content"])
    assert "appointment: Fabrikam renewal call" in posted and OUTSIDE_FILTERS in posted
    assert "no blocking cause" not in posted and HUMAN in posted  # the person's words are the comment
    kept = await ticket(desk)
    assert kept.record_id == RENEWAL and kept.subject == "Fabrikam renewal call"
    assert kept.report["causes"] == ["outside-sync-filter"]
    cause = next(f for f in kept.report["findings"] if f["id"] == "outside-sync-filter")
    assert cause["evidence"]  # what the person was shown, evidence and all


async def test_with_nothing_diagnosed_the_ticket_says_no_record_was_named(desk: Teams) -> None:
    await desk.say("hi", user=ALEX)
    assert_no_record_named(await escalated(desk))
    kept = await ticket(desk)
    assert kept.record_id is None and kept.report["findings"] == []


async def test_a_mailbox_cause_is_carried_too(desk: Teams) -> None:
    await desk.say("why isn't my appointment in Outlook?", user=MEGAN, display_name="Megan Bowen")
    text = await escalated(desk, user=MEGAN, name="Megan Bowen")
    assert MAILBOX_OFF in text and "none named (appointment sync)" in text
    assert "no blocking cause" not in text and "no diagnosis was run" not in text


async def test_another_chat_or_person_carries_nothing(desk: Teams) -> None:
    await desk.say(ASKED, user=ALEX)
    desk.conversation = "a:personal-chat-2"  # the same person, another conversation
    assert_no_record_named(await escalated(desk))
    desk.conversation = "a:personal-chat-1"  # the same conversation, another person
    assert_no_record_named(await escalated(desk, user=ISAIAH, name="Isaiah Langer"))
    assert "Fabrikam renewal call" in await escalated(desk)  # and Alex's own is still his


async def test_an_expired_diagnosis_is_not_carried(desk: Teams) -> None:
    assert desk.app is not None
    helpdesk = desk.app[BOT].helpdesk
    assert helpdesk is not None
    start = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    helpdesk.clock = lambda: start
    await desk.say(ASKED, user=ALEX)
    helpdesk.clock = lambda: start + LIFETIME + timedelta(minutes=1)
    assert_no_record_named(await escalated(desk))


async def test_a_diagnosis_just_within_its_lifetime_is_carried(desk: Teams) -> None:
    assert desk.app is not None
    helpdesk = desk.app[BOT].helpdesk
    assert helpdesk is not None
    start = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    helpdesk.clock = lambda: start
    await desk.say(ASKED, user=ALEX)
    helpdesk.clock = lambda: start + LIFETIME - timedelta(minutes=1)
    assert OUTSIDE_FILTERS in await escalated(desk)


async def test_only_the_latest_diagnosis_is_kept_and_carried(
    sample_data: dict[str, Any], tmp_path: Any
) -> None:
    path = str(tmp_path / "store.sqlite3")
    store = SqliteStore(path)
    try:
        async with (
            make_local(with_renewal_call(sample_data)) as local,
            running_bot(local, AGENTS, store=store) as teams,
        ):
            await teams.say(ASKED, user=ALEX)
            await teams.say("Quartely reveiw isn't on my calendar", user=ALEX)
            with sqlite3.connect(path) as db:
                rows = db.execute("SELECT value FROM settings WHERE key LIKE 'last_diagnosis:%'").fetchall()
            assert len(rows) == 1 and "Quarterly review" in rows[0][0]
            text = await escalated(teams)
            assert "Quarterly review with Contoso" in text and "Fabrikam" not in text
    finally:
        await store.close()


async def test_a_picker_after_a_diagnosis_carries_neither(desk: Teams) -> None:
    """The person asked about something else and was shown a choice: the older diagnosis, perhaps of
    another record, is not handed on as theirs."""
    await desk.say(ASKED, user=ALEX)
    await desk.say("why isnt my appt in outlook", user=ALEX)  # Alex's mailbox is fine: the picker
    assert any(e["type"] == "Input.ChoiceSet" for e in desk.connector.cards()[-1]["body"])
    assert_no_record_named(await escalated(desk))


async def test_the_next_message_may_reach_another_instance(
    sample_data: dict[str, Any], tmp_path: Any
) -> None:
    path = str(tmp_path / "store.sqlite3")
    first_store, second_store = SqliteStore(path), SqliteStore(path)
    try:
        async with (
            make_local(with_renewal_call(sample_data)) as local,
            running_connector() as connector,
            running_bot(local, AGENTS, store=first_store, connector=connector) as first,
            running_bot(local, AGENTS, store=second_store, connector=connector) as second,
        ):
            await first.say(ASKED, user=ALEX)
            text = await escalated(second)
            assert "appointment: Fabrikam renewal call" in text and OUTSIDE_FILTERS in text
    finally:
        await first_store.close()
        await second_store.close()


async def test_a_store_that_fails_costs_the_context_not_the_answer(
    desk: Teams, caplog: pytest.LogCaptureFixture
) -> None:
    assert desk.store is not None

    async def down(*args: Any, **kwargs: Any) -> None:
        raise StoreError("the SQLite store is locked")

    desk.store.set_setting = down  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR):
        await desk.say(ASKED, user=ALEX)
    assert OUTSIDE_FILTERS in card_text(desk.connector.cards()[-1])  # the diagnosis is still shown
    assert any("could not be kept" in r.getMessage() for r in caplog.records)


def test_the_ticket_card_says_only_what_its_report_does() -> None:
    base = Ticket(1001, "t", ALEX, "Alex Wilber", "appointment", None, None, {"findings": []}, "")

    def shown(ticket: Ticket) -> str:
        return card_text(to_dict(build_ticket_card(ticket)))

    failed = shown(replace(base, report={"findings": [], "error": "diagnosis unavailable: Dataverse"}))
    assert "diagnosis unavailable: Dataverse" in failed and "no blocking cause" not in failed
    mailbox = {"user": {}, "record": None, "findings": [], "causes": [], "in_exchange": None}
    healthy = shown(replace(base, report=mailbox))
    assert "no mailbox-level cause found" in healthy and "none named (appointment sync)" in healthy
    named = shown(replace(base, record_id=QUARTERLY, subject="Quarterly review", report=mailbox))
    assert "no blocking cause found" in named  # true of a record that was diagnosed
