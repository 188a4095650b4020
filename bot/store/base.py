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
    "OutboxPage",
    "OutboxQuery",
    "OutboxRecord",
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


@dataclass(frozen=True)
class OutboxRecord:
    """An outbox entry as a report reads it (not a claim: nothing here can mark it).

    `status` is "pending", "sent", "dead", or "expired": sent, and older than the retention period, so its
    payload and result are gone while its dedupe key (and the rest of this record) stays, keeping "once".
    Times are epoch seconds; `queued` or `done` is None for an entry an older version wrote without it.
    """

    dedupe_key: str
    kind: str
    status: str
    payload: dict[str, Any]
    queued: float | None
    done: float | None  # when it was sent or given up
    due: (
        float | None
    )  # pending: when it is tried next (SQLite: or its claim ends; Azure: claims write nothing)
    attempts: int
    last_error: str | None
    group: str | None  # what `enqueue` tagged it with (a sweep's id)


@dataclass(frozen=True)
class OutboxQuery:
    """Which entries `outbox_page` lists: all of them, or those matching every field given.

    since: queued at or after (epoch seconds). group: tagged so by `enqueue`. status: in this status.
    done_since: sent or given up at or after (entries an older version finished without a time: never).
    """

    since: float | None = None
    group: str | None = None
    status: str | None = None
    done_since: float | None = None

    def conditions(self) -> list[tuple[str, Literal["eq", "ge"], str | float]]:
        """(column, comparison, value) for each field given: both stores keep the same column names."""
        given: tuple[tuple[str, Literal["eq", "ge"], str | float | None], ...] = (
            ("queued", "ge", self.since),
            ("grp", "eq", self.group),
            ("status", "eq", self.status),
            ("done", "ge", self.done_since),
        )
        return [(column, op, value) for column, op, value in given if value is not None]


@dataclass(frozen=True)
class OutboxPage:
    """One page of `outbox_page`; `cursor` asks for the next one (None: this was the last)."""

    records: list[OutboxRecord]
    cursor: str | None


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

    async def add_setting(self, key: str, value: dict[str, Any]) -> bool:
        """Store `value` under `key` unless the key is taken; False when it was (insert-if-absent, atomic:
        of several processes adding one key at once, exactly one gets True)."""
        ...

    async def list_settings(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        """Every setting whose key is `prefix:...`, as (key, value), in key order."""
        ...

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

    async def enqueue(
        self,
        dedupe_key: str,
        kind: str,
        payload: dict[str, Any],
        *,
        group: str | None = None,
        delay: float = 0,
    ) -> bool:
        """Add a message to deliver, tagged with `group` (listed by it), due `delay` seconds from now;
        False when one with this key exists already, in any status, expired included (insert-if-absent:
        the key is the "once")."""
        ...

    async def claim_due(self, *, limit: int, lease_seconds: float) -> list[OutboxEntry]: ...

    async def mark_sent(self, entry: OutboxEntry, result: dict[str, Any] | None = None) -> None: ...

    async def pending(self) -> tuple[int, float | None]:
        """(entries still to deliver, seconds until the next one is due; 0 when due now). An entry being
        delivered may be due again when its claim's lease ends: within the lease, sooner on Azure, whose
        claims record nothing (it says a second)."""
        ...

    async def outbox_status(self) -> dict[str, int]: ...

    async def mark_retry(self, entry: OutboxEntry, *, delay: float, error: str) -> None: ...

    async def mark_dead(self, entry: OutboxEntry, *, error: str) -> None: ...

    async def outbox_page(
        self, query: OutboxQuery, *, cursor: str | None = None, limit: int = 500
    ) -> OutboxPage:
        """Up to `limit` entries matching `query`, from `cursor` on. SQLite lists them in the order they
        were queued; Azure Storage in its key order (no index by time: sort by `queued` if needed)."""
        ...

    async def outbox_record(self, dedupe_key: str) -> OutboxRecord | None: ...

    async def expire_sent(self, *, before: float, limit: int) -> int:
        """Drop the payload and result of up to `limit` entries sent before `before` (epoch seconds),
        keeping each one's key, kind and times as status "expired"; returns how many."""
        ...

    async def close(self) -> None: ...
