"""`Store` on Azure Table Storage + Azure Queue Storage, for several bot instances and delivery workers.

Same behaviour as SQLite, with the service's own tools for sharing: ETags for ticket updates and leases,
insert-if-absent entities for dedupe keys, and a queue whose visibility timeout is the delivery lease.

The outbox is a table of entries (the truth: status, payload, attempts) and a queue of messages naming
them (the work). `enqueue` sends the message first and then inserts the entry carrying the message's
id, so a crash between the two leaves a stray message (dropped when claimed) rather than an entry
nobody will deliver; a second enqueue of the same key loses the insert and withdraws its message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import random
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from bot.store.base import FIRST_TICKET, MAX_CLAIMS, Conflict, OutboxEntry, Ticket

__all__ = ["AzureStore"]

_CHUNK = 30_000  # a string property holds 64 KiB of UTF-16: 32K characters; JSON here is ASCII
_TICKET_ROWS = 10**12  # row keys count down so that a table scan lists the newest ticket first
_MAX_VISIBILITY = 7 * 24 * 3600 - 1  # the queue's limit for a message's visibility timeout
_ORPHAN_CHECKS = 5  # a message without its entry is re-checked this often before it is dropped


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(text: str) -> str:
    """A PartitionKey/RowKey for any text: '/', '\\', '#', '?' and control characters are not allowed."""
    return quote(text, safe="")


def _pack(name: str, text: str) -> dict[str, str]:
    """`text` as properties name, name_1, name_2, ...: one property holds at most 32K characters."""
    chunks = [text[i : i + _CHUNK] for i in range(0, len(text), _CHUNK)] or [""]
    return {name if i == 0 else f"{name}_{i}": chunk for i, chunk in enumerate(chunks)}


def _unpack(name: str, entity: dict[str, Any]) -> str:
    parts, i = [entity.get(name, "")], 1
    while f"{name}_{i}" in entity:
        parts.append(entity[f"{name}_{i}"])
        i += 1
    return "".join(parts)


def _ticket_row(number: int) -> str:
    return f"{_TICKET_ROWS - number:012d}"


def _ticket(entity: dict[str, Any]) -> Ticket:
    return Ticket(**json.loads(_unpack("body", entity)))


def _etag(entity: TableEntity) -> str:
    return str(entity.metadata["etag"])


async def _gone_ok(work: Any) -> bool:
    """Run a queue call whose target may be gone already (deleted, or re-claimed with a new receipt);
    False when it was."""
    try:
        await work
    except ResourceNotFoundError:
        return False
    except HttpResponseError as exc:
        if exc.status_code not in (400, 404):  # 400: PopReceiptMismatch, someone else holds it now
            raise
        return False
    return True


class AzureStore:
    """`Store` on one Storage account. `prefix` names its tables and queues, so several bots can share one."""

    def __init__(self, connection_string: str, *, prefix: str = "syncdoctor") -> None:
        if not prefix.isalnum() or not prefix[:1].isalpha() or not prefix.islower():
            raise ValueError("prefix: lowercase letters and digits, starting with a letter")
        self._connection = connection_string
        self._prefix = prefix
        self._ready: asyncio.Task[None] | None = None
        self._tables: TableServiceClient | None = None
        self._queues: QueueServiceClient | None = None

    # --- plumbing ------------------------------------------------------------------------------------

    async def _open(self) -> None:
        if self._tables is None or self._queues is None:
            self._tables = TableServiceClient.from_connection_string(self._connection)
            self._queues = QueueServiceClient.from_connection_string(self._connection)
        for name in ("refs", "settings", "tickets", "outbox"):
            await self._tables.create_table_if_not_exists(self._prefix + name)
        for queue in (self._outbox_queue(), self._poison_queue()):
            with contextlib.suppress(ResourceExistsError):
                await queue.create_queue()

    async def _start(self) -> None:
        # Clients are made inside the running loop (their HTTP sessions belong to it), once per store;
        # when creating the tables failed (storage unreachable at start), the next call tries again.
        ready = self._ready
        if ready is None or (ready.done() and (ready.cancelled() or ready.exception() is not None)):
            self._ready = ready = asyncio.ensure_future(self._open())
        await asyncio.shield(ready)

    def _table(self, name: str) -> TableClient:
        assert self._tables is not None
        return self._tables.get_table_client(self._prefix + name)

    def _outbox_queue(self) -> QueueClient:
        assert self._queues is not None
        return self._queues.get_queue_client(f"{self._prefix}-outbox")

    def _poison_queue(self) -> QueueClient:
        assert self._queues is not None
        return self._queues.get_queue_client(f"{self._prefix}-outbox-poison")

    async def _get(self, table: str, partition: str, row: str) -> TableEntity | None:
        try:
            return await self._table(table).get_entity(partition_key=partition, row_key=row)
        except ResourceNotFoundError:
            return None

    async def close(self) -> None:
        if self._ready is not None:
            await asyncio.gather(self._ready, return_exceptions=True)
        for client in (self._tables, self._queues):
            if client is not None:
                await client.close()

    # --- conversation references: partition per user, a row per tenant -----------------------------

    async def save_reference(self, tenant: str, user_aad: str, reference: dict[str, Any]) -> None:
        await self._start()
        await self._table("refs").upsert_entity(
            {
                "PartitionKey": _key(user_aad.lower()),
                "RowKey": _key(tenant.lower()),
                "tenant": tenant.lower(),
                "updated": time.time(),
                **_pack("reference", json.dumps(reference)),
            },
            mode=UpdateMode.REPLACE,
        )

    async def get_reference(self, tenant: str, user_aad: str) -> dict[str, Any] | None:
        await self._start()
        entity = await self._get("refs", _key(user_aad.lower()), _key(tenant.lower()))
        return None if entity is None else dict(json.loads(_unpack("reference", entity)))

    async def find_reference(self, user_aad: str) -> tuple[str, dict[str, Any]] | None:
        await self._start()
        rows = self._table("refs").query_entities(
            "PartitionKey eq @user", parameters={"user": _key(user_aad.lower())}
        )
        newest = None
        async for entity in rows:
            if newest is None or entity["updated"] > newest["updated"]:
                newest = entity
        return None if newest is None else (newest["tenant"], dict(json.loads(_unpack("reference", newest))))

    async def delete_reference(self, tenant: str, user_aad: str) -> None:
        await self._start()
        await self._table("refs").delete_entity(_key(user_aad.lower()), _key(tenant.lower()))

    # --- settings and leases: partition by the key's prefix ("card", "watch", ...) --------------------

    @staticmethod
    def _setting_keys(key: str) -> tuple[str, str]:
        kind, _, rest = key.partition(":")
        return _key(kind), _key(rest)

    async def set_setting(self, key: str, value: dict[str, Any]) -> None:
        await self._start()
        partition, row = self._setting_keys(key)
        await self._table("settings").upsert_entity(
            {"PartitionKey": partition, "RowKey": row, **_pack("value", json.dumps(value))},
            mode=UpdateMode.REPLACE,
        )

    async def get_setting(self, key: str) -> dict[str, Any] | None:
        await self._start()
        entity = await self._get("settings", *self._setting_keys(key))
        return None if entity is None else dict(json.loads(_unpack("value", entity)))

    async def delete_setting(self, key: str) -> None:
        await self._start()
        await self._table("settings").delete_entity(*self._setting_keys(key))

    async def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        """Take a named lease if it is free or expired; the ETag makes two takers agree on one winner."""
        await self._start()
        partition, row = self._setting_keys(f"lease:{name}")
        table, now = self._table("settings"), time.time()
        held = await self._get("settings", partition, row)
        lease = {"PartitionKey": partition, "RowKey": row, "owner": owner, "until": now + seconds}
        try:
            if held is None:
                await table.create_entity(lease)
            elif held["owner"] != owner and held["until"] > now:
                return False
            else:
                await table.update_entity(
                    lease,
                    mode=UpdateMode.REPLACE,
                    etag=_etag(held),
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError):
            return False  # someone took it between our read and our write
        return True

    async def release_lease(self, name: str, owner: str) -> None:
        await self._start()
        partition, row = self._setting_keys(f"lease:{name}")
        held = await self._get("settings", partition, row)
        if held is not None and held["owner"] == owner:
            # When it expired and someone else took it meanwhile, the ETag no longer matches: theirs stays.
            with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError):
                await self._table("settings").delete_entity(
                    partition, row, etag=_etag(held), match_condition=MatchConditions.IfNotModified
                )

    # --- tickets -------------------------------------------------------------------------------------

    async def _next_number(self) -> int:
        """Count up a counter entity with ETags: every instance gets its own number."""
        table = self._table("tickets")
        for attempt in range(100):
            counter = await self._get("tickets", "counter", "tickets")
            try:
                if counter is None:
                    await table.create_entity(
                        {"PartitionKey": "counter", "RowKey": "tickets", "last": FIRST_TICKET}
                    )
                    return FIRST_TICKET
                number = int(counter["last"]) + 1
                await table.update_entity(
                    {"PartitionKey": "counter", "RowKey": "tickets", "last": number},
                    mode=UpdateMode.REPLACE,
                    etag=_etag(counter),
                    match_condition=MatchConditions.IfNotModified,
                )
                return number
            except (ResourceExistsError, ResourceModifiedError):
                await asyncio.sleep(random.uniform(0, 0.01 * (attempt + 1)))  # noqa: S311 - jitter only
        raise RuntimeError("could not number a ticket: the counter is too contended")

    @staticmethod
    def _ticket_entity(ticket: Ticket) -> dict[str, Any]:
        return {
            "PartitionKey": "ticket",
            "RowKey": _ticket_row(ticket.number),
            "number": ticket.number,
            "user_aad": ticket.user_aad.lower(),
            "status": ticket.status,
            "version": ticket.version,
            **_pack("body", json.dumps(asdict(ticket))),
        }

    async def create_ticket(self, draft: Ticket) -> Ticket:
        await self._start()
        now = _now()
        ticket = replace(draft, number=await self._next_number(), created_at=now, changed_at=now, version=1)
        await self._table("tickets").create_entity(self._ticket_entity(ticket))
        return ticket

    async def get_ticket(self, number: int) -> Ticket | None:
        await self._start()
        entity = await self._get("tickets", "ticket", _ticket_row(number))
        return None if entity is None else _ticket(entity)

    async def update_ticket(self, ticket: Ticket, *, expected_version: int) -> Ticket:
        """Write `ticket` if the stored version is still `expected_version` (checked with the ETag).

        Raises:
            Conflict: with the current ticket, when someone else changed it first.
        """
        await self._start()
        stored = await self._get("tickets", "ticket", _ticket_row(ticket.number))
        if stored is None:
            raise KeyError(ticket.key)
        if stored["version"] != expected_version:
            raise Conflict(_ticket(stored))
        saved = replace(ticket, version=expected_version + 1, changed_at=_now())
        try:
            await self._table("tickets").update_entity(
                self._ticket_entity(saved),
                mode=UpdateMode.REPLACE,
                etag=_etag(stored),
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            current = await self._get("tickets", "ticket", _ticket_row(ticket.number))
            if current is None:
                raise KeyError(ticket.key) from None
            raise Conflict(_ticket(current)) from None
        return saved

    async def list_tickets(
        self, *, user_aad: str | None = None, open_only: bool = False, limit: int = 20
    ) -> list[Ticket]:
        await self._start()
        query, parameters = "PartitionKey eq 'ticket'", {}
        if user_aad is not None:
            query += " and user_aad eq @user"
            parameters["user"] = user_aad.lower()
        if open_only:
            query += " and status ne 'resolved'"
        found: list[Ticket] = []
        pages = self._table("tickets").query_entities(
            query, parameters=parameters, results_per_page=min(max(limit, 1), 1000)
        )
        async for entity in pages:
            found.append(_ticket(entity))
            if len(found) >= limit:
                break
        return found

    # --- outbox: entries in a table, work in a queue -------------------------------------------------

    @staticmethod
    def _entry_keys(dedupe_key: str) -> tuple[str, str]:
        return hashlib.sha256(dedupe_key.encode()).hexdigest()[:2], _key(dedupe_key)

    async def enqueue(self, dedupe_key: str, kind: str, payload: dict[str, Any]) -> bool:
        """Add a message to deliver; False when one with this key exists already (insert-if-absent)."""
        await self._start()
        queue = self._outbox_queue()
        message = await queue.send_message(json.dumps({"key": dedupe_key}))
        partition, row = self._entry_keys(dedupe_key)
        entry = {
            "PartitionKey": partition,
            "RowKey": row,
            "dedupe_key": dedupe_key,
            "kind": kind,
            "status": "pending",
            "attempts": 0,
            "due": time.time(),
            "message_id": message.id,
            **_pack("payload", json.dumps(payload)),
        }
        try:
            await self._table("outbox").create_entity(entry)
        except ResourceExistsError:
            await _gone_ok(queue.delete_message(message.id, message.pop_receipt))
            return False
        return True

    async def claim_due(self, *, limit: int, lease_seconds: float) -> list[OutboxEntry]:
        """Take up to `limit` due entries; each is invisible to other claimers for `lease_seconds`
        (whole seconds, at least one: the queue's granularity)."""
        await self._start()
        lease = min(_MAX_VISIBILITY, max(1, math.ceil(lease_seconds)))
        messages = [
            m
            async for m in self._outbox_queue().receive_messages(
                messages_per_page=min(max(limit, 1), 32), visibility_timeout=lease, max_messages=max(limit, 1)
            )
        ]
        claimed = await asyncio.gather(*(self._claim(m, lease) for m in messages))
        return [entry for entry in claimed if entry is not None]

    async def _claim(self, message: QueueMessage, lease: int) -> OutboxEntry | None:
        queue = self._outbox_queue()
        try:
            key = str(json.loads(message.content)["key"])
        except (ValueError, KeyError, TypeError):
            await self._poison_queue().send_message(message.content)  # not ours: keep it for a human
            await _gone_ok(queue.delete_message(message.id, message.pop_receipt))
            return None
        entity = await self._get("outbox", *self._entry_keys(key))
        if entity is None:
            # The enqueuer may not have inserted the entry yet; past a few looks it crashed before it did.
            if (message.dequeue_count or 0) >= _ORPHAN_CHECKS:
                await _gone_ok(queue.delete_message(message.id, message.pop_receipt))
            else:
                await _gone_ok(queue.update_message(message.id, message.pop_receipt, visibility_timeout=1))
            return None
        if entity["status"] != "pending" or entity["message_id"] != message.id:
            await _gone_ok(queue.delete_message(message.id, message.pop_receipt))  # done, or a stray copy
            return None
        entry = OutboxEntry(
            id=key,
            dedupe_key=key,
            kind=entity["kind"],
            payload=json.loads(_unpack("payload", entity)),
            attempts=message.dequeue_count or 1,
            last_error=entity.get("last_error"),
            handle=(message.id, message.pop_receipt),
        )
        if entry.attempts > MAX_CLAIMS:
            await self.mark_dead(entry, error=f"claimed {entry.attempts - 1} times without an outcome")
            return None
        await self._table("outbox").update_entity(
            {
                "PartitionKey": entity["PartitionKey"],
                "RowKey": entity["RowKey"],
                "attempts": entry.attempts,
                "due": time.time() + lease,
            },
            mode=UpdateMode.MERGE,
        )
        return entry

    async def _merge_entry(self, entry: OutboxEntry, fields: dict[str, Any]) -> None:
        partition, row = self._entry_keys(entry.dedupe_key)
        await self._table("outbox").update_entity(
            {"PartitionKey": partition, "RowKey": row, **fields}, mode=UpdateMode.MERGE
        )

    async def mark_sent(self, entry: OutboxEntry, result: dict[str, Any] | None = None) -> None:
        await self._start()
        await self._merge_entry(entry, {"status": "sent", **_pack("result", json.dumps(result or {}))})
        await _gone_ok(self._outbox_queue().delete_message(*entry.handle))

    async def mark_retry(self, entry: OutboxEntry, *, delay: float, error: str) -> None:
        await self._start()
        visibility = min(_MAX_VISIBILITY, max(0, math.ceil(delay)))
        if not await _gone_ok(
            self._outbox_queue().update_message(*entry.handle, visibility_timeout=visibility)
        ):
            return  # sent meanwhile, or someone else holds it: their outcome stands
        await self._merge_entry(entry, {"last_error": error[:_CHUNK], "due": time.time() + visibility})

    async def mark_dead(self, entry: OutboxEntry, *, error: str) -> None:
        """Set the entry aside: recorded as dead, and a copy in the poison queue for whoever inspects it."""
        await self._start()
        await self._poison_queue().send_message(json.dumps({"key": entry.dedupe_key, "error": error[:1000]}))
        await self._merge_entry(entry, {"status": "dead", "last_error": error[:_CHUNK]})
        await _gone_ok(self._outbox_queue().delete_message(*entry.handle))

    async def pending(self) -> tuple[int, float | None]:
        """(entries still to deliver, seconds until the next one is due; 0 when due now).

        Asks the queue first: the entries table is scanned only when every message is invisible (leased
        or waiting to retry), to learn when the next one comes back."""
        await self._start()
        queue = self._outbox_queue()
        properties = await queue.get_queue_properties()
        if not properties.approximate_message_count:
            return 0, None
        if await queue.peek_messages(max_messages=1):
            return int(properties.approximate_message_count), 0.0
        rows = self._table("outbox").query_entities("status eq 'pending'", select=["due"])
        count, due = 0, None
        async for entity in rows:
            count += 1
            due = entity["due"] if due is None else min(due, entity["due"])
        return count, None if due is None else max(0.0, due - time.time())

    async def outbox_status(self) -> dict[str, int]:
        await self._start()
        counts: dict[str, int] = {}
        async for entity in self._table("outbox").list_entities(select=["status"]):
            counts[entity["status"]] = counts.get(entity["status"], 0) + 1
        return counts
