"""What agents may do to a ticket, and when. Pure: a ticket in, the changed ticket (or a refusal) out."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.store.base import Ticket, TicketStatus

__all__ = ["TransitionError", "assign", "reopen", "rerun", "resolve"]


class TransitionError(Exception):
    """The change doesn't apply to the ticket as it is now; the message says why, for the agent."""


def assign(ticket: Ticket, agent: str, agent_name: str) -> Ticket:
    if ticket.status == "resolved":
        raise TransitionError(f"{ticket.key} is resolved; reopen it first.")
    if ticket.assignee == agent:
        raise TransitionError(f"{ticket.key} is already assigned to you.")
    return replace(ticket, status="assigned", assignee=agent, assignee_name=agent_name, changed_by=agent_name)


def resolve(ticket: Ticket, agent_name: str, note: str) -> Ticket:
    if ticket.status == "resolved":
        raise TransitionError(f"{ticket.key} is already resolved.")
    return replace(ticket, status="resolved", resolution=note.strip()[:1000] or None, changed_by=agent_name)


def reopen(ticket: Ticket, agent_name: str) -> Ticket:
    if ticket.status != "resolved":
        raise TransitionError(f"{ticket.key} is not resolved.")
    status: TicketStatus = "assigned" if ticket.assignee else "open"
    return replace(ticket, status=status, resolution=None, changed_by=agent_name)


def rerun(ticket: Ticket, agent_name: str, report: dict[str, Any]) -> Ticket:
    return replace(ticket, report=report, changed_by=agent_name)
