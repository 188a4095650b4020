"""Tickets and what agents may do to them, and when. Pure: a ticket in, the changed ticket (or a refusal)
out. `Ticket.from_stored` and `to_stored` convert to and from the store's versioned documents."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from bot.store.base import StoredTicket

__all__ = ["CLOSED", "Ticket", "TicketStatus", "TransitionError", "assign", "reopen", "rerun", "resolve"]

TicketStatus = Literal["open", "assigned", "resolved"]
CLOSED: TicketStatus = "resolved"  # the one status that is not open


@dataclass(frozen=True)
class Ticket:
    """An escalation. `version` grows with every change; updates name the version they started from."""

    number: int
    tenant: str
    user_aad: str
    user_name: str
    record_type: str
    record_id: str | None
    subject: str | None
    report: dict[str, Any]
    comment: str
    status: TicketStatus = "open"
    assignee: str | None = None
    assignee_name: str | None = None
    resolution: str | None = None
    changed_by: str | None = None
    changed_at: str = ""
    created_at: str = ""
    version: int = 1

    @property
    def key(self) -> str:
        return f"SD-{self.number}"

    @classmethod
    def from_stored(cls, stored: StoredTicket) -> Ticket:
        """The ticket a stored document holds (its number and version are the store's)."""
        known = {f.name for f in fields(cls)}
        body = {name: value for name, value in stored.body.items() if name in known}
        return cls(**{**body, "number": stored.number, "version": stored.version})

    def to_stored(self) -> StoredTicket:
        """The document the store keeps: every field, as JSON, listed by user and status."""
        return StoredTicket(
            number=self.number,
            version=self.version,
            user_aad=self.user_aad,
            status=self.status,
            body=asdict(self),
        )


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
