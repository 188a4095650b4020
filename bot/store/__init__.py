"""Durable state: conversation references, helpdesk settings, tickets and the outbox (design.md section 8)."""

from bot.store.base import Conflict, OutboxEntry, Store, Ticket
from bot.store.sqlite import SqliteStore, open_store

__all__ = ["Conflict", "OutboxEntry", "SqliteStore", "Store", "Ticket", "open_store"]
