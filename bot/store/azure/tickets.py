"""Tickets on Table Storage: one partition, row keys counting down (a scan lists the newest first), a
counter entity for numbers, and the entity's ETag for optimistic concurrency."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
from azure.data.tables import UpdateMode

from bot.store.azure.account import Account, etag, pack, unpack
from bot.store.base import FIRST_TICKET, Conflict, StoredTicket

__all__ = ["TicketParts"]

_TICKET_ROWS = 10**12  # row keys count down so that a table scan lists the newest ticket first


def _row(number: int) -> str:
    return f"{_TICKET_ROWS - number:012d}"


def _stored(entity: dict[str, Any]) -> StoredTicket:
    return StoredTicket(
        number=int(entity["number"]),
        version=int(entity["version"]),
        user_aad=entity["user_aad"],
        status=entity["status"],
        body=dict(json.loads(unpack("body", entity))),
    )


def _entity(ticket: StoredTicket) -> dict[str, Any]:
    return {
        "PartitionKey": "ticket",
        "RowKey": _row(ticket.number),
        "number": ticket.number,
        "user_aad": ticket.user_aad,
        "status": ticket.status,
        "version": ticket.version,
        **pack("body", json.dumps(ticket.body)),
    }


class TicketParts(Account):
    """Numbered, versioned ticket documents."""

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
                    etag=etag(counter),
                    match_condition=MatchConditions.IfNotModified,
                )
                return number
            except (ResourceExistsError, ResourceModifiedError):
                await asyncio.sleep(random.uniform(0, 0.01 * (attempt + 1)))  # noqa: S311 - jitter only
        raise RuntimeError("could not number a ticket: the counter is too contended")

    async def create_ticket(self, draft: StoredTicket) -> StoredTicket:
        await self._start()
        ticket = draft.written(await self._next_number(), 1)
        await self._table("tickets").create_entity(_entity(ticket))
        return ticket

    async def get_ticket(self, number: int) -> StoredTicket | None:
        await self._start()
        entity = await self._get("tickets", "ticket", _row(number))
        return None if entity is None else _stored(entity)

    async def update_ticket(self, ticket: StoredTicket, *, expected_version: int) -> StoredTicket:
        """Write `ticket` if the stored version is still `expected_version` (checked with the ETag).

        Raises:
            Conflict: with the current ticket, when someone else changed it first.
            KeyError: there is no ticket with that number.
        """
        await self._start()
        stored = await self._get("tickets", "ticket", _row(ticket.number))
        if stored is None:
            raise KeyError(ticket.number)
        if stored["version"] != expected_version:
            raise Conflict(_stored(stored))
        saved = ticket.written(ticket.number, expected_version + 1)
        try:
            await self._table("tickets").update_entity(
                _entity(saved),
                mode=UpdateMode.REPLACE,
                etag=etag(stored),
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            current = await self._get("tickets", "ticket", _row(ticket.number))
            if current is None:
                raise KeyError(ticket.number) from None
            raise Conflict(_stored(current)) from None
        return saved

    async def list_tickets(
        self, *, user_aad: str | None = None, exclude_status: str | None = None, limit: int = 20
    ) -> list[StoredTicket]:
        await self._start()
        query, parameters = "PartitionKey eq 'ticket'", {}
        if user_aad is not None:
            query += " and user_aad eq @user"
            parameters["user"] = user_aad.lower()
        if exclude_status is not None:
            query += " and status ne @status"
            parameters["status"] = exclude_status
        found: list[StoredTicket] = []
        pages = self._table("tickets").query_entities(
            query, parameters=parameters, results_per_page=min(max(limit, 1), 1000)
        )
        async for entity in pages:
            found.append(_stored(entity))
            if len(found) >= limit:
                break
        return found
