"""Durable state: conversation references, helpdesk settings, tickets and the outbox (design.md section 8)."""

from __future__ import annotations

from pathlib import Path

from bot.config import connection_string_fields, is_azure_connection_string
from bot.errors import ConfigError, StoreError
from bot.store.base import Conflict, OutboxEntry, Store, StoredTicket
from bot.store.sqlite import SqliteStore

__all__ = [
    "Conflict",
    "OutboxEntry",
    "SqliteStore",
    "Store",
    "StoredTicket",
    "connection_string_fields",
    "is_azure_connection_string",
    "open_store",
]


def open_store(url: str) -> Store:
    """The store named by STORE_URL: `sqlite:///path` (or `sqlite://:memory:`), or an Azure Storage
    connection string for several instances sharing Azure Tables + Queues.

    Raises:
        ConfigError: for a URL this build can't open.
        StoreError: the SQLite file (or its folder) can't be opened or written.
    """
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path != ":memory:":
            folder = Path(path).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"the SQLite store's folder {folder} can't be created: {exc.strerror}"
                ) from exc
        return SqliteStore(path)
    if url in ("sqlite://:memory:", "sqlite://"):
        return SqliteStore(":memory:")
    if is_azure_connection_string(url):
        from bot.store.azure import AzureStore  # the Azure SDK loads only when it is used

        return AzureStore(url)
    raise ConfigError(
        f"STORE_URL (starting {url.split(':')[0][:12]!r}) is neither sqlite:///path/to/file.sqlite3 "
        "nor an Azure Storage connection string (DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...)"
    )
