"""The `Store` interface and the records it keeps. Implementations: SQLite (default), Azure Tables + Queues."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = ["FIRST_TICKET", "MAX_CLAIMS", "Conflict", "OutboxEntry", "Store", "Ticket", "TicketStatus"]

FIRST_TICKET = 1001  # tickets read SD-1001, SD-1002, ...
# An entry claimed this often without an outcome keeps killing its worker (or outliving its lease):
# set it aside as dead instead of retrying it forever. Above the deliverer's own MAX_ATTEMPTS.
MAX_CLAIMS = 64

TicketStatus = Literal["open", "assigned", "resolved"]


class Conflict(Exception):
    """Someone else changed the ticket first (optimistic concurrency): re-read and decide again."""

    def __init__(self, current: Ticket) -> None:
        self.current = current
        super().__init__(f"{current.key} changed meanwhile (now version {current.version})")


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


@dataclass(frozen=True)
class OutboxEntry:
    """A message to deliver: `kind` says what, `payload` carries it. Delivered at most once when sent.

    `handle` is the store's own proof of the claim (a queue message's pop receipt): pass the entry back to
    `mark_*` unchanged."""

    id: str
    dedupe_key: str
    kind: str
    payload: dict[str, Any]
    attempts: int = 0
    status: Literal["pending", "sent", "dead"] = "pending"
    last_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    handle: Any = field(default=None, compare=False, repr=False)


class Store(Protocol):
    async def save_reference(self, tenant: str, user_aad: str, reference: dict[str, Any]) -> None: ...

    async def get_reference(self, tenant: str, user_aad: str) -> dict[str, Any] | None: ...

    async def delete_reference(self, tenant: str, user_aad: str) -> None: ...

    async def find_reference(self, user_aad: str) -> tuple[str, dict[str, Any]] | None: ...

    async def acquire_lease(self, name: str, owner: str, seconds: float) -> bool: ...

    async def release_lease(self, name: str, owner: str) -> None: ...

    async def delete_setting(self, key: str) -> None: ...

    async def set_setting(self, key: str, value: dict[str, Any]) -> None: ...

    async def get_setting(self, key: str) -> dict[str, Any] | None: ...

    async def create_ticket(self, draft: Ticket) -> Ticket: ...

    async def get_ticket(self, number: int) -> Ticket | None: ...

    async def update_ticket(self, ticket: Ticket, *, expected_version: int) -> Ticket: ...

    async def list_tickets(
        self, *, user_aad: str | None = None, open_only: bool = False, limit: int = 20
    ) -> list[Ticket]: ...

    async def enqueue(self, dedupe_key: str, kind: str, payload: dict[str, Any]) -> bool: ...

    async def claim_due(self, *, limit: int, lease_seconds: float) -> list[OutboxEntry]: ...

    async def mark_sent(self, entry: OutboxEntry, result: dict[str, Any] | None = None) -> None: ...

    async def pending(self) -> tuple[int, float | None]: ...

    async def outbox_status(self) -> dict[str, int]: ...

    async def mark_retry(self, entry: OutboxEntry, *, delay: float, error: str) -> None: ...

    async def mark_dead(self, entry: OutboxEntry, *, error: str) -> None: ...

    async def close(self) -> None: ...
