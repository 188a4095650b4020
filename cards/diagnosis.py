"""The diagnosis card: a one-line verdict, what failed with its evidence and numbered steps, and buttons."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from microsoft_teams.cards.core import AdaptiveCard, CardElement, Container, Fact, FactSet, TextBlock

from bot.diagnosis import Finding, Report
from cards.common import (
    LINE,
    NAME,
    STEP,
    SUBJECT,
    card,
    clip,
    execute,
    heading,
    literal,
    local_time,
    plain,
    text,
)

__all__ = ["action_data", "build_diagnosis_card"]

_STYLE = {"fail": "attention", "warn": "warning"}
_COLOR = {"fail": "Attention", "warn": "Warning"}
_MARK = {"fail": "✖ Problem", "warn": "⚠ Worth a look", "pass": "✔ OK", "unknown": "? Could not check"}
_TYPE_LABEL = {"appointment": "Appointment", "contact": "Contact", "task": "Task"}


def action_data(report: Report, *, record_type: str, show_all: bool = False) -> dict[str, Any]:
    """What the card's buttons send back: enough to re-run the same diagnosis, and whose it is."""
    return {
        "user": report.user.aad_object_id,
        "record": report.record.id if report.record else None,
        "type": record_type,
        "show_all": show_all,
        # only shown on the escalate card; a 10 KB subject three times over would not fit in a message
        "subject": clip(report.record.subject, SUBJECT) if report.record and report.record.subject else None,
    }


def _title(report: Report, record_type: str) -> str:
    """The card's heading (markdown: the subject goes through `literal`)."""
    if report.record is not None:
        return f"Why “{literal(report.record.subject or 'this ' + record_type, SUBJECT)}” isn't in Outlook"
    return "Your mailbox check" if record_type == "appointment" else f"Your {record_type} sync check"


_VERDICT_COLOR = {"blocked": "Attention", "warned": "Warning", "in_exchange": "Good", "clear": "Good"}


def _verdict(report: Report) -> tuple[str, str]:
    """The verdict's line and its colour."""
    verdict = report.verdict()
    first = clip(verdict.findings[0].title, LINE) if verdict.findings else ""
    more = len(verdict.findings) - 1
    line = {
        "blocked": f"Found it: {first}" + (f" (and {more} more)" if more > 0 else "") + ".",
        "warned": f"Nothing blocks sync, but: {first}.",
        "in_exchange": "Everything checks out, and it is in your Outlook calendar.",
        "clear": "Everything I can check is fine.",
    }[verdict.kind]
    return line, _VERDICT_COLOR[verdict.kind]


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _value(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(str(v).replace("_", " ") for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{_label(str(k))}: {v}" for k, v in value.items()) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "none" if value is None else str(value)


def _finding_block(finding: Finding) -> Container:
    # Titles, evidence and steps are shown as written: evidence holds Dynamics 365's words (filter names,
    # error messages), steps name the mailbox; the steps are plain text (the CLI prints them too).
    items: list[CardElement] = [
        plain(clip(finding.title, LINE), weight="Bolder", color=_COLOR.get(finding.status))
    ]
    # A time in the evidence goes in a TextBlock of its own, in the reader's time zone (Teams' DATE() and
    # TIME() work in a TextBlock only, not in a Fact).
    times = {k: local_time(v) for k, v in finding.evidence.items() if isinstance(v, str) and local_time(v)}
    facts = [
        Fact(title=literal(_label(k), NAME), value=literal(_value(v), LINE))
        for k, v in finding.evidence.items()
        if k not in times
    ]
    if facts:
        items.append(FactSet(facts=facts))
    if times:
        items.append(text("  \n".join(f"{literal(_label(k), NAME)}: {t}" for k, t in times.items())))
    if finding.steps:
        steps = (literal(step, STEP) for step in finding.steps)
        items.append(text("\n".join(f"{n}. {step}" for n, step in enumerate(steps, start=1))))
    items.append(text(f"[Microsoft's guidance]({finding.source})", subtle=True))
    return Container(items=items, style=_STYLE.get(finding.status), bleed=False)  # type: ignore[arg-type]


def _facts(report: Report) -> FactSet:
    facts: list[Fact] = []
    user = report.user
    if user.name or user.email:
        facts.append(Fact(title="User", value=literal(user.name or user.email or "", NAME)))
    if report.record is not None:
        subject = literal(report.record.subject, SUBJECT) if report.record.subject else "(no subject)"
        facts.append(Fact(title=_TYPE_LABEL[report.record.type], value=subject))
        in_exchange = {True: "yes", False: "no", None: "could not check"}[report.in_exchange]
        facts.append(Fact(title="In Outlook", value=in_exchange))
    return FactSet(facts=facts)


def _times(report: Report, checked_at: datetime) -> TextBlock:
    """When the record starts and when this check ran, each in the reader's own time zone (Teams'
    DATE()/TIME() work in a TextBlock only, not in a Fact)."""
    lines = []
    start = report.record.start if report.record is not None else None
    if start:
        lines.append(f"Starts {local_time(start) or literal(start, NAME)}")
    lines.append(f"Checked {local_time(checked_at)}")
    return text("  \n".join(lines), subtle=True)


def build_diagnosis_card(
    report: Report, *, record_type: str, checked_at: datetime, show_all: bool = False
) -> AdaptiveCard:
    """The card for one report. Re-check and Show all checks answer with a new card in place."""
    verdict, color = _verdict(report)
    body: list[CardElement] = [
        heading(_title(report, record_type)),
        plain(verdict, color=color),
        _facts(report),
        _times(report, checked_at),
    ]
    body.extend(_finding_block(f) for f in report.with_status("fail", "warn"))
    unknown = report.with_status("unknown")
    if unknown:
        titles = "; ".join(clip(f.title, LINE) for f in unknown)
        body.append(plain(f"Some checks couldn't run: {titles}.", subtle=True))
    if show_all:
        body.append(heading("Every check", size="Medium"))
        body.append(
            FactSet(
                facts=[Fact(title=_MARK[f.status], value=literal(f.title, LINE)) for f in report.findings]
            )
        )
    data = action_data(report, record_type=record_type, show_all=show_all)
    actions = [
        execute("Re-check", "recheck", data, style="positive", tooltip="Re-check: run every check again"),
        execute("Escalate", "escalate", data, tooltip="Escalate to the helpdesk"),
        execute(
            "Show less" if show_all else "All checks",
            "details",
            {**data, "show_all": not show_all},
            tooltip="Show less: hide the checks that passed" if show_all else "All checks, passed ones too",
        ),
    ]
    return card(body, actions, fallback_text=verdict)
