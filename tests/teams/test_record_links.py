"""A record named in chat by its Dynamics 365 link (or its id): that record is diagnosed, read as the person."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.sandbox import LocalOrg
from bot.teams.intents import RecordLink, classify, record_link
from tests.support.cards import card_text
from tests.support.org import ALEX, QUARTERLY
from tests.support.teams import Teams, running_bot

ORG = "https://contoso.crm.dynamics.com/main.aspx?appid=5a1f&pagetype=entityrecord"
FABRIKAM_KICKOFF = "c3000000-0000-4000-8000-000000000003"  # Megan's; Alex neither owns it nor takes part
NANCY = "c7000000-0000-4000-8000-000000000001"  # a contact Alex owns


@pytest.fixture
async def teams(local: LocalOrg) -> AsyncIterator[Teams]:
    async with running_bot(local) as running:
        yield running


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{ORG}&etn=appointment&id={QUARTERLY}", RecordLink(QUARTERLY, "appointment", "appointment")),
        (
            f"why isn't this in outlook? {ORG}&id=%7B{NANCY.upper()}%7D&etn=contact",
            RecordLink(NANCY, "contact", "contact"),
        ),
        (
            f"{ORG}&etn=recurringappointmentmaster&id={QUARTERLY}",
            RecordLink(QUARTERLY, "appointment", "recurringappointmentmaster"),
        ),
        (f"appointment {QUARTERLY} is not in outlook", RecordLink(QUARTERLY, None)),
        (f"{ORG}&etn=account&id={QUARTERLY}", RecordLink(QUARTERLY, None, "account")),  # not ours to check
        ("my quarterly review is not in outlook", None),
        # As an <a href> carries it: HTML-escaped, the app's id first. The record's id is `id`, not `appid`.
        (
            f"https://contoso.crm.dynamics.com/main.aspx?appid={NANCY}&amp;etn=appointment&amp;id={QUARTERLY}",
            RecordLink(QUARTERLY, "appointment", "appointment"),
        ),
        # Older links name the table by its type code, and wrap the id in %-encoded braces.
        (
            f"https://contoso.crm.dynamics.com/main.aspx?etc=4201&id=%7b{QUARTERLY}%7d",
            RecordLink(QUARTERLY, "appointment", "appointment"),
        ),
        (f"https://contoso.crm.dynamics.com/main.aspx?appid={NANCY}&pagetype=dashboard", None),
    ],
)
def test_links_and_ids_are_read_from_a_message(text: str, expected: RecordLink | None) -> None:
    assert record_link(text) == expected


def test_a_pasted_link_alone_is_a_question_about_that_record() -> None:
    assert classify(f"{ORG}&etn=task&id={QUARTERLY}").name == "diagnose"
    assert classify(f"{ORG}&etn=task&id={QUARTERLY}").record_type == "task"
    # Around a link, the words still decide: a link is not a question about sync by itself.
    assert (
        classify(f"can you book a room for this {ORG}&etn=appointment&id={QUARTERLY}").name == "out_of_scope"
    )


async def test_a_link_to_ones_own_record_diagnoses_it(teams: Teams) -> None:
    await teams.say(f"this isn't in my outlook {ORG}&etn=appointment&id={QUARTERLY}", user=ALEX)
    [card] = teams.connector.cards()
    assert "This appointment doesn't meet your synchronization filters" in card_text(card)


async def test_a_link_to_a_record_the_person_may_not_read_says_so_and_shows_nothing_of_it(
    teams: Teams,
) -> None:
    await teams.say(f"why is this not in outlook {ORG}&etn=appointment&id={FABRIKAM_KICKOFF}", user=ALEX)
    [card] = teams.connector.cards()
    text = card_text(card)
    assert "You can't open this appointment in Dynamics 365" in text
    assert "Fabrikam kickoff" not in str(card) and "Megan" not in str(card)


async def test_a_link_to_a_table_that_does_not_sync_is_answered_plainly(teams: Teams) -> None:
    await teams.say(f"this isn't in my outlook {ORG}&etn=account&id={QUARTERLY}", user=ALEX)
    assert teams.connector.cards() == []
    [said] = teams.connector.texts()
    assert "Dynamics 365 account" in said and "appointments, contacts and tasks" in said


async def test_the_card_for_a_record_one_may_not_read_keeps_its_id_for_recheck_and_escalation(
    teams: Teams,
) -> None:
    await teams.say(f"why is this not in outlook {ORG}&etn=appointment&id={FABRIKAM_KICKOFF}", user=ALEX)
    [card] = teams.connector.cards()
    data = next(a["data"] for a in card["actions"] if a.get("verb") == "recheck")
    assert data["record"] == FABRIKAM_KICKOFF  # Re-check and Escalate are about that record, not the mailbox
    again = (await teams.press("recheck", data, user=ALEX)).json()
    assert "You can't open this appointment" in card_text(again["value"])
