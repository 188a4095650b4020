"""The helpdesk's tickets in the store: `Ticket`s in and out of its versioned documents, stamped with when
they were made and changed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from bot.helpdesk.tickets import CLOSED, Ticket
from bot.store.base import Conflict, Store

__all__ = ["TicketBook", "TicketChanged", "now"]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TicketChanged(Exception):
    """Someone else changed the ticket first: `current` is it as it is now."""

    def __init__(self, current: Ticket) -> None:
        self.current = current
        super().__init__(f"{current.key} changed meanwhile (now version {current.version})")


class TicketBook:
    """Reads and writes tickets; numbers come from the store (SD-1001 on)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def open(self, draft: Ticket) -> Ticket:
        """Store `draft` as a new ticket, version 1; returns it with its number."""
        stamp = now()
        stored = await self.store.create_ticket(
            replace(draft, created_at=stamp, changed_at=stamp, version=1).to_stored()
        )
        return Ticket.from_stored(stored)

    async def get(self, number: int) -> Ticket | None:
        stored = await self.store.get_ticket(number)
        return None if stored is None else Ticket.from_stored(stored)

    async def save(self, changed: Ticket, *, expected_version: int) -> Ticket:
        """Write `changed` if nobody changed the ticket since `expected_version`.

        Raises:
            TicketChanged: someone did; with the ticket as it is now.
            KeyError: there is no such ticket.
        """
        try:
            stored = await self.store.update_ticket(
                replace(changed, changed_at=now()).to_stored(), expected_version=expected_version
            )
        except Conflict as conflict:
            raise TicketChanged(Ticket.from_stored(conflict.current)) from None
        return Ticket.from_stored(stored)

    async def find(
        self, *, user_aad: str | None = None, open_only: bool = False, limit: int = 20
    ) -> list[Ticket]:
        """Newest first: everyone's or one person's, all or only those not resolved."""
        found = await self.store.list_tickets(
            user_aad=user_aad, exclude_status=CLOSED if open_only else None, limit=limit
        )
        return [Ticket.from_stored(stored) for stored in found]
