"""The cards of the conversation around a diagnosis: welcome, help, record picker, manual checklist."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from microsoft_teams.cards.core import AdaptiveCard, CardElement, Choice, ChoiceSetInput

from bot.diagnosis import self_checks
from cards.common import ERROR, NAME, SUBJECT, card, clip, execute, heading, literal, plain, text, utc_time

__all__ = ["PickerItem", "build_checklist_card", "build_help_card", "build_picker_card", "build_welcome_card"]

EXAMPLES = (
    "Why isn't my appointment in Outlook?",
    "My contacts don't sync",
    "Check my mailbox",
    "Quarterly review isn't on my calendar",
)


def build_welcome_card(name: str | None = None) -> AdaptiveCard:
    first = clip(name, NAME).split(" ")[0] if name else ""
    greeting = f"Hi {first}, I'm Sync Doctor" if first else "Hi, I'm Sync Doctor"
    shown = f"Hi {literal(first, NAME)}, I'm Sync Doctor" if first else greeting
    body: list[CardElement] = [
        heading(shown),
        text(
            "When an appointment, contact or task from Dynamics 365 doesn't show up in Outlook, ask me. "
            "I check your mailbox and sync filters in Dynamics 365 and your Outlook calendar, "
            "and tell you what's wrong and how to fix it."
        ),
        text("Try: " + " · ".join(f"“{e}”" for e in EXAMPLES[:3]), subtle=True),
    ]
    actions = [execute("Check my mailbox", "check_mailbox", {"type": "appointment"}, style="positive")]
    return card(body, actions, fallback_text=greeting)


def build_help_card() -> AdaptiveCard:
    body: list[CardElement] = [
        heading("What I can do", size="Medium"),
        text(
            "- Find out why a Dynamics 365 **appointment**, **contact** or **task** isn't in Outlook\n"
            "- Check that your **mailbox** is set up for server-side synchronization\n"
            "- Show the steps from Microsoft's guidance for *your* cause"
        ),
        text("Ask in your own words, for example:\n" + "\n".join(f"- {e}" for e in EXAMPLES)),
    ]
    actions = [execute("Check my mailbox", "check_mailbox", {"type": "appointment"}, style="positive")]
    return card(body, actions, fallback_text="Ask me why an appointment, contact or task isn't in Outlook.")


@dataclass(frozen=True)
class PickerItem:
    """A record to pick. `when`: its start, as an ISO time ("2026-11-27T15:00:00Z") or already in words
    that say their time zone ("Fri 27 Nov 15:00 UTC")."""

    id: str
    title: str
    when: str | None


def build_picker_card(items: Sequence[PickerItem], *, record_type: str, user: str | None) -> AdaptiveCard:
    """Your mailbox is fine: which record is it? (recent ones the user owns or takes part in)."""
    if not items:
        body: list[CardElement] = [
            heading("Your mailbox is set up correctly", size="Medium"),
            text(
                f"I found no {record_type}s of yours from the last or next 14 days. "
                f"Tell me words from the {record_type}'s subject, for example “{EXAMPLES[3]}”."
            ),
        ]
        return card(body, fallback_text=f"Which {record_type}? Tell me words from its subject.")
    choices = [Choice(title=_choice(item), value=item.id) for item in items]
    body = [
        heading("Your mailbox is set up correctly", size="Medium"),
        ChoiceSetInput(
            id="record",
            label=f"Which {record_type} is missing from Outlook?",
            choices=choices,
            style="expanded",
            wrap=True,  # AC 1.5: a long subject wraps, so the date that tells two apart stays visible
            is_required=True,
            error_message=f"Pick the {record_type} to check",
        ),
    ]
    actions = [execute("Check this one", "pick", {"type": record_type, "user": user}, style="positive")]
    return card(body, actions, fallback_text=f"Which {record_type} is missing from Outlook?")


def _choice(item: PickerItem) -> str:
    # Teams shows a choice's title as plain text (its docs list markdown for TextBlock and Fact only; the
    # Agents Playground shows "\[x\]" with its backslashes): clipped, not escaped. Nor does it apply
    # {{DATE()}}/{{TIME()}} there (TextBlock only), so the start is spelled out in UTC.
    title = clip(item.title, SUBJECT)
    when = utc_time(item.when) or (clip(item.when, SUBJECT) if item.when else None)
    return f"{title} ({when})" if when else title


def build_checklist_card(*, record_type: str, reason: str, user: str | None) -> AdaptiveCard:
    """When Dynamics 365 can't be read in time: what the person can check themselves, and a retry."""
    steps = self_checks(record_type)
    body: list[CardElement] = [
        heading("I couldn't check Dynamics 365 just now", size="Medium"),
        plain(clip(reason, ERROR), subtle=True),
        text("Meanwhile, these are the usual causes you can check yourself:"),
        text("\n".join(f"{n}. {s}" for n, s in enumerate(steps, start=1))),
    ]
    actions = [
        execute("Try again", "recheck", {"type": record_type, "user": user, "record": None}, style="positive")
    ]
    return card(body, actions, fallback_text="I couldn't check Dynamics 365 just now. Try again in a minute.")
