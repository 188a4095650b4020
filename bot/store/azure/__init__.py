"""`Store` on Azure Table Storage + Azure Queue Storage, for several bot instances and delivery workers.

Same behaviour as SQLite, with the service's own tools for sharing: ETags for ticket updates and leases,
insert-if-absent entities for dedupe keys, and a queue whose visibility timeout is the delivery lease.
One part per concern, all on one account: `account` (clients, keys, long text), `keyed` (references,
settings, leases), `tickets`, `outbox`, `history` (reports and retention).
"""

from __future__ import annotations

from bot.store.azure.history import HistoryParts
from bot.store.azure.keyed import KeyedParts
from bot.store.azure.outbox import OutboxParts
from bot.store.azure.tickets import TicketParts

__all__ = ["AzureStore"]


class AzureStore(KeyedParts, TicketParts, OutboxParts, HistoryParts):
    """`Store` on one Storage account. `prefix` names its tables and queues, so several bots can share one."""
