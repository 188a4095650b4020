"""Every card validates with the official Adaptive Cards library and shows what a person needs."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from bot.diagnosis import Finding, self_checks
from bot.helpdesk.tickets import Ticket
from bot.investigation import Investigator
from bot.sandbox import LocalOrg
from cards.common import to_dict
from cards.conversation import (
    PickerItem,
    build_checklist_card,
    build_help_card,
    build_picker_card,
    build_welcome_card,
)
from cards.diagnosis import build_diagnosis_card
from cards.notice import build_digest_card, build_problem_card
from cards.ticket import build_escalate_card, build_ticket_card, build_ticket_list_card
from tests.support.cards import run_node
from tests.support.org import ALEX, PLAYGROUND

VALIDATOR = Path(__file__).with_name("validate_cards.js")
NOW = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
TICKET = Ticket(
    number=1001,
    tenant="t",
    user_aad=ALEX,
    user_name="Alex Wilber",
    record_type="appointment",
    record_id=None,
    subject="Quarterly review",
    report={"findings": [{"id": "outside-sync-filter", "status": "fail", "title": "Outside your filters"}]},
    comment="please help",
    changed_at="2026-11-25T18:00:00Z",
)
ALLOWED_COLORS = {"Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention"}


validate = partial(run_node, VALIDATOR)  # each card's problems


async def all_cards(local: LocalOrg) -> dict[str, dict[str, Any]]:
    investigator = Investigator(local.clients.dataverse, local.clients.graph)
    cards: dict[str, dict[str, Any]] = {
        "welcome": to_dict(build_welcome_card("Alex Wilber")),
        "welcome-anonymous": to_dict(build_welcome_card(None)),
        "help": to_dict(build_help_card()),
        "picker": to_dict(
            build_picker_card(
                [PickerItem("c3000000-0000-4000-8000-000000000001", "Quarterly review", "Fri 27 Nov")],
                record_type="appointment",
                user=ALEX,
            )
        ),
        "picker-empty": to_dict(build_picker_card([], record_type="task", user=ALEX)),
        "checklist": to_dict(
            build_checklist_card(record_type="appointment", reason="Dataverse timed out", user=ALEX)
        ),
        "escalate": to_dict(
            build_escalate_card(user=ALEX, record=None, record_type="appointment", subject="Demo")
        ),
        "tickets": to_dict(build_ticket_list_card([TICKET], title="Open tickets")),
        "tickets-empty": to_dict(build_ticket_list_card([], title="Your tickets")),
        "ticket-open": to_dict(
            build_ticket_card(TICKET, notice="Adele changed this ticket just before you.")
        ),
        "ticket-user": to_dict(
            build_ticket_card(TICKET, for_agents=False, notice="Ticket SD-1001 is with the helpdesk.")
        ),
        "ticket-resolved": to_dict(build_ticket_card(replace(TICKET, status="resolved", resolution="Fixed"))),
        "notice": to_dict(
            build_problem_card(Finding("act-sync-failing", "fail", "Failing", steps=("Do it",)), user=ALEX)
        ),
        "digest": to_dict(
            build_digest_card({"mailbox-missing": 30}, [f"user {n}" for n in range(30)], total=30)
        ),
    }
    for user, record in [
        (ALEX, "quarterly review"),
        (PLAYGROUND + "21", None),
        (PLAYGROUND + "22", "product demo"),
        (PLAYGROUND + "25", "contract renewal"),
        ("johannal@example.com", None),
        ("nobody@example.com", None),
    ]:
        report = await investigator.run(user, record)
        for show_all in (False, True):
            cards[f"diagnosis {user} {record} {show_all}"] = to_dict(
                build_diagnosis_card(report, record_type="appointment", checked_at=NOW, show_all=show_all)
            )
    return cards


async def test_every_card_validates_with_the_official_library(local: LocalOrg) -> None:
    cards = await all_cards(local)
    problems = validate(list(cards.values()))
    assert {name: p for name, p in zip(cards, problems, strict=True) if p} == {}
    # the validator really reports problems
    assert validate([{"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "Bogus"}]}]) != [[]]


def nodes(node: Any) -> list[Any]:
    """Every object and list inside a card, depth first."""
    found = [node]
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        found += nodes(child)
    return found


async def test_cards_use_schema_1_5_universal_actions_and_theme_colours(local: LocalOrg) -> None:
    for name, card in (await all_cards(local)).items():
        assert card["version"] == "1.5", name
        for action in card.get("actions", []):
            assert action["type"] == "Action.Execute" and action["verb"], name
        objects = [n for n in nodes(card) if isinstance(n, dict)]
        assert {} not in objects, f"{name}: empty object"
        assert all(o["color"] in ALLOWED_COLORS for o in objects if "color" in o), name


async def test_diagnosis_card_shows_verdict_evidence_steps_and_source(local: LocalOrg) -> None:
    report = await Investigator(local.clients.dataverse, local.clients.graph).run(ALEX, "quarterly review")
    card = to_dict(build_diagnosis_card(report, record_type="appointment", checked_at=NOW))
    text = json.dumps(card)
    assert card["body"][1]["inlines"][0]["text"].startswith(
        "Found it: This appointment doesn't meet your synchronization filters"
    )
    assert '"title": "Your roles", "value": "owner"' in text
    assert "1. Make yourself the organizer or a required attendee of the appointment" in text
    assert "2. Or: in Dynamics 365, select the gear icon" in text
    assert "https://support.microsoft.com/help/4509420" in text
    data = card["actions"][0]["data"]
    assert data == {
        "user": ALEX,
        "record": report.record.id,  # type: ignore[union-attr]
        "type": "appointment",
        "show_all": False,
        "subject": "Quarterly review with Contoso",
    }


@pytest.mark.parametrize("show_all", [False, True])
async def test_passing_checks_only_in_show_all(local: LocalOrg, show_all: bool) -> None:
    report = await Investigator(local.clients.dataverse, local.clients.graph).run(
        PLAYGROUND + "22", "product demo"
    )
    card = to_dict(build_diagnosis_card(report, record_type="appointment", checked_at=NOW, show_all=show_all))
    text = json.dumps(card)
    assert "Everything checks out, and it is in your Outlook calendar." in text
    assert ("Mailbox record is active" in text) is show_all


def test_problem_card_takes_a_finding_or_the_dict_the_outbox_keeps() -> None:
    finding = Finding("act-sync-failing", "fail", "Failing", {"status": "Failure"}, ("Do it",), "https://x")
    typed = to_dict(build_problem_card(finding, user=ALEX))
    assert to_dict(build_problem_card(finding.to_dict(), user=ALEX)) == typed
    assert typed["actions"][0]["data"]["cause"] == "act-sync-failing"
    with pytest.raises(ValueError, match="'status'"):
        build_problem_card({"id": "act-sync-failing", "title": "Failing"}, user=ALEX)


def test_checklist_shows_the_core_guidance_for_the_record_type() -> None:
    card = json.dumps(to_dict(build_checklist_card(record_type="task", reason="timed out", user=ALEX)))
    for n, step in enumerate(self_checks("task"), start=1):
        assert f"{n}. {step}" in card
    assert "Open the task:" in card


def test_ticket_card_reads_the_kept_report() -> None:
    finding = Finding("mailbox-inactive", "fail", "Your mailbox record is inactive")
    kept = {**TICKET.report, "findings": [finding.to_dict(), {"id": "x", "status": "pass", "title": "Fine"}]}
    text = json.dumps(to_dict(build_ticket_card(replace(TICKET, report=kept))))
    assert "Your mailbox record is inactive" in text and "Fine" not in text
    failed = replace(TICKET, report={"findings": [], "error": "diagnosis unavailable: dataverse"})
    assert "SD-1001" in json.dumps(to_dict(build_ticket_card(failed)))  # what the helpdesk keeps then
