"""Helpdesk cards: the escalation form, the ticket card in the helpdesk channel, ticket lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from microsoft_teams.cards.core import AdaptiveCard, CardElement, Fact, FactSet, TextBlock, TextInput

from bot.diagnosis import stored_findings
from bot.diagnosis.fixes import Fix
from cards.common import (
    ERROR,
    LINE,
    MAX_CARD_BYTES,
    NAME,
    NOTE,
    SUBJECT,
    card,
    card_size,
    clip,
    execute,
    heading,
    literal,
    local_time,
    plain,
    refresh,
    text,
    utc_time,
)

__all__ = [
    "AGENT_VERBS",
    "REFRESH_VERB",
    "FixLine",
    "TicketView",
    "agent_fixes",
    "build_escalate_card",
    "build_ticket_card",
    "build_ticket_list_card",
]

REFRESH_VERB = "ticket_view"  # the channel card's refresh: each agent's view, everyone else's read-only one
# An agent's Fix ("ticket_fix_offer") shows the confirmation card first; its Confirm is "ticket_fix_apply".
AGENT_VERBS = frozenset(
    {
        "ticket_assign",
        "ticket_resolve",
        "ticket_reopen",
        "ticket_rerun",
        "ticket_fix_offer",
        "ticket_fix_apply",
    }
)
FIX_HISTORY = 5  # the latest fixes a ticket card lists
# A short name for each agent fix, for its button in the overflow menu (the first one is "Fix").
_FIX_LABEL = {
    "schedule-mailbox-test": "Fix: Test & Enable",
    "set-act-server-side-sync": "Fix: server-side sync",
    "approve-email": "Fix: approve email",
}
_FIX_STATE = {
    "applying": "being made",
    "applied": "done",
    "refused": "refused by Dynamics 365",
    "failed": "failed: Dynamics 365 didn't answer",
    "undone": "undone",
}


class TicketView(Protocol):
    """What the ticket cards read of an escalation (the helpdesk's `Ticket` has it all).

    `report` is the diagnosis as kept with the ticket: a `Report.to_dict()` (with no `record` for a
    mailbox-level diagnosis), `{"findings": [], "error": ...}` when the diagnosis could not run, or
    `{"findings": [], "not_run": ...}` when none was run (why, in words).
    """

    # which ticket, and the version its buttons act on
    @property
    def number(self) -> int: ...
    @property
    def key(self) -> str: ...
    @property
    def version(self) -> int: ...

    # who asked, about what, and the diagnosis kept with it
    @property
    def user_aad(self) -> str: ...
    @property
    def user_name(self) -> str: ...
    @property
    def record_type(self) -> str: ...
    @property
    def record_id(self) -> str | None: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def report(self) -> Mapping[str, object]: ...
    @property
    def comment(self) -> str: ...

    # where it stands
    @property
    def status(self) -> Literal["open", "assigned", "resolved"]: ...
    @property
    def assignee(self) -> str | None: ...  # the assigned agent's Entra object id
    @property
    def assignee_name(self) -> str | None: ...
    @property
    def resolution(self) -> str | None: ...
    @property
    def changed_by(self) -> str | None: ...
    @property
    def changed_at(self) -> str: ...


class FixLine(Protocol):
    """A fix applied for the ticket's person, as the ticket card lists it (`bot.fixing.Applied` has it)."""

    @property
    def fix(self) -> Fix: ...
    @property
    def by(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def at(self) -> datetime: ...


@dataclass(frozen=True)
class _Room:
    """How much of its longest texts a ticket card shows: of the comment and the resolution (`note`), of
    each fix's title (`line`), and how many fixes it lists."""

    note: int
    line: int
    fixes: int


# Tried in turn until the card fits in one Teams message (`MAX_CARD_BYTES`).
_ROOMS = (_Room(NOTE, LINE, FIX_HISTORY), _Room(ERROR, NAME, 3), _Room(NAME, NAME // 2, 1))
_STATUS = {"open": "Open", "assigned": "Assigned", "resolved": "Resolved"}
_COLOR = {"open": "Attention", "assigned": "Accent", "resolved": "Good"}


def build_escalate_card(
    *, user: str, record: str | None, record_type: str, subject: str | None
) -> AdaptiveCard:
    """Ask for an optional comment before the ticket goes to the helpdesk."""
    # `subject` comes back in the diagnosis card's Action.Execute data: anyone could have written it.
    what = f"“{clip(subject, SUBJECT)}”" if subject else f"your {record_type} sync"
    body: list[CardElement] = [
        heading("Escalate to the helpdesk", size="Medium"),
        plain(f"I'll send the helpdesk my diagnosis of {what}, so you don't have to explain it again."),
        TextInput(id="comment", label="Anything to add? (optional)", is_multiline=True, max_length=1000),
    ]
    data = {"user": user, "record": record, "type": record_type}
    return card(
        body, [execute("Send to helpdesk", "escalate_send", data, style="positive")], fallback_text="Escalate"
    )


def _names_record(ticket: TicketView) -> bool:
    return bool(ticket.subject or ticket.record_id or isinstance(ticket.report.get("record"), Mapping))


def _record(ticket: TicketView) -> str:
    """Which record the ticket is about; with none named, say so (a mailbox check is no record's)."""
    record = literal(ticket.record_type, NAME)
    if ticket.subject:
        return f"{record}: {literal(ticket.subject, SUBJECT)}"
    return record if _names_record(ticket) else f"none named ({record} sync)"


def _causes(ticket: TicketView) -> str:
    """What the diagnosis found, never more than it says: with no diagnosis, or one that could not run, it
    says so; "no blocking cause" only of a record actually diagnosed (of the mailbox, only its level)."""
    report = ticket.report
    error, not_run = report.get("error"), report.get("not_run")
    if isinstance(error, str) and error:  # "diagnosis unavailable: Dataverse"
        return literal(error, LINE)
    if isinstance(not_run, str) and not_run:
        return literal(f"none: {not_run}", LINE)
    titles = [f.title for f in stored_findings(report) if f.status == "fail"]
    if titles:
        return literal("; ".join(titles), LINE)
    return "no blocking cause found" if _names_record(ticket) else "no mailbox-level cause found"


def _last_change(ticket: TicketView) -> TextBlock:
    """Who changed the ticket last and when, the time in the reader's own time zone (a TextBlock: Teams'
    DATE()/TIME() work nowhere else)."""
    who = literal(ticket.changed_by or ticket.user_name, NAME)
    when = local_time(ticket.changed_at) or literal(ticket.changed_at, NAME)
    return text(f"Last change: {who}, {when}", subtle=True)


def agent_fixes(ticket: TicketView) -> list[Fix]:
    """The fixes an agent may apply for the ticket's diagnosis (the person's own are theirs to make)."""
    found = stored_findings(ticket.report)
    return [fix for f in found if f.status == "fail" for fix in f.fixes if fix.who == "agent"]


def _fix_data(ticket: TicketView, fix: Fix) -> dict[str, Any]:
    """What an agent's Fix sends: whose, which record and fix (the changes are derived again on Confirm)."""
    return {
        "user": ticket.user_aad,
        "record": ticket.record_id,
        "type": ticket.record_type,
        "fix": fix.id,
        "ticket": ticket.number,
    }


def _who(ticket: TicketView, by: str) -> str:
    """Who made a fix (an Entra object id), by name where the ticket knows it: its person, its agent."""
    if by.lower() == ticket.user_aad.lower():
        return ticket.user_name or by
    if ticket.assignee and by.lower() == ticket.assignee.lower():
        return ticket.assignee_name or by
    return "a helpdesk agent"  # an agent who isn't the assignee: the ticket doesn't know their name


def _history(ticket: TicketView, fixes: Sequence[FixLine], room: _Room) -> TextBlock:
    """Who made which fix for the ticket's person, when, and how it went (times in each reader's zone)."""
    lines = []
    for line in fixes[: room.fixes]:
        when = local_time(line.at) or ""
        state = _FIX_STATE.get(line.state, literal(line.state, NAME))
        who = literal(_who(ticket, line.by), NAME)
        lines.append(f"- {who}, {when}: {literal(line.fix.title, room.line)} ({state})")
    more = len(fixes) - room.fixes
    if more > 0:
        lines.append(f"- … and {more} earlier")
    return text("**One-click fixes for this person**\n" + "\n".join(lines))


def build_ticket_card(
    ticket: TicketView,
    *,
    for_agents: bool = True,
    agents: Sequence[str] | None = None,
    notice: str | None = None,
    notice_color: str = "Warning",
    fixes: Sequence[FixLine] = (),
) -> AdaptiveCard:
    """The ticket as it is now: who, which record, the diagnosis, the comment, its state and last change.

    The one place that builds each view of a ticket:
    - `for_agents`: the agent view, with the resolution note and the agents' buttons (the helpdesk still
      checks, on every press, that the presser is an agent); else the read-only view, with neither.
    - `agents`: the card is the helpdesk channel's: it carries Universal Actions' `refresh`, so that Teams
      asks the bot for each agent's view (`agents`: their Teams user MRIs, at most 60) and the bot answers
      everyone else with the read-only view (`REFRESH_VERB`, "ticket_view"). The read-only view then also offers a
      "Refresh" in its overflow menu, for clients without user-specific views.
    - `fixes`: the fixes applied for the ticket's person (newest first): listed, with who, when and result.
    The agent view offers **Fix** for each agent fix of the diagnosis kept with the ticket (Confirm derives
    it again, so a stale card can't make a stale change).

    A card that would not fit in one Teams message (`MAX_CARD_BYTES`) shows less of the comment, the
    resolution and the fixes made (the ticket keeps them whole).
    """
    for room in _ROOMS:
        built = _ticket_card(ticket, for_agents, agents, notice, notice_color, fixes, room)
        if card_size(built) <= MAX_CARD_BYTES:
            break
    return built


def _ticket_card(
    ticket: TicketView,
    for_agents: bool,
    agents: Sequence[str] | None,
    notice: str | None,
    notice_color: str,
    fixes: Sequence[FixLine],
    room: _Room,
) -> AdaptiveCard:
    assignee = f" ({literal(ticket.assignee_name, NAME)})" if ticket.assignee_name else ""
    facts = [
        Fact(title="User", value=literal(ticket.user_name or ticket.user_aad, NAME)),
        Fact(title="Record", value=_record(ticket)),
        Fact(title="Diagnosis", value=_causes(ticket)),
        Fact(title="Status", value=_STATUS[ticket.status] + assignee),
    ]
    body: list[CardElement] = [
        heading(f"{ticket.key}: {_STATUS[ticket.status]}", size="Medium"),
        FactSet(facts=facts),
        _last_change(ticket),
    ]
    if notice:
        body.insert(1, plain(clip(notice, ERROR), color=notice_color))
    if ticket.comment:
        body.append(plain(f"“{clip(ticket.comment, room.note)}”", subtle=True))
    if ticket.resolution:
        body.append(plain(f"Resolution: {clip(ticket.resolution, room.note)}", color="Good"))
    if fixes:
        body.append(_history(ticket, fixes, room))
    changed = utc_time(ticket.changed_at)
    fallback = f"{ticket.key}: {_STATUS[ticket.status]}" + (f" (last change {changed})" if changed else "")
    view = None if agents is None else refresh("ticket_view", {"ticket": ticket.number}, list(agents))
    data = {"ticket": ticket.number, "version": ticket.version}
    actions = []
    if not for_agents:
        if view is not None:
            actions.append(execute("Refresh", "ticket_view", {"ticket": ticket.number}, secondary=True))
        return card(body, actions, fallback_text=fallback, refresh=view)
    if ticket.status == "resolved":
        actions.append(execute("Reopen", "ticket_reopen", data, tooltip="Reopen the ticket"))
    else:
        body.append(
            TextInput(id="note", label="Resolution note (for Resolve)", is_multiline=True, max_length=1000)
        )
        # A fix takes Re-run's place in the row; Re-run and further fixes go to the overflow menu. One
        # made already (its change, in effect) is not offered again: Re-run shows what still blocks.
        made = {(line.fix.id, line.fix.changes) for line in fixes if line.state == "applied"}
        fixable = [fix for fix in agent_fixes(ticket) if (fix.id, fix.changes) not in made]
        fix_buttons = [
            execute(
                _FIX_LABEL.get(fix.id, "Fix") if n else "Fix",
                "ticket_fix_offer",
                _fix_data(ticket, fix),
                tooltip=f"Fix: {clip(fix.title, room.line)}",
                secondary=n > 0,
            )
            for n, fix in enumerate(fixable)
        ]
        actions += [
            execute("Assign me", "ticket_assign", data, style="positive", tooltip="Assign me this ticket"),
            *fix_buttons[:1],
            execute("Resolve", "ticket_resolve", data, tooltip="Resolve, with the note"),
            execute("Re-run", "ticket_rerun", data, tooltip="Re-run the diagnosis", secondary=bool(fixable)),
            *fix_buttons[1:],
        ]
    return card(body, actions, fallback_text=fallback, refresh=view)


def _line(ticket: TicketView) -> str:
    what = literal(ticket.subject or ticket.record_type, SUBJECT)
    return f"{_STATUS[ticket.status]} · {literal(ticket.user_name, NAME)} · {what}"


def build_ticket_list_card(tickets: Sequence[TicketView], *, title: str) -> AdaptiveCard:
    if not tickets:
        return card([heading(title, size="Medium"), text("None.")], fallback_text=f"{title}: none")
    facts = [Fact(title=t.key, value=_line(t)) for t in tickets]
    return card([heading(title, size="Medium"), FactSet(facts=facts)], fallback_text=title)
