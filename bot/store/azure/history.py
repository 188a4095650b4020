"""The Azure store's outbox history: entries listed for reports (a filtered scan, a server page at a time),
and sent entries expired after the retention period.

An expired entry is replaced in place by its compact record (key, kind, times; no payload, no result): the
entity keeps its PartitionKey and RowKey, so a later enqueue of the same dedupe key still finds it there
(409) and the "once" outlives the body.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, UpdateMode

from bot.errors import StoreError
from bot.store.azure.account import Account, etag, unpack
from bot.store.azure.outbox import entry_keys
from bot.store.base import OutboxPage, OutboxQuery, OutboxRecord

__all__ = ["HistoryParts"]

EXPIRE_AT_ONCE = 16  # replacements in flight at once


def _record(entity: TableEntity) -> OutboxRecord:
    status = str(entity["status"])
    done = entity.get("done")
    if done is None and status != "pending":  # finished by an older version: its last write is the outcome
        stamp = entity.metadata.get("timestamp")
        done = stamp.timestamp() if isinstance(stamp, datetime) else None
    payload = unpack("payload", entity)
    return OutboxRecord(
        dedupe_key=str(entity["dedupe_key"]),
        kind=str(entity["kind"]),
        status=status,
        payload=dict(json.loads(payload)) if payload else {},
        queued=entity.get("queued"),
        done=done,
        due=entity.get("due") if status == "pending" else None,
        attempts=int(entity.get("attempts") or 0),
        last_error=entity.get("last_error"),
        group=entity.get("grp"),
    )


def _filter(query: OutboxQuery) -> tuple[str, dict[str, Any]]:
    clauses, parameters = [], {}
    for name, op, value in query.conditions():
        clauses.append(f"{name} {op} @{name}")
        parameters[name] = float(value) if isinstance(value, int | float) else value
    return " and ".join(clauses), parameters


class HistoryParts(Account):
    """Reading the outbox back, and retention."""

    async def outbox_page(
        self, query: OutboxQuery, *, cursor: str | None = None, limit: int = 500
    ) -> OutboxPage:
        """One server page of a filtered scan, in key order (the table has no index by time). A page may
        hold fewer than `limit` entries, none even, and still have a cursor: keep reading until None.

        Raises:
            StoreError: Azure Storage could not be read.
        """
        text, parameters = _filter(query)
        try:
            await self._start()
            table = self._table("outbox")
            rows = (
                table.query_entities(text, parameters=parameters, results_per_page=min(max(limit, 1), 1000))
                if text
                else table.list_entities(results_per_page=min(max(limit, 1), 1000))
            )
            # the pager, not just an iterator: it says where the next page starts
            pages: Any = rows.by_page(continuation_token=json.loads(cursor) if cursor else None)
            async for page in pages:
                records = [_record(entity) async for entity in page]
                token = pages.continuation_token
                return OutboxPage(records, json.dumps(token) if token else None)
        except AzureError as exc:
            raise StoreError(f"Azure Storage's outbox could not be read: {type(exc).__name__}") from exc
        return OutboxPage([], None)

    async def outbox_record(self, dedupe_key: str) -> OutboxRecord | None:
        await self._start()
        entity = await self._get("outbox", *entry_keys(dedupe_key))
        return None if entity is None else _record(entity)

    async def expire_sent(self, *, before: float, limit: int) -> int:
        """Entries are found by the server's last-write time (`Timestamp`), which for a sent entry is
        when it was marked sent, and which an older version's entries have too."""
        await self._start()
        table = self._table("outbox")
        found = table.query_entities(
            "status eq 'sent' and Timestamp lt @before",
            parameters={"before": datetime.fromtimestamp(before, UTC)},
            results_per_page=min(max(limit, 1), 1000),
        )
        expired = 0
        batch: list[TableEntity] = []
        async for entity in found:
            batch.append(entity)
            if len(batch) == EXPIRE_AT_ONCE or expired + len(batch) >= limit:
                expired += sum(await asyncio.gather(*(self._expire(e) for e in batch)))
                batch = []
                if expired >= limit:
                    break
        if batch:
            expired += sum(await asyncio.gather(*(self._expire(e) for e in batch)))
        return expired

    async def _expire(self, entity: TableEntity) -> int:
        record = _record(entity)
        compact = {
            "PartitionKey": entity["PartitionKey"],
            "RowKey": entity["RowKey"],
            "dedupe_key": record.dedupe_key,
            "kind": record.kind,
            "status": "expired",
            "queued": record.queued,
            "done": record.done,
        }
        try:  # REPLACE drops every other property; the ETag leaves an entry changed meanwhile alone
            await self._table("outbox").update_entity(
                {k: v for k, v in compact.items() if v is not None},
                mode=UpdateMode.REPLACE,
                etag=etag(entity),
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return 0
        return 1
