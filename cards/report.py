"""The sweep's delivery report for the helpdesk channel: what it found, whom it told, whom it couldn't
reach and what failed (with the reasons counted), and anything else the outbox gave up since the last one.
It replaces the unreachable-only digest. Names, emails and error texts are outside text: `plain`/`literal`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from microsoft_teams.cards.core import AdaptiveCard, CardElement, Fact, FactSet

from cards.common import ERROR, NAME, card, heading, literal, text

__all__ = ["Failed", "ReportView", "build_delivery_report_card"]

LISTED = 25  # people or failures named one by one
PERSON = 160  # "name (causes)"


@dataclass(frozen=True)
class Failed:
    who: str
    cause: str
    reason: str


@dataclass(frozen=True)
class ReportView:
    """What the card shows; the helpdesk fills it from the sweep's report and the outbox."""

    found: int
    told: int
    already_told: int
    muted: int
    fixed: int
    causes: Mapping[str, int]  # people per cause, among those found
    unreachable: Sequence[str]  # "name (causes)", the first ones
    unreachable_total: int
    failed: int
    reasons: Mapping[str, int]  # failures per reason
    failures: Sequence[Failed] = ()
    sending: int = 0  # still being sent when the report went
    given_up: int = 0  # other messages given up since the last report
    given_up_reasons: Mapping[str, int] = field(default_factory=dict)
    given_up_list: Sequence[Failed] = ()


def _counts(counts: Mapping[str, int]) -> FactSet:
    return FactSet(facts=[Fact(title=literal(k, NAME), value=str(n)) for k, n in sorted(counts.items())])


def _failures(
    title: str, failed: int, reasons: Mapping[str, int], listed: Sequence[Failed]
) -> list[CardElement]:
    more = failed - len(listed[:LISTED])
    lines = [
        f"- {literal(f.who, NAME)}: {literal(f.cause, NAME)} ({literal(f.reason, ERROR)})"
        for f in listed[:LISTED]
    ]
    return [
        text(title, color="Attention", spacing="Medium"),
        _counts(reasons),
        text("\n".join(lines) + (f"\n- … and {more} more" if more > 0 else "")),
    ]


def build_delivery_report_card(view: ReportView) -> AdaptiveCard:
    """One card per sweep: the outcome counts first, then who needs the helpdesk's attention."""
    summary = FactSet(
        facts=[
            Fact(title="Found with a broken mailbox", value=str(view.found)),
            Fact(title="Told now", value=str(view.told)),
            Fact(title="Already told", value=str(view.already_told)),
            Fact(title="Muted", value=str(view.muted)),
            Fact(title="Can't reach yet", value=str(view.unreachable_total)),
            Fact(title="Failed", value=str(view.failed)),
            *([Fact(title="Still sending", value=str(view.sending))] if view.sending else []),
            *([Fact(title="Told it's fixed", value=str(view.fixed))] if view.fixed else []),
        ]
    )
    body: list[CardElement] = [heading("Sync sweep: delivery report", size="Medium"), summary]
    if view.causes:
        body += [text("Causes (people):", spacing="Medium"), _counts(view.causes)]
    if view.unreachable_total:
        shown = list(view.unreachable[:LISTED])
        more = view.unreachable_total - len(shown)
        body += [
            text(
                "They haven't chatted with me yet, so I can't tell them:",
                spacing="Medium",
            ),
            text(
                "\n".join(f"- {literal(p, PERSON)}" for p in shown)
                + (f"\n- … and {more} more" if more > 0 else "")
            ),
        ]
    if view.failed:
        body += _failures("I gave up on these notices:", view.failed, view.reasons, view.failures)
    if view.given_up:
        body += _failures(
            "Given up since the last report (earlier notices, ticket cards):",
            view.given_up,
            view.given_up_reasons,
            view.given_up_list,
        )
    if view.sending:
        body.append(
            text(
                f"Still sending {view.sending}: failures among them will be in the next report.", subtle=True
            )
        )
    body.append(text("`python -m bot report` lists every notice and its outcome.", subtle=True))
    fallback = f"Sync sweep: {view.found} found, {view.told} told, {view.unreachable_total} can't reach, {view.failed} failed"
    return card(body, fallback_text=fallback)
