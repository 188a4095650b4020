"""Proactive cards: a sync problem found by the sweep, and the digest of people the bot can't reach."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from microsoft_teams.cards.core import AdaptiveCard, CardElement, Fact, FactSet

from bot.diagnosis import Finding
from cards.common import LINE, NAME, STEP, card, clip, execute, heading, literal, plain, text

__all__ = ["build_digest_card", "build_problem_card"]

DIGEST_LIST_LIMIT = 25
PERSON = 160  # "name (causes)"


def build_problem_card(finding: Finding | Mapping[str, object], *, user: str) -> AdaptiveCard:
    """What is wrong, what it means for the person, the steps, and what they can do from here.

    Args:
        finding: the failing finding, or the `Finding.to_dict()` the sweep keeps in the outbox (read back
            here, so the deliverer needs no core types: the architecture has no Outbox -> Core arrow).

    Raises:
        ValueError: `finding` is a dict that is not a finding.
    """
    if not isinstance(finding, Finding):
        finding = Finding.from_dict(finding)
    title = clip(finding.title or finding.id, LINE)
    steps = [literal(s, STEP) for s in finding.steps]
    body: list[CardElement] = [
        heading("Your Dynamics 365 appointments can't reach Outlook", size="Medium"),
        plain(title, weight="Bolder", color="Attention"),
        text(
            "Until this is fixed, new appointments, contacts and tasks from Dynamics 365 won't show up in Outlook."
        ),
    ]
    if steps:
        body.append(text("How to fix it:\n" + "\n".join(f"{n}. {s}" for n, s in enumerate(steps, start=1))))
    body.append(
        text(
            "Mailbox settings usually need your Dynamics 365 admin: forward this to them, or escalate.",
            subtle=True,
        )
    )
    data = {"user": user, "record": None, "type": "appointment", "cause": finding.id}
    actions = [
        execute("Re-check", "recheck", data, style="positive", tooltip="Re-check my mailbox now"),
        execute("Notify me", "watch", data, tooltip="Notify me when it's fixed"),
        execute("Mute", "mute", data, tooltip="Mute these notices"),
    ]
    return card(body, actions, fallback_text=finding.title or "A sync problem with your mailbox")


def build_digest_card(counts: Mapping[str, int], people: Sequence[str], *, total: int) -> AdaptiveCard:
    """For the helpdesk: people with a broken mailbox that the bot can't message yet (no chat with it)."""
    shown = list(people[:DIGEST_LIST_LIMIT])
    more = total - len(shown)
    body: list[CardElement] = [
        heading(f"Sync sweep: {total} people I can't reach", size="Medium"),
        text(
            "Their mailboxes can't sync appointments, but they haven't chatted with me yet, so I can't tell them."
        ),
        FactSet(
            facts=[Fact(title=literal(cause, NAME), value=str(n)) for cause, n in sorted(counts.items())]
        ),
        text(
            "\n".join(f"- {literal(p, PERSON)}" for p in shown)
            + (f"\n- … and {more} more" if more > 0 else "")
        ),
    ]
    return card(body, fallback_text=f"{total} people with sync problems I can't reach")
