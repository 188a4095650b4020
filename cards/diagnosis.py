"""The diagnosis card: a one-line verdict, what failed with its evidence and numbered steps, and buttons."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from microsoft_teams.cards.core import (
    AdaptiveCard,
    CardElement,
    Container,
    ExecuteAction,
    Fact,
    FactSet,
    TextBlock,
)

from bot.diagnosis import Finding, Report
from bot.diagnosis.fixes import Fix
from cards.common import (
    ERROR,
    LINE,
    MAX_CARD_BYTES,
    NAME,
    STEP,
    SUBJECT,
    card,
    card_size,
    clip,
    execute,
    heading,
    literal,
    local_time,
    plain,
    text,
)
from cards.fix import person_title

__all__ = ["action_data", "build_diagnosis_card", "fix_data"]

_STYLE = {"fail": "attention", "warn": "warning"}
_COLOR = {"fail": "Attention", "warn": "Warning"}
_MARK = {"fail": "✖ Problem", "warn": "⚠ Worth a look", "pass": "✔ OK", "unknown": "? Could not check"}
_TYPE_LABEL = {"appointment": "Appointment", "contact": "Contact", "task": "Task"}
BRIEF = (  # when a card leaves details out to fit (`MAX_CARD_BYTES`)
    "To fit in one Teams message, the last problems show without their evidence and steps: fix the first "
    "ones and Re-check, or Escalate (the helpdesk gets them all)."
)


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


def fix_data(report: Report, fix: Fix, *, record_type: str) -> dict[str, Any]:
    """What "Fix it for me" sends: only whose fix, the record, its type and the fix id. Confirm derives
    the changes again from a fresh diagnosis: card data (anyone can write it) never says what to write."""
    record = report.record.id if report.record else None
    return {"user": report.user.aad_object_id, "record": record, "type": record_type, "fix": fix.id}


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


def _finding_block(finding: Finding, offered: Fix | None = None, *, brief: bool = False) -> Container:
    """One problem: its title, evidence and steps, the fix offered for it, and the source. `brief`: the
    title, the fix and the source only (a card that would not fit in a Teams message otherwise)."""
    # Titles, evidence and steps are shown as written: evidence holds Dynamics 365's words (filter names,
    # error messages), steps name the mailbox; the steps are plain text (the CLI prints them too).
    items: list[CardElement] = [
        plain(clip(finding.title, LINE), weight="Bolder", color=_COLOR.get(finding.status))
    ]
    if not brief:
        items += _details(finding)
    if offered is not None and offered.finding == finding.id:
        hint = f"I can do it for you: **Fix it for me** ({literal(person_title(offered), LINE)})."
        items.append(text(hint))  # the container's own colour: readable on its "attention" style
    items.append(text(f"[Microsoft's guidance]({finding.source})", subtle=True))
    return Container(items=items, style=_STYLE.get(finding.status), bleed=False)  # type: ignore[arg-type]


def _details(finding: Finding) -> list[CardElement]:
    """A problem's evidence and numbered steps."""
    items: list[CardElement] = []
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
    return items


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
    report: Report,
    *,
    record_type: str,
    checked_at: datetime,
    show_all: bool = False,
    offer: Fix | None = None,
    notice: str | None = None,
) -> AdaptiveCard:
    """The card for one report. Re-check and Show all checks answer with a new card in place.

    Args:
        offer: the fix "Fix it for me" offers, one of the report's (who may make it is the caller's to
            decide: `bot.teams.diagnoses.offered_fix`); None offers none.
        notice: a line above the verdict (e.g. why a fix was not made).
    """
    verdict, color = _verdict(report)
    head: list[CardElement] = [
        heading(_title(report, record_type)),
        plain(verdict, color=color),
        _facts(report),
        _times(report, checked_at),
    ]
    if notice:
        head.insert(1, plain(clip(notice, ERROR), color="Warning"))
    problems = report.with_status("fail", "warn")
    tail: list[CardElement] = []
    unknown = report.with_status("unknown")
    if unknown:
        titles = "; ".join(clip(f.title, LINE) for f in unknown)
        tail.append(plain(f"Some checks couldn't run: {titles}.", subtle=True))
    if show_all:
        tail.append(heading("Every check", size="Medium"))
        tail.append(
            FactSet(
                facts=[Fact(title=_MARK[f.status], value=literal(f.title, LINE)) for f in report.findings]
            )
        )
    actions = _actions(report, record_type, show_all, offer)
    # Past what one Teams message takes, the last problems lose their evidence and steps (their titles,
    # the fix and the source stay), one at a time, until the card fits.
    for detailed in range(len(problems), -1, -1):
        blocks = [_finding_block(f, offer, brief=n >= detailed) for n, f in enumerate(problems)]
        left_out = [plain(BRIEF, subtle=True)] if detailed < len(problems) else []
        built = card([*head, *blocks, *left_out, *tail], actions, fallback_text=verdict)
        if card_size(built) <= MAX_CARD_BYTES:
            break
    return built


def _actions(report: Report, record_type: str, show_all: bool, offer: Fix | None) -> list[ExecuteAction]:
    """Fix it for me (when offered), Escalate, Re-check and All checks / Show less."""
    data = action_data(report, record_type=record_type, show_all=show_all)
    # With a fix to offer, it leads and Escalate stays beside it; the rest go to the overflow menu (two
    # visible buttons keep "Fix it for me" whole on Teams mobile).
    fixing = offer is not None
    recheck = execute(
        "Re-check",
        "recheck",
        data,
        style=None if fixing else "positive",
        tooltip="Re-check: run every check again",
        secondary=fixing,
    )
    details = execute(
        "Show less" if show_all else "All checks",
        "details",
        {**data, "show_all": not show_all},
        tooltip="Show less: hide the checks that passed" if show_all else "All checks, passed ones too",
        secondary=fixing,
    )
    escalate = execute("Escalate", "escalate", data, tooltip="Escalate to the helpdesk")
    if offer is None:
        return [recheck, escalate, details]
    fix = execute(
        "Fix it for me",
        "fix_offer",
        fix_data(report, offer, record_type=record_type),
        style="positive",
        tooltip=f"Fix it for me: {clip(person_title(offer), LINE)}",
    )
    return [fix, escalate, recheck, details]
