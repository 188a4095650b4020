"""Helpdesk cards: the escalation form, the ticket card in the helpdesk channel, ticket lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

from microsoft_teams.cards.core import AdaptiveCard, CardElement, Fact, FactSet, TextBlock, TextInput

from bot.diagnosis import stored_findings
from cards.common import (
    ERROR,
    LINE,
    NAME,
    NOTE,
    SUBJECT,
    card,
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
    "TicketView",
    "build_escalate_card",
    "build_ticket_card",
    "build_ticket_list_card",
]

REFRESH_VERB = "ticket_view"  # the channel card's refresh: each agent's view, everyone else's read-only one
AGENT_VERBS = frozenset({"ticket_assign", "ticket_resolve", "ticket_reopen", "ticket_rerun"})


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
    def assignee_name(self) -> str | None: ...
    @property
    def resolution(self) -> str | None: ...
    @property
    def changed_by(self) -> str | None: ...
    @property
    def changed_at(self) -> str: ...


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


def build_ticket_card(
    ticket: TicketView,
    *,
    for_agents: bool = True,
    agents: Sequence[str] | None = None,
    notice: str | None = None,
    notice_color: str = "Warning",
) -> AdaptiveCard:
    """The ticket as it is now: who, which record, the diagnosis, the comment, its state and last change.

    The one place that builds each view of a ticket:
    - `for_agents`: the agent view, with the resolution note and the agents' buttons (the helpdesk still
      checks, on every press, that the presser is an agent); else the read-only view, with neither.
    - `agents`: the card is the helpdesk channel's: it carries Universal Actions' `refresh`, so that Teams
      asks the bot for each agent's view (`agents`: their Teams user MRIs, at most 60) and the bot answers
      everyone else with the read-only view (`REFRESH_VERB`, "ticket_view"). The read-only view then also offers a
      "Refresh" in its overflow menu, for clients without user-specific views.
    """
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
        body.append(plain(f"“{clip(ticket.comment, NOTE)}”", subtle=True))
    if ticket.resolution:
        body.append(plain(f"Resolution: {clip(ticket.resolution, NOTE)}", color="Good"))
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
        actions += [
            execute("Assign me", "ticket_assign", data, style="positive", tooltip="Assign me this ticket"),
            execute("Resolve", "ticket_resolve", data, tooltip="Resolve, with the note"),
            execute("Re-run", "ticket_rerun", data, tooltip="Re-run the diagnosis"),
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
