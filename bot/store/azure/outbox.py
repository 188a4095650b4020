"""The outbox on Azure Storage: entries in a table (the truth: status, payload, attempts) and a queue of
messages naming them (the work), whose visibility timeout is the delivery lease.

Only a claimer changes a pending entry: every outcome (sent, retry, dead) is written with the pop receipt
of a received message, and every receive counts in the message's dequeue count. So a message received for
the first time names an entry nobody has touched since it was queued.

`enqueue` sends the message first and then inserts the entry carrying the message's id, so a crash between
the two leaves a stray message (dropped when claimed) rather than an entry nobody will deliver; a second
enqueue of the same key loses the insert and withdraws its message.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections import OrderedDict
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import UpdateMode
from azure.storage.queue import QueueMessage

from bot.store.azure.account import CHUNK, Account, gone_ok, pack, table_key, unpack
from bot.store.base import MAX_CLAIMS, OutboxEntry

__all__ = ["OutboxParts", "entry_keys"]

_MAX_VISIBILITY = 7 * 24 * 3600 - 1  # the queue's limit for a message's visibility timeout
_LEASED_POLL = 1.0  # seconds: when `pending` says a claimed entry may be due again
_ORPHAN_CHECKS = 5  # a message without its entry is re-checked this often before it is dropped
_REMEMBERED = 4096  # entries this process queued, kept to claim without reading them back


def entry_keys(dedupe_key: str) -> tuple[str, str]:
    """An entry's PartitionKey and RowKey: its dedupe key, spread over 256 partitions."""
    return hashlib.sha256(dedupe_key.encode()).hexdigest()[:2], table_key(dedupe_key)


class OutboxParts(Account):
    """Entries to deliver, claimed through the queue."""

    _entry_keys = staticmethod(entry_keys)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # What this process queued lately, by message id: (key, kind, payload JSON). A process that sweeps
        # and delivers claims its own entries; the first claim of a message needs no read of its entry.
        self._queued_here: OrderedDict[str, tuple[str, str, str]] = OrderedDict()

    async def enqueue(
        self,
        dedupe_key: str,
        kind: str,
        payload: dict[str, Any],
        *,
        group: str | None = None,
        delay: float = 0,
    ) -> bool:
        """Add a message to deliver, due in `delay` seconds (its message stays invisible until then, in
        whole seconds: the queue's granularity); False when one with this key exists already
        (insert-if-absent)."""
        await self._start()
        queue = self._outbox_queue()
        wait = min(_MAX_VISIBILITY, max(0, math.ceil(delay)))
        message = await queue.send_message(json.dumps({"key": dedupe_key}), visibility_timeout=wait or None)
        partition, row = self._entry_keys(dedupe_key)
        now = time.time()
        body = json.dumps(payload)
        entry = {
            "PartitionKey": partition,
            "RowKey": row,
            "dedupe_key": dedupe_key,
            "kind": kind,
            "status": "pending",
            "attempts": 0,
            "due": now + wait,
            "queued": now,
            "message_id": message.id,
            **({"grp": group} if group is not None else {}),
            **pack("payload", body),
        }
        try:
            await self._table("outbox").create_entity(entry)
        except ResourceExistsError:
            # The SDK sends an insert again after a 500, 503 or 504, which Azure may have stored all the
            # same: the retry then meets our own entry. It is ours, and so is the message.
            existing = await self._get("outbox", partition, row)
            if existing is None or existing.get("message_id") != message.id:
                await gone_ok(queue.delete_message(message.id, message.pop_receipt))
                return False
        self._queued_here[message.id] = (dedupe_key, kind, body)
        while len(self._queued_here) > _REMEMBERED:
            self._queued_here.popitem(last=False)
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
        claimed = await asyncio.gather(*(self._claim(m) for m in messages))
        return [entry for entry in claimed if entry is not None]

    async def _claim(self, message: QueueMessage) -> OutboxEntry | None:
        queue = self._outbox_queue()
        try:
            key = str(json.loads(message.content)["key"])
        except (ValueError, KeyError, TypeError):
            await self._poison_queue().send_message(message.content)  # not ours: keep it for a human
            await gone_ok(queue.delete_message(message.id, message.pop_receipt))
            return None
        queued_here = self._queued_here.pop(message.id, None)
        if queued_here is not None and queued_here[0] == key and message.dequeue_count == 1:
            # This process inserted its entry for this very message (no stray copy), and nobody claimed it
            # before (only a claimer records an outcome): it is pending, as written. No need to read it.
            _, kind, body = queued_here
            return OutboxEntry(
                id=key,
                dedupe_key=key,
                kind=kind,
                payload=json.loads(body),
                attempts=1,
                handle=(message.id, message.pop_receipt),
            )
        entity = await self._get("outbox", *self._entry_keys(key))
        if entity is None:
            # The enqueuer may not have inserted the entry yet; past a few looks it crashed before it did.
            if (message.dequeue_count or 0) >= _ORPHAN_CHECKS:
                await gone_ok(queue.delete_message(message.id, message.pop_receipt))
            else:
                await gone_ok(queue.update_message(message.id, message.pop_receipt, visibility_timeout=1))
            return None
        if entity["status"] != "pending" or entity["message_id"] != message.id:
            await gone_ok(queue.delete_message(message.id, message.pop_receipt))  # done, or a stray copy
            return None
        entry = OutboxEntry(
            id=key,
            dedupe_key=key,
            kind=entity["kind"],
            payload=json.loads(unpack("payload", entity)),
            attempts=message.dequeue_count or 1,
            last_error=entity.get("last_error"),
            handle=(message.id, message.pop_receipt),
        )
        if entry.attempts > MAX_CLAIMS:
            await self.mark_dead(entry, error=f"claimed {entry.attempts - 1} times without an outcome")
            return None
        # Nothing is written to claim it: the message's visibility is the lease, its dequeue count the
        # attempts (recorded with the outcome). One request a notice fewer, for the store and the service.
        return entry

    async def _merge_entry(self, entry: OutboxEntry, fields: dict[str, Any]) -> None:
        partition, row = self._entry_keys(entry.dedupe_key)
        await self._table("outbox").update_entity(
            {"PartitionKey": partition, "RowKey": row, "attempts": entry.attempts, **fields},
            mode=UpdateMode.MERGE,
        )

    async def mark_sent(self, entry: OutboxEntry, result: dict[str, Any] | None = None) -> None:
        await self._start()
        done = {"status": "sent", "done": time.time(), **pack("result", json.dumps(result or {}))}
        await self._merge_entry(entry, done)
        await gone_ok(self._outbox_queue().delete_message(*entry.handle))

    async def mark_retry(self, entry: OutboxEntry, *, delay: float, error: str) -> None:
        await self._start()
        visibility = min(_MAX_VISIBILITY, max(0, math.ceil(delay)))
        if not await gone_ok(
            self._outbox_queue().update_message(*entry.handle, visibility_timeout=visibility)
        ):
            return  # sent meanwhile, or someone else holds it: their outcome stands
        await self._merge_entry(entry, {"last_error": error[:CHUNK], "due": time.time() + visibility})

    async def mark_dead(self, entry: OutboxEntry, *, error: str) -> None:
        """Set the entry aside: recorded as dead, and a copy in the poison queue for whoever inspects it."""
        await self._start()
        await self._poison_queue().send_message(json.dumps({"key": entry.dedupe_key, "error": error[:1000]}))
        await self._merge_entry(entry, {"status": "dead", "last_error": error[:CHUNK], "done": time.time()})
        await gone_ok(self._outbox_queue().delete_message(*entry.handle))

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
        count, due, now = 0, None, time.time()
        async for entity in rows:
            count += 1
            # Past due with no message visible: claimed, and back (if still unsent) when its lease ends,
            # which a claim doesn't record. Ask again in a second.
            when = entity["due"] if entity["due"] > now else now + _LEASED_POLL
            due = when if due is None else min(due, when)
        return count, None if due is None else max(0.0, due - now)

    async def outbox_status(self) -> dict[str, int]:
        await self._start()
        counts: dict[str, int] = {}
        async for entity in self._table("outbox").list_entities(select=["status"]):
            counts[entity["status"]] = counts.get(entity["status"], 0) + 1
        return counts
