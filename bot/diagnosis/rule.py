"""A documented rule: one finding id, its scope, its check and its guidance, declared once.

    @rule("mailbox-inactive", "mailbox", guidance.MAILBOX_INACTIVE)
    def mailbox_inactive(facts: Facts) -> Outcome | None: ...

The check reads `Facts` and returns an `Outcome` (status and evidence), or None when the rule does not
apply; the `Rule` turns it into a `Finding` with its id and guidance. The rules and their table, in fix
order, are in `bot.diagnosis.rules`; what they say, in `bot.diagnosis.guidance`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from bot.diagnosis.facts import Facts
from bot.diagnosis.guidance import Guidance
from bot.diagnosis.report import Evidence, Finding, Status

__all__ = ["SCOPES", "Check", "Outcome", "Rule", "Scope", "iso", "label", "rule"]

Scope = Literal["user", "mailbox", "record"]
SCOPES: tuple[Scope, ...] = ("user", "mailbox", "record")  # the order a person fixes things in


@dataclass(frozen=True)
class Outcome:
    """What a check concluded. `words` fill the guidance's own placeholders (e.g. `{state}`)."""

    status: Status
    evidence: Evidence = field(default_factory=dict)
    words: Mapping[str, str] = field(default_factory=dict)
    variant: str | None = None  # a more precise title the guidance has for this case


Check = Callable[[Facts], Outcome | None]


@dataclass(frozen=True)
class Rule:
    """One finding id, declared once. Calling it with facts gives the finding, or None.

    `only_without_causes`: the rule speaks only when no other rule failed (a pending sync is no
    explanation when a documented cause blocks sync anyway).
    """

    id: str
    scope: Scope
    check: Check
    guidance: Guidance
    only_without_causes: bool = False

    def __call__(self, facts: Facts) -> Finding | None:
        outcome = self.check(facts)
        if outcome is None:
            return None
        words = {"type": facts.record_type, "mailbox": mailbox_name(facts), **outcome.words}
        return self.guidance.finding(self.id, outcome.status, outcome.evidence, words, outcome.variant)


def rule(
    finding_id: str, scope: Scope, guidance: Guidance, *, only_without_causes: bool = False
) -> Callable[[Check], Rule]:
    """Declare the decorated check as the rule for `finding_id`."""

    def declare(check: Check) -> Rule:
        return Rule(finding_id, scope, check, guidance, only_without_causes)

    return declare


def mailbox_name(facts: Facts) -> str:
    """The mailbox as the steps name it."""
    if facts.mailbox is not None and facts.mailbox.email:
        return f"the mailbox {facts.mailbox.email}"
    if facts.user is not None and facts.user.name:
        return f"{facts.user.name}'s mailbox"
    return "your mailbox"


def label(table: Mapping[int, str], value: int | None) -> str | None:
    """A choice column's label for evidence (None stays None; an undocumented value says so)."""
    if value is None:
        return None
    return table.get(value, f"unknown value {value}")


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")
