"""Helpdesk cards: the escalation form, the ticket card in the helpdesk channel, ticket lists."""

from __future__ import annotations

from collections.abc import Sequence

from microsoft_teams.cards.core import AdaptiveCard, CardElement, Fact, FactSet, TextInput

from bot.store.base import Ticket
from cards.common import ERROR, LINE, NAME, NOTE, SUBJECT, card, clip, execute, heading, literal, plain, text

__all__ = ["build_escalate_card", "build_ticket_card", "build_ticket_list_card"]

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


def _causes(ticket: Ticket) -> str:
    findings = ticket.report.get("findings") if isinstance(ticket.report, dict) else None
    titles = [
        f.get("title", f.get("id"))
        for f in findings or []
        if isinstance(f, dict) and f.get("status") == "fail"
    ]
    return literal("; ".join(str(t) for t in titles), LINE) or "no blocking cause found"


def build_ticket_card(
    ticket: Ticket, *, for_agents: bool = True, notice: str | None = None, notice_color: str = "Warning"
) -> AdaptiveCard:
    """The ticket as it is now: who, which record, the diagnosis, the comment, its state and last change."""
    record = literal(ticket.record_type, NAME)
    assignee = f" ({literal(ticket.assignee_name, NAME)})" if ticket.assignee_name else ""
    who = literal(ticket.changed_by or ticket.user_name, NAME)
    when = literal(ticket.changed_at.replace("T", " "), NAME)
    facts = [
        Fact(title="User", value=literal(ticket.user_name or ticket.user_aad, NAME)),
        Fact(
            title="Record",
            value=f"{record}: {literal(ticket.subject, SUBJECT)}" if ticket.subject else record,
        ),
        Fact(title="Diagnosis", value=_causes(ticket)),
        Fact(title="Status", value=_STATUS[ticket.status] + assignee),
        Fact(title="Last change", value=f"{who}, {when}"),
    ]
    body: list[CardElement] = [
        heading(f"{ticket.key}: {_STATUS[ticket.status]}", size="Medium"),
        FactSet(facts=facts),
    ]
    if notice:
        body.insert(1, plain(clip(notice, ERROR), color=notice_color))
    if ticket.comment:
        body.append(plain(f"“{clip(ticket.comment, NOTE)}”", subtle=True))
    if ticket.resolution:
        body.append(plain(f"Resolution: {clip(ticket.resolution, NOTE)}", color="Good"))
    if not for_agents:
        return card(body, fallback_text=f"{ticket.key}: {_STATUS[ticket.status]}")
    data = {"ticket": ticket.number, "version": ticket.version}
    actions = []
    if ticket.status == "resolved":
        actions.append(execute("Reopen", "ticket_reopen", data))
    else:
        body.append(
            TextInput(id="note", label="Resolution note (for Resolve)", is_multiline=True, max_length=1000)
        )
        actions += [
            execute("Assign to me", "ticket_assign", data, style="positive"),
            execute("Re-run diagnosis", "ticket_rerun", data),
            execute("Resolve", "ticket_resolve", data),
        ]
    return card(body, actions, fallback_text=f"{ticket.key}: {_STATUS[ticket.status]}")


def _line(ticket: Ticket) -> str:
    what = literal(ticket.subject or ticket.record_type, SUBJECT)
    return f"{_STATUS[ticket.status]} · {literal(ticket.user_name, NAME)} · {what}"


def build_ticket_list_card(tickets: Sequence[Ticket], *, title: str) -> AdaptiveCard:
    if not tickets:
        return card([heading(title, size="Medium"), text("None.")], fallback_text=f"{title}: none")
    facts = [Fact(title=t.key, value=_line(t)) for t in tickets]
    return card([heading(title, size="Medium"), FactSet(facts=facts)], fallback_text=title)
