"""Text from people and from Dynamics 365 shows as written: it never becomes a link, heading, image or list.

Every card builder gets hostile text in every field that comes from outside (names, subjects, comments,
notes, evidence, errors, picker items), and each card is rendered by the official Adaptive Cards
JavaScript library with a permissive markdown processor (render_cards.js). A hostile card must hold
exactly the markup of the same card built with harmless words: the product's own links and lists, no more.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from bot.diagnosis import Finding, Report
from bot.diagnosis.fixes import Change, Fix
from bot.diagnosis.report import RecordSummary, UserSummary
from bot.diagnosis.rules import FINDING_IDS
from bot.fixing import Applied
from bot.helpdesk.tickets import Ticket
from cards.common import MAX_CARD_BYTES, card_size, clip, literal, to_dict
from cards.conversation import PickerItem, build_checklist_card, build_picker_card, build_welcome_card
from cards.diagnosis import BRIEF, build_diagnosis_card
from cards.fix import (
    build_fix_applied_card,
    build_fix_confirm_card,
    build_fix_failed_card,
    build_fix_refused_card,
)
from cards.notice import build_digest_card, build_problem_card
from cards.report import Failed, ReportView, build_delivery_report_card
from cards.ticket import build_escalate_card, build_ticket_card, build_ticket_list_card
from tests.support.cards import run_node
from tests.support.org import ALEX

RENDERER = Path(__file__).with_name("render_cards.js")
NOW = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
KB = "https://support.microsoft.com/help/4509420"
HARMLESS = "Quarterly review"

HOSTILE = {
    "link": "talk to a human [Reset your password here](https://evil.example/login)",
    "subject link": "[Click me](https://evil.example/click)",
    "heading": "# HUGE",
    "emphasis": "**bold** __strong__ *italic* _em_ ~~gone~~",
    "lists": "- one\n- two\n1. first\n2) second\n* three\n+ four",
    "html": '<a href="https://evil.example">click</a> <img src="https://evil.example/x.png"> <b>b</b><script>x</script>',
    "image": "![logo](https://evil.example/logo.png)",
    "autolinks": "see https://evil.example/login or www.evil.example or <https://evil.example/a>",
    "emails": "mail security@evil.example or mailto:x@evil.example <y@evil.example>",
    "newlines": "line one\n\n# Heading\n\n> quote\n\n---\nSetext\n===\n\n    indented code\n```\nfenced\n```",
    "escapes": "\\[not a link\\](https\\://evil.example) C:\\temp\\ \\",
    "table": "| a | b |\n|---|---|\n| 1 | 2 |",
    "code": "`code` and <!-- comment --> &lt;b&gt; &amp;",
    "10 KB": ("[Reset](https://evil.example/r) **x** # y\n- z " * 400)[:10_240],
}


def ticket(words: str, **changes: Any) -> Ticket:
    base = Ticket(
        number=1001,
        tenant="t",
        user_aad=ALEX,
        user_name=words,
        record_type="appointment",
        record_id=None,
        subject=words,
        report={"findings": [{"id": "outside-sync-filter", "status": "fail", "title": words}]},
        comment=words,
        assignee_name=words,
        changed_by=words,
        changed_at=words,
    )
    return replace(base, **changes)


def report(words: str, *, with_record: bool = True) -> Report:
    evidence: dict[str, Any] = {
        "filters": [words, words],
        "last_sync_error": {"message": words, "code": 1},
        "looked_for": words,
    }
    findings = (
        Finding("outside-sync-filter", "fail", words, evidence, (words, f"Open {words}'s mailbox."), KB),
        Finding("sync-pending", "warn", words, {"hint": words}, (words,), KB),
        Finding("no-sync-filter", "unknown", words, {"why": words}, (), KB),
        Finding("mailbox-missing", "pass", words, {"mailboxid": words}, (), KB),
    )
    record = RecordSummary("appointment", "c3000000-0000-4000-8000-000000000001", words, words)
    return Report(
        user=UserSummary(ALEX, "s", words, words),
        record=record if with_record else None,
        findings=findings,
        in_exchange=None,
    )


OWNER = '<fetch><entity name="appointment"><filter><condition attribute="ownerid" operator="eq-userid" /></filter></entity></fetch>'


def filter_fix(words: str) -> Fix:
    """A new filter named `words` (Dynamics 365 keeps whatever name it was given), its title `words`."""
    changes = (
        Change("userqueries", None, "name", None, words),
        Change("userqueries", None, "fetchxml", None, OWNER),
        Change("userqueries", None, "returnedtypecode", None, "appointment"),
    )
    return Fix("add-filter", "outside-sync-filter", words, "self", changes)


def mailbox_fix(words: str) -> Fix:
    change = Change("mailboxes", "b2000000-0000-4000-8000-000000000002", "actdeliverymethod", 2, 1)
    return Fix("set-act-server-side-sync", "act-not-server-side-sync", words, "agent", (change,))


def mailbox_test_fix(words: str) -> Fix:
    """Test & Enable, an agent's fix the person may make too, its title `words`."""
    change = Change(
        "mailboxes", "b2000000-0000-4000-8000-000000000004", "testemailconfigurationscheduled", False, True
    )
    return Fix("schedule-mailbox-test", "mailbox-not-tested", words, "agent", (change,))


def applied(words: str, state: str = "applied") -> Applied:
    return Applied("k" * 32, filter_fix(words), ALEX, words, state, NOW, {"undone_at": words}, words)  # type: ignore[arg-type]


def with_fixes(words: str) -> Report:
    """`report(words)` whose failing finding carries the person's fix and an agent's."""
    base = report(words)
    failing = replace(base.findings[0], fixes=(filter_fix(words),))
    return replace(base, findings=(failing, *base.findings[1:]))


# Every card builder, with outside text `words` in every field that takes outside text.
BUILDERS: dict[str, Callable[[str], Any]] = {
    "welcome": lambda w: build_welcome_card(w),
    "picker": lambda w: build_picker_card([PickerItem("id-1", w, w)], record_type="appointment", user=ALEX),
    "checklist": lambda w: build_checklist_card(record_type="appointment", reason=w, user=ALEX),
    "escalate": lambda w: build_escalate_card(user=ALEX, record=None, record_type="appointment", subject=w),
    "ticket for agents": lambda w: build_ticket_card(ticket(w), notice=w),
    "ticket resolved": lambda w: build_ticket_card(ticket(w, status="resolved", resolution=w)),
    "ticket for the user": lambda w: build_ticket_card(ticket(w), for_agents=False, notice=w),
    "ticket in the channel": lambda w: build_ticket_card(ticket(w), for_agents=False, agents=["29:a"]),
    "ticket in the channel, an agent's view": lambda w: build_ticket_card(
        ticket(w), agents=["29:a"], notice=w
    ),
    "ticket list": lambda w: build_ticket_list_card(
        [ticket(w), ticket(w, subject=None)], title="Open tickets"
    ),
    "problem": lambda w: build_problem_card(
        Finding("act-sync-failing", "fail", w, {"status": w}, (w, w), KB), user=ALEX
    ),
    "digest": lambda w: build_digest_card({w: 2}, [w, w], total=2),
    "delivery report": lambda w: build_delivery_report_card(
        ReportView(
            found=3,
            told=1,
            already_told=1,
            muted=0,
            fixed=0,
            causes={w: 2},
            unreachable=[w],
            unreachable_total=1,
            failed=1,
            reasons={w: 1},
            failures=[Failed(w, w, w)],
            given_up=1,
            given_up_reasons={w: 1},
            given_up_list=[Failed(w, w, w)],
        )
    ),
    "diagnosis": lambda w: build_diagnosis_card(report(w), record_type="appointment", checked_at=NOW),
    "diagnosis, all checks": lambda w: build_diagnosis_card(
        report(w), record_type="appointment", checked_at=NOW, show_all=True
    ),
    "mailbox diagnosis": lambda w: build_diagnosis_card(
        report(w, with_record=False), record_type="appointment", checked_at=NOW
    ),
    "fix offered on a diagnosis": lambda w: build_diagnosis_card(
        with_fixes(w), record_type="appointment", checked_at=NOW, offer=filter_fix(w), notice=w
    ),
    "fix confirmation": lambda w: build_fix_confirm_card(
        filter_fix(w), data={}, cancel={}, record_type="appointment", subject=w, mailbox=w
    ),
    "fix confirmation, an agent's": lambda w: build_fix_confirm_card(
        mailbox_fix(w), data={}, cancel={}, record_type="appointment", subject=w, mailbox=w, whose="theirs"
    ),
    "fix applied": lambda w: build_fix_applied_card(
        applied(w), record_type="appointment", recheck_after=900, check={}, viewer=ALEX, by_name=w
    ),
    "fix undone": lambda w: build_fix_applied_card(
        applied(w, "undone"), record_type="appointment", recheck_after=None, check={}, viewer=ALEX
    ),
    "fix confirmation, Test & Enable of my mailbox": lambda w: build_fix_confirm_card(
        mailbox_test_fix(w), data={}, cancel={}, record_type="appointment", subject=w, mailbox=w
    ),
    "fix applied, by the helpdesk": lambda w: build_fix_applied_card(
        replace(applied(w), fix=mailbox_test_fix(w)),
        record_type="appointment",
        recheck_after=900,
        check={},
        viewer=ALEX,
        subject=w,
        mailbox=w,
        by_name=w,
    ),
    "fix failed": lambda w: build_fix_failed_card(filter_fix(w), reason=w, retry=("fix_apply", {})),
    "fix refused": lambda w: build_fix_refused_card(filter_fix(w), message=w, helpdesk=w, check={}),
    "fix refused, an agent's": lambda w: build_fix_refused_card(
        mailbox_fix(w), message=w, helpdesk=None, check={}, whose="theirs"
    ),
    "ticket with fixes, an agent's view": lambda w: build_ticket_card(
        ticket(w, report=with_fixes(w).to_dict() | {"findings": [mailbox_finding(w)]}),
        agents=["29:a"],
        fixes=[applied(w), applied(w, "refused")],
    ),
}


def mailbox_finding(words: str) -> dict[str, Any]:
    return Finding("act-not-server-side-sync", "fail", words, fixes=(mailbox_fix(words),)).to_dict()


render = partial(run_node, RENDERER)  # each card's problems, markup and text


def markup(rendered: dict[str, Any]) -> dict[str, int]:
    return {tag: n for tag, n in rendered["tags"].items() if n}


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], dict[str, Any]]:
    """Each builder's card with harmless words and with each hostile text, as the library renders it."""
    keys = [(builder, kind) for builder in BUILDERS for kind in ["harmless", *HOSTILE]]
    cards = [to_dict(BUILDERS[b](HOSTILE.get(k, HARMLESS))) for b, k in keys]
    return dict(zip(keys, render(cards), strict=True))


def test_the_renderer_turns_markdown_into_markup() -> None:
    """The check below means something: markdown in a TextBlock or a Fact does become markup here."""
    body: list[dict[str, Any]] = [{"type": "TextBlock", "text": text} for text in HOSTILE.values()]
    body.append({"type": "FactSet", "facts": [{"title": "# t", "value": HOSTILE["link"]}]})
    body.append({"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": HOSTILE["link"]}]})
    choices = [{"title": HOSTILE["subject link"], "value": "1"}]
    body.append({"type": "Input.ChoiceSet", "id": "c", "style": "expanded", "choices": choices})
    [shown] = render([{"type": "AdaptiveCard", "version": "1.5", "body": body}])
    assert shown["problems"] == []
    tags = markup(shown)
    assert tags["a"] >= 10 and tags["img"] == 2 and tags["li"] >= 6, tags
    expected = {"h1", "ul", "ol", "strong", "em", "del", "pre", "code", "blockquote", "table", "script"}
    assert expected <= tags.keys(), tags
    assert HOSTILE["link"] in shown["text"]  # the TextRun, as written
    assert HOSTILE["subject link"] in shown["text"]  # a choice's title, as Teams shows it


def test_clip_makes_one_line_cut_with_an_ellipsis() -> None:
    assert clip("  a\n\n b\tc\r\n", 10) == "a b c"
    assert clip("x" * 20, 10) == "x" * 9 + "…"
    assert clip("ok\x00\x07!", 10) == "ok!"
    assert clip("x" * 10, 10) == "x" * 10


def test_literal_text_shows_as_written_and_makes_no_markup() -> None:
    texts = [literal(t, 20_000) for t in HOSTILE.values()]
    body: list[dict[str, Any]] = [{"type": "TextBlock", "text": t} for t in texts]
    facts = [{"type": "FactSet", "facts": [{"title": t, "value": t} for t in texts]}]
    shown, in_facts = render([{"type": "AdaptiveCard", "version": "1.5", "body": b} for b in (body, facts)])
    assert markup(shown) == {}
    assert markup(in_facts) == {"table": 1}  # how the library lays out a FactSet
    assert shown["text"] == "".join(clip(t, 20_000) for t in HOSTILE.values())
    assert literal("1. x", 10) == "1\\. x"
    assert literal("# x", 10) == "\\# x"
    assert literal("x - y", 10) == "x - y"  # only what could be markup is escaped


@pytest.mark.parametrize("builder", BUILDERS)
def test_product_markup_is_still_there(rendered: dict[tuple[str, str], Any], builder: str) -> None:
    shown = rendered[builder, "harmless"]
    assert shown["problems"] == []
    assert HARMLESS in shown["text"] or builder == "welcome"
    if builder.startswith("diagnosis"):
        assert markup(shown)["a"] == 2 and markup(shown)["ol"] == 2  # the guidance links, numbered steps
    if builder == "digest":
        assert markup(shown)["ul"] == 1


@pytest.mark.parametrize("kind", HOSTILE)
@pytest.mark.parametrize("builder", BUILDERS)
def test_hostile_text_adds_no_markup(rendered: dict[tuple[str, str], Any], builder: str, kind: str) -> None:
    shown, harmless = rendered[builder, kind], rendered[builder, "harmless"]
    assert shown["problems"] == []
    assert markup(shown) == markup(harmless)
    words = HOSTILE[kind]
    first = " ".join(words.split())[:12] if builder != "welcome" else words.split()[0]
    assert first in shown["text"], "the text shows as written"


@pytest.mark.parametrize("builder", BUILDERS)
def test_long_text_is_cut_with_an_ellipsis(builder: str) -> None:
    card = json.dumps(to_dict(BUILDERS[builder](HOSTILE["10 KB"])), ensure_ascii=False)
    assert len(card.encode()) < 12_000  # Teams takes about 28 KB per message
    assert "…" in card or builder == "welcome"  # (the welcome card says the first name only)


def worst_report(words: str, title: str | None = None) -> Report:
    """Every documented cause failing at once, each titled `title` (else `words`), with long evidence (a
    time among it) and four long steps; the filter cause with the person's fix, the mailbox's with an
    agent's."""
    evidence: dict[str, Any] = {
        "filters": [words, words],
        "last_sync_error": {"message": words},
        "when": "2026-11-25T18:00:00Z",
        "looked_for": words,
        "owner": words,
    }
    fixes = {"outside-sync-filter": filter_fix(words), "act-not-server-side-sync": mailbox_fix(words)}
    findings = tuple(
        Finding(
            f,
            "fail",
            title or words,
            evidence,
            (words,) * 4,
            KB,
            fixes=(fixes[f],) if f in fixes else (),
        )
        for f in FINDING_IDS
    )
    record = RecordSummary(
        "appointment", "c3000000-0000-4000-8000-000000000001", words, "2026-11-25T18:00:00Z"
    )
    return Report(
        user=UserSummary(ALEX, "s", words, words), record=record, findings=findings, in_exchange=False
    )


# The finding titles are the catalogue's words, with a name or an address in some: long, never 10 KB of emoji.
LONG_TITLE = "Your mailbox " + "x" * 60 + "@example.com was never tested and enabled, so nothing syncs"


@pytest.mark.parametrize(
    ("words", "title"),
    [
        (HOSTILE["10 KB"], None),
        ("😀 " * 5000, LONG_TITLE),
    ],  # an emoji takes 12 bytes of JSON: "\\ud83d\\ude00"
    ids=["markdown", "emoji"],
)
def test_every_card_fits_in_one_teams_message_at_its_worst(words: str, title: str | None) -> None:
    """Teams refuses a message over about 28 KB: with every cause failing and every text at its longest,
    the diagnosis card leaves the last problems' details out (saying so), never a title or the fix."""
    worst = worst_report(words, title)
    offer = worst.findings[FINDING_IDS.index("outside-sync-filter")].fixes[0]
    for show_all in (False, True):
        built = build_diagnosis_card(
            worst, record_type="appointment", checked_at=NOW, show_all=show_all, offer=offer, notice=words
        )
        assert card_size(built) <= MAX_CARD_BYTES, show_all
        shown = json.dumps(to_dict(built), ensure_ascii=False)
        assert BRIEF in shown and shown.count("Microsoft's guidance") == len(FINDING_IDS)
        assert "Fix it for me" in shown
        assert ("1. " in shown) is (title is None)  # ASCII: the first problems keep their steps
    calm = build_diagnosis_card(
        report(HOSTILE["10 KB"]), record_type="appointment", checked_at=NOW, show_all=True
    )
    assert BRIEF not in json.dumps(to_dict(calm), ensure_ascii=False)  # what fits keeps every detail

    ticket_at_worst = ticket(words, report=worst.to_dict(), status="resolved", resolution=words)
    many = [applied(words), applied(words, "refused")] * 5
    agents = [f"29:{'1' * 120}{n}" for n in range(80)]
    for for_agents in (True, False):
        built = build_ticket_card(
            ticket_at_worst, for_agents=for_agents, agents=agents, notice=words, fixes=many
        )
        assert card_size(built) <= MAX_CARD_BYTES
    for name, builder in BUILDERS.items():
        assert card_size(builder(words)) <= MAX_CARD_BYTES, name
