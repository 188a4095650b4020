"""The `Store` interface and the records it keeps. Implementations: SQLite (default), Azure Tables + Queues.

The store knows no ticket rules and no outbox kinds: a ticket is a numbered, versioned JSON document, an
outbox entry a kind name with a JSON payload, a setting a JSON value under a key. Their meaning is their
owners' (the helpdesk's tickets, the outbox's kinds, each package's typed settings).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

__all__ = [
    "FIRST_TICKET",
    "MAX_CLAIMS",
    "Conflict",
    "OutboxEntry",
    "Store",
    "StoredTicket",
    "lease_key",
]

FIRST_TICKET = 1001  # tickets read SD-1001, SD-1002, ...
# An entry claimed this often without an outcome keeps killing its worker (or outliving its lease):
# set it aside as dead instead of retrying it forever. Above the deliverer's own MAX_ATTEMPTS.
MAX_CLAIMS = 64


def lease_key(name: str) -> str:
    """The setting a named lease is kept under (the stores' own: nobody else reads it)."""
    return f"lease:{name}"


@dataclass(frozen=True)
class StoredTicket:
    """A ticket as the store keeps it: a JSON document numbered from FIRST_TICKET whose `version` grows
    with every write (an update names the version it started from).

    `user_aad` (lowercased by the store) and `status` are what tickets are listed by, kept beside the body.
    The body is the helpdesk's; the store writes only its own two facts into it, `number` and `version`,
    so that a body read alone is whole.
    """

    number: int
    version: int
    user_aad: str
    status: str
    body: dict[str, Any]

    def written(self, number: int, version: int) -> StoredTicket:
        """This ticket as stored under `number` at `version`."""
        return replace(
            self,
            number=number,
            version=version,
            user_aad=self.user_aad.lower(),
            body={**self.body, "number": number, "version": version},
        )


class Conflict(Exception):
    """Someone else changed the ticket first (optimistic concurrency): re-read and decide again."""

    def __init__(self, current: StoredTicket) -> None:
        self.current = current
        super().__init__(f"ticket {current.number} changed meanwhile (now version {current.version})")


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

    async def create_ticket(self, draft: StoredTicket) -> StoredTicket:
        """Store `draft` under the next number, at version 1 (its own number and version are ignored)."""
        ...

    async def get_ticket(self, number: int) -> StoredTicket | None: ...

    async def update_ticket(self, ticket: StoredTicket, *, expected_version: int) -> StoredTicket:
        """Write `ticket` if the stored version is still `expected_version`; the result is one version on.

        Raises:
            Conflict: with the current ticket, when someone else changed it first.
            KeyError: there is no ticket with that number.
        """
        ...

    async def list_tickets(
        self, *, user_aad: str | None = None, exclude_status: str | None = None, limit: int = 20
    ) -> list[StoredTicket]:
        """Newest first: all, or one user's (any case), leaving out those in `exclude_status`."""
        ...

    async def enqueue(self, dedupe_key: str, kind: str, payload: dict[str, Any]) -> bool: ...

    async def claim_due(self, *, limit: int, lease_seconds: float) -> list[OutboxEntry]: ...

    async def mark_sent(self, entry: OutboxEntry, result: dict[str, Any] | None = None) -> None: ...

    async def pending(self) -> tuple[int, float | None]: ...

    async def outbox_status(self) -> dict[str, int]: ...

    async def mark_retry(self, entry: OutboxEntry, *, delay: float, error: str) -> None: ...

    async def mark_dead(self, entry: OutboxEntry, *, error: str) -> None: ...

    async def close(self) -> None: ...
