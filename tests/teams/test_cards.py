"""Every card validates with the official Adaptive Cards library and shows what a person needs."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from bot.diagnosis import Finding, Report, self_checks
from bot.diagnosis.fixes import Change, Fix
from bot.diagnosis.report import RecordSummary, UserSummary
from bot.diagnosis.rules import FINDING_IDS
from bot.fixing import Applied
from bot.helpdesk.tickets import Ticket
from bot.investigation import Investigator
from bot.sandbox import LocalOrg
from bot.teams.actions import ACTIONS
from bot.teams.diagnoses import offered_fix
from cards.common import MAX_CARD_BYTES, MAX_VISIBLE_ACTIONS, TITLE_LIMIT, card_size, to_dict
from cards.conversation import (
    PickerItem,
    build_checklist_card,
    build_help_card,
    build_picker_card,
    build_welcome_card,
)
from cards.diagnosis import BRIEF, build_diagnosis_card
from cards.fix import (
    build_fix_applied_card,
    build_fix_confirm_card,
    build_fix_failed_card,
    build_fix_refused_card,
)
from cards.notice import build_digest_card, build_problem_card
from cards.report import Failed, ReportView, build_delivery_report_card
from cards.ticket import AGENT_VERBS, build_escalate_card, build_ticket_card, build_ticket_list_card
from tests.support.cards import card_text, run_node
from tests.support.org import ALEX, PLAYGROUND

VALIDATOR = Path(__file__).with_name("validate_cards.js")
RENDERER = Path(__file__).with_name("render_cards.js")
AGENT_IDS = ["29:megan", "29:adele"]  # Teams user ids (MRIs), as refresh.userIds takes them
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
MAILBOX_FIX = Fix(
    "set-act-server-side-sync",
    "act-not-server-side-sync",
    "Set Appointments, Contacts, and Tasks to Server-Side Synchronization",
    "agent",
    (Change("mailboxes", "b2000000-0000-4000-8000-000000000002", "actdeliverymethod", 2, 1),),
)
FILTER_FIX = Fix(
    "add-filter",
    "outside-sync-filter",
    "Add a sync filter: Appointments I own",
    "self",
    (
        Change("userqueries", None, "name", None, "Appointments I own"),
        Change("userqueries", None, "returnedtypecode", None, "appointment"),
    ),
)
TEST_FIX = Fix(
    "schedule-mailbox-test",
    "mailbox-not-tested",
    "Test and enable the mailbox isaiahl@example.com",
    "agent",
    (
        Change(
            "mailboxes",
            "b2000000-0000-4000-8000-000000000004",
            "testemailconfigurationscheduled",
            False,
            True,
        ),
    ),
)
APPLIED = Applied(
    "k" * 32, FILTER_FIX, ALEX, ALEX, "applied", NOW, record="c3000000-0000-4000-8000-000000000001"
)
FIXED_TICKET = replace(
    TICKET,
    report={
        "findings": [
            Finding("act-not-server-side-sync", "fail", "ACT is None", fixes=(MAILBOX_FIX,)).to_dict(),
            Finding(
                "mailbox-not-tested",
                "fail",
                "Not tested",
                fixes=(replace(MAILBOX_FIX, id="schedule-mailbox-test", finding="mailbox-not-tested"),),
            ).to_dict(),
        ]
    },
)
FIX_DATA = {"user": ALEX, "record": None, "type": "appointment", "fix": "add-filter"}
ALLOWED_COLORS = {"Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention"}


validate = partial(run_node, VALIDATOR)  # each card's problems


def crowded() -> Report:
    """Every cause failing at once, each with long evidence and steps: more than one Teams message takes."""
    long = "Open Settings > Email Configuration > Mailboxes and the mailbox alexw@example.com. " * 5
    findings = tuple(
        Finding(
            f,
            "fail",
            f"{f} fails",
            {"filters": ["My Appointments"] * 3, "detail": long, "when": "2026-11-25T18:00:00Z"},
            (long,) * 4,
            "https://support.microsoft.com/help/4509420",
            fixes=(FILTER_FIX,) if f == FILTER_FIX.finding else (),
        )
        for f in FINDING_IDS
    )
    record = RecordSummary("appointment", "c3000000-0000-4000-8000-000000000001", "Quarterly review", None)
    return Report(UserSummary(ALEX, "s", "Alex Wilber", "alexw@example.com"), record, findings, False)


async def all_cards(local: LocalOrg) -> dict[str, dict[str, Any]]:
    investigator = Investigator(local.clients.dataverse, local.clients.graph)
    cards: dict[str, dict[str, Any]] = {
        "welcome": to_dict(build_welcome_card("Alex Wilber")),
        "welcome-anonymous": to_dict(build_welcome_card(None)),
        "help": to_dict(build_help_card()),
        "picker": to_dict(
            build_picker_card(
                [
                    PickerItem(
                        "c3000000-0000-4000-8000-000000000001", "Quarterly review", "Fri 27 Nov 15:00 UTC"
                    ),
                    PickerItem(
                        "c3000000-0000-4000-8000-000000000002", "Quarterly review", "2026-11-28T15:00:00Z"
                    ),
                ],
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
        "ticket-channel": to_dict(build_ticket_card(TICKET, for_agents=False, agents=AGENT_IDS)),
        "ticket-channel-agent": to_dict(build_ticket_card(TICKET, agents=AGENT_IDS)),
        "ticket-channel-resolved": to_dict(
            build_ticket_card(replace(TICKET, status="resolved", resolution="Fixed"), agents=AGENT_IDS)
        ),
        "notice": to_dict(
            build_problem_card(Finding("act-sync-failing", "fail", "Failing", steps=("Do it",)), user=ALEX)
        ),
        "digest": to_dict(
            build_digest_card({"mailbox-missing": 30}, [f"user {n}" for n in range(30)], total=30)
        ),
        "delivery-report": to_dict(
            build_delivery_report_card(
                ReportView(
                    found=40,
                    told=30,
                    already_told=5,
                    muted=1,
                    fixed=2,
                    causes={"mailbox-not-tested": 25, "act-sync-failing": 15},
                    unreachable=[f"user {n} (mailbox-not-tested)" for n in range(3)],
                    unreachable_total=3,
                    failed=1,
                    reasons={"403 Forbidden": 1},
                    failures=[Failed("Lee Gu", "mailbox-missing", "403 Forbidden")],
                    sending=2,
                )
            )
        ),
        "fix-confirm": to_dict(
            build_fix_confirm_card(
                FILTER_FIX,
                data=FIX_DATA,
                cancel=FIX_DATA,
                record_type="appointment",
                subject="Quarterly review",
            )
        ),
        "fix-confirm-agent": to_dict(
            build_fix_confirm_card(
                MAILBOX_FIX,
                data=FIX_DATA,
                cancel={"ticket": 1001},
                record_type="appointment",
                mailbox="a@b.c",
                whose="theirs",
            )
        ),
        "fix-applied": to_dict(
            build_fix_applied_card(
                APPLIED, record_type="appointment", recheck_after=900, check=FIX_DATA, viewer=ALEX
            )
        ),
        "fix-applied-again": to_dict(
            build_fix_applied_card(
                replace(APPLIED, first=False),
                record_type="appointment",
                recheck_after=None,
                check=FIX_DATA,
                viewer=ALEX,
            )
        ),
        "fix-undone": to_dict(
            build_fix_applied_card(
                replace(APPLIED, state="undone", result={"undone_at": "2026-11-25T18:05:00+00:00"}),
                record_type="appointment",
                recheck_after=900,
                check=FIX_DATA,
                viewer=ALEX,
            )
        ),
        "diagnosis-crowded": to_dict(
            build_diagnosis_card(
                crowded(), record_type="appointment", checked_at=NOW, show_all=True, offer=FILTER_FIX
            )
        ),
        "fix-confirm-mailbox": to_dict(
            build_fix_confirm_card(
                TEST_FIX,
                data=FIX_DATA,
                cancel=FIX_DATA,
                record_type="appointment",
                mailbox="isaiahl@example.com",
            )
        ),
        "fix-applied-by-the-helpdesk": to_dict(
            build_fix_applied_card(
                replace(APPLIED, fix=TEST_FIX, by=PLAYGROUND + "22"),
                record_type="appointment",
                recheck_after=900,
                check=FIX_DATA,
                viewer=ALEX,
                by_name="the helpdesk",
            )
        ),
        "fix-refused-agent": to_dict(
            build_fix_refused_card(
                MAILBOX_FIX, message="missing prvWriteMailbox", helpdesk=None, whose="theirs"
            )
        ),
        "fix-failed": to_dict(
            build_fix_failed_card(FILTER_FIX, reason="Dataverse timed out", retry=("fix_apply", FIX_DATA))
        ),
        "fix-in-progress": to_dict(
            build_fix_failed_card(None, reason="", retry=("fix_apply", FIX_DATA), in_progress=True)
        ),
        "fix-refused": to_dict(
            build_fix_refused_card(
                FILTER_FIX,
                message="missing prvCreateUserQuery privilege",
                helpdesk="Ask your admin.",
                check=FIX_DATA,
            )
        ),
        "ticket-channel-agent-fixes": to_dict(
            build_ticket_card(
                FIXED_TICKET, agents=AGENT_IDS, fixes=[APPLIED, replace(APPLIED, state="refused")]
            )
        ),
        "ticket-channel-fixes": to_dict(
            build_ticket_card(FIXED_TICKET, for_agents=False, agents=AGENT_IDS, fixes=[APPLIED])
        ),
    }
    for user, record in [
        (ALEX, "quarterly review"),
        (PLAYGROUND + "21", None),
        (PLAYGROUND + "22", "product demo"),
        (PLAYGROUND + "23", None),  # Isaiah: his mailbox was never tested (Fix it for me: Test & Enable)
        (PLAYGROUND + "25", "contract renewal"),
        ("johannal@example.com", None),
        ("nobody@example.com", None),
    ]:
        report = await investigator.run(user, record)
        for show_all in (False, True):
            cards[f"diagnosis {user} {record} {show_all}"] = to_dict(
                build_diagnosis_card(report, record_type="appointment", checked_at=NOW, show_all=show_all)
            )
            # As the person sees it: with "Fix it for me" where a fix they may make applies.
            offer = offered_fix(report, user)
            cards[f"diagnosis {user} {record} {show_all} for them"] = to_dict(
                build_diagnosis_card(
                    report, record_type="appointment", checked_at=NOW, show_all=show_all, offer=offer
                )
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


async def test_every_card_fits_in_one_teams_message(local: LocalOrg) -> None:
    """Teams takes about 28 KB a message, the activity included: a crowded diagnosis leaves the last
    problems' evidence and steps out, and says so."""
    cards = await all_cards(local)
    assert {n: len(json.dumps(c)) for n, c in cards.items() if len(json.dumps(c)) > MAX_CARD_BYTES} == {}
    full = build_diagnosis_card(crowded(), record_type="appointment", checked_at=NOW, offer=FILTER_FIX)
    assert card_size(full) <= MAX_CARD_BYTES
    shown = card_text(to_dict(full))
    assert BRIEF in shown and "1. Open Settings" in shown and "Fix it for me" in shown
    assert all(f"{f} fails" in shown for f in FINDING_IDS)


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


# --- Teams' conventions (issue 16): times, wrapping choices, headings, short titles, per-person views ----

_ISO = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2})"
MACRO = re.compile(rf"\{{\{{(?:DATE\({_ISO}, (?:COMPACT|SHORT|LONG)\)|TIME\({_ISO}\))\}}\}}")
RAW_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}|\b\d{1,2}:\d{2}\b|\bUTC\b|\{\{(?:DATE|TIME)")


def texts(node: Any, path: str = "") -> list[tuple[str, str, dict[str, Any]]]:
    """Every string a person may see, with where it is ("Fact.value", "TextBlock.text", "choice.title"...)
    and the object holding it. Action data, refresh and fallbackText are not shown as card text."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    if isinstance(node, dict):
        kind = node.get("type") or path
        for key, value in node.items():
            if key in ("data", "refresh", "fallbackText", "$schema", "id", "verb"):
                continue
            if isinstance(value, str) and key in (
                "text",
                "title",
                "value",
                "label",
                "tooltip",
                "placeholder",
            ):
                found.append((f"{kind}.{key}", value, node))
            else:
                found += texts(value, "choice" if key == "choices" else "Fact" if key == "facts" else kind)
    elif isinstance(node, list):
        for item in node:
            found += texts(item, path)
    return found


async def test_times_are_teams_date_time_functions_in_text_blocks(local: LocalOrg) -> None:
    """Each person sees times in their own time zone and format: {{DATE()}}/{{TIME()}}, which Teams applies in
    a TextBlock's text only. Elsewhere (a choice's title) a time is spelled out with "UTC"."""
    cards = await all_cards(local)
    with_times = 0
    for name, card in cards.items():
        for where, value, _ in texts(card):
            macros = MACRO.findall(value)
            with_times += bool(macros)
            assert not macros or where == "TextBlock.text", f"{name}: {where} {value!r}"
            rest = MACRO.sub("", value)
            if where == "choice.title":
                assert not re.search(r"\d{4}-\d{2}-\d{2}T", rest), f"{name}: {value!r}"
                assert not re.search(r"\d:\d{2}", rest) or rest.endswith("UTC)"), f"{name}: {value!r}"
            else:
                assert not RAW_TIME.search(rest), f"{name}: a fixed time in {where}: {value!r}"
        assert "{{" not in card.get("fallbackText", ""), name  # readable where cards aren't shown
    assert with_times >= len([n for n in cards if n.startswith(("diagnosis", "ticket-"))])
    # The official library's own DATE()/TIME() formatter takes every one of them: none is left as written.
    shown = run_node(RENDERER, list(cards.values()))
    assert [n for n, r in zip(cards, shown, strict=True) if "{{" in r["text"] or r["problems"]] == []


async def test_choices_wrap_and_headings_are_headings(local: LocalOrg) -> None:
    for name, card in (await all_cards(local)).items():
        objects = [n for n in nodes(card) if isinstance(n, dict)]
        for choice_set in (o for o in objects if o.get("type") == "Input.ChoiceSet"):
            assert choice_set.get("wrap") is True, name  # the date that tells two apart stays visible
        first = card["body"][0]
        assert first["type"] == "TextBlock" and first.get("style") == "heading", (
            f"{name} starts with a heading"
        )
        for block in objects:
            big = block.get("size") in ("Medium", "Large", "ExtraLarge") or block.get("weight") == "Bolder"
            if block.get("type") == "TextBlock" and big:
                assert block.get("style") == "heading", f"{name}: {block['text']!r} looks like a heading"
            assert not (block.get("type") == "TextRun" and block.get("size") == "Large"), name


async def test_action_titles_fit_teams_mobile(local: LocalOrg) -> None:
    """At ~320 px (Teams mobile) the buttons share one row: at most three, each title short enough not to be
    cut ("Re-..."); the full words are in the tooltip, which starts the same (label in name)."""
    for name, card in (await all_cards(local)).items():
        actions = card.get("actions", [])
        visible = [a for a in actions if a.get("mode") != "secondary"]
        assert len(visible) <= MAX_VISIBLE_ACTIONS, name
        for action in actions:
            limit = TITLE_LIMIT[max(len(visible), 1)] if action in visible else TITLE_LIMIT[1]
            assert len(action["title"]) <= limit, f"{name}: {action['title']!r} is cut at 320 px"
            tooltip = action.get("tooltip")
            assert tooltip is None or action["title"].split()[0].lower() in tooltip.lower(), (name, tooltip)


async def test_ticket_cards_show_agent_buttons_only_in_the_agent_view(local: LocalOrg) -> None:
    cards = await all_cards(local)
    for name, card in cards.items():
        verbs = {a["verb"] for a in card.get("actions", [])}
        inputs = [n for n in nodes(card) if isinstance(n, dict) and n.get("type") == "Input.Text"]
        agent_view = name in (
            "ticket-open",
            "ticket-resolved",
            "ticket-channel-agent",
            "ticket-channel-resolved",
            "ticket-channel-agent-fixes",
        ) or name.startswith("fix-confirm-agent")
        assert bool(verbs & AGENT_VERBS) is agent_view, name
        if not agent_view:
            assert not any(i["id"] == "note" for i in inputs), name
        if name.startswith("ticket-channel"):  # the channel's card: Teams fetches each agent's view
            refresh = card["refresh"]
            assert refresh["userIds"] == AGENT_IDS and refresh["action"]["type"] == "Action.Execute"
            assert refresh["action"]["verb"] == "ticket_view" and ACTIONS["ticket_view"].refresh
        else:
            assert "refresh" not in card, name
    for verb in AGENT_VERBS:  # the server still checks, whatever the card showed
        assert ACTIONS[verb].agents_only and not ACTIONS[verb].refresh
    assert [v for v, a in ACTIONS.items() if a.refresh] == ["ticket_view"]
    many = to_dict(build_ticket_card(TICKET, for_agents=False, agents=[f"29:{n}" for n in range(70)]))
    assert len(many["refresh"]["userIds"]) == 60  # Teams refreshes for at most 60 user ids


def test_times_show_in_each_readers_time_zone() -> None:
    card = to_dict(build_ticket_card(TICKET))
    assert (
        "Last change: Alex Wilber, {{DATE(2026-11-25T18:00:00Z, SHORT)}}, {{TIME(2026-11-25T18:00:00Z)}}"
        in (card_text(card))
    )
    assert card["fallbackText"] == "SD-1001: Open (last change Wed 25 Nov 2026, 18:00 UTC)"
    odd = to_dict(build_ticket_card(replace(TICKET, changed_at="{{DATE(soon)}}")))
    assert "\\{\\{DATE(soon)}}" in card_text(odd)  # no time: shown as written, never as a function
    picker = to_dict(
        build_picker_card(
            [PickerItem("c3000000-0000-4000-8000-000000000001", "Review", "2026-11-27T15:00:00Z")],
            record_type="appointment",
            user=ALEX,
        )
    )
    assert picker["body"][1]["choices"][0]["title"] == "Review (Fri 27 Nov 2026, 15:00 UTC)"
