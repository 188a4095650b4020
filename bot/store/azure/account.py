"""The plumbing the Azure store's parts share: one Storage account's table and queue clients, made inside
the running loop, and the conversions Table Storage needs (safe keys, long text over several properties).

The account is named by a connection string: with its key (or a SAS, or Azurite's development account) the
SDK signs with it; without one (`TableEndpoint=...;QueueEndpoint=...`, or `AccountName=...` alone) the
clients ask `credential` (an Entra token credential, `bot.store.azure.identity`) for a token."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request
from collections.abc import Awaitable
from typing import Any
from urllib.parse import quote, urlsplit

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableEntity
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from bot.config import connection_string_fields, has_storage_key

__all__ = ["CHUNK", "Account", "endpoints", "etag", "gone_ok", "pack", "table_key", "unpack"]

CHUNK = 30_000  # a string property holds 64 KiB of UTF-16: 32K characters; JSON here is ASCII
TABLES = ("refs", "settings", "tickets", "outbox")


def endpoints(connection_string: str) -> tuple[str, str]:
    """(table endpoint, queue endpoint) of a connection string: as given, or made from its account name,
    protocol (https) and endpoint suffix (core.windows.net), as the SDK makes them.

    Raises:
        ValueError: the string names neither the endpoints nor an account.
    """
    fields = connection_string_fields(connection_string)
    account = fields.get("accountname", "")
    protocol = fields.get("defaultendpointsprotocol", "https")
    suffix = fields.get("endpointsuffix", "core.windows.net")
    made = {kind: f"{protocol}://{account}.{kind}.{suffix}" if account else "" for kind in ("table", "queue")}
    table = fields.get("tableendpoint") or made["table"]
    queue = fields.get("queueendpoint") or made["queue"]
    if not (table and queue):
        raise ValueError(
            "the connection string names neither TableEndpoint and QueueEndpoint nor AccountName"
        )
    return table.rstrip("/"), queue.rstrip("/")


def proxy_options() -> dict[str, Any]:
    """The clients' proxy settings: with no proxy in the environment, none read per request.

    Left to the SDK, aiohttp reads the proxy variables (and ~/.netrc) again for every request, in a
    worker thread: a tenth of a delivering process's CPU. With a proxy set (HTTPS_PROXY and the like),
    the SDK keeps reading them as before, netrc's proxy credentials and NO_PROXY included."""
    return {} if urllib.request.getproxies() else {"use_env_settings": False}


def table_key(text: str) -> str:
    """A PartitionKey/RowKey for any text: '/', '\\', '#', '?' and control characters are not allowed."""
    return quote(text, safe="")


def pack(name: str, text: str) -> dict[str, str]:
    """`text` as properties name, name_1, name_2, ...: one property holds at most 32K characters."""
    chunks = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]
    return {name if i == 0 else f"{name}_{i}": chunk for i, chunk in enumerate(chunks)}


def unpack(name: str, entity: dict[str, Any]) -> str:
    parts, i = [entity.get(name, "")], 1
    while f"{name}_{i}" in entity:
        parts.append(entity[f"{name}_{i}"])
        i += 1
    return "".join(parts)


def etag(entity: TableEntity) -> str:
    return str(entity.metadata["etag"])


async def gone_ok(work: Awaitable[Any]) -> bool:
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


class Account:
    """One Storage account's tables and queues. `prefix` names them, so several bots can share one."""

    def __init__(
        self,
        connection_string: str,
        *,
        prefix: str = "syncdoctor",
        credential: AsyncTokenCredential | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        """`credential` opens a connection string without a key (and is closed with the store);
        `ca_bundle` is a CA file to trust instead of the system's (a TLS-inspecting proxy's private CA).

        Raises:
            ValueError: a bad prefix; a connection string without a key and no credential, or naming no
                account.
        """
        if not prefix.isalnum() or not prefix[:1].isalpha() or not prefix.islower():
            raise ValueError("prefix: lowercase letters and digits, starting with a letter")
        if credential is None and not has_storage_key(connection_string):
            raise ValueError("a connection string without an account key needs a credential")
        if credential is not None:
            endpoints(connection_string)  # names an account: fail now, not at the first call
        self._connection = connection_string
        self._credential = credential
        self._options: dict[str, Any] = {
            **proxy_options(),
            **({"connection_verify": ca_bundle} if ca_bundle else {}),
        }
        self._prefix = prefix
        self._ready: asyncio.Task[None] | None = None
        self._tables: TableServiceClient | None = None
        self._queues: QueueServiceClient | None = None
        # Made once each: building a client builds its whole request pipeline (a tenth of a request's CPU).
        self._table_clients: dict[str, TableClient] = {}
        self._queue_clients: dict[str, QueueClient] = {}

    async def _open(self) -> None:
        if self._tables is None or self._queues is None:
            if self._credential is None:
                self._tables = TableServiceClient.from_connection_string(self._connection, **self._options)
                self._queues = QueueServiceClient.from_connection_string(self._connection, **self._options)
            else:
                tables, queues = endpoints(self._connection)
                self._tables = TableServiceClient(
                    endpoint=tables, credential=self._credential, **self._options
                )
                self._queues = QueueServiceClient(
                    account_url=queues, credential=self._credential, **self._options
                )
        for name in TABLES:
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
        client = self._table_clients.get(name)
        if client is None:
            assert self._tables is not None
            client = self._table_clients[name] = self._tables.get_table_client(self._prefix + name)
        return client

    def _queue(self, name: str) -> QueueClient:
        client = self._queue_clients.get(name)
        if client is None:
            assert self._queues is not None
            client = self._queue_clients[name] = self._queues.get_queue_client(name)
        return client

    def _outbox_queue(self) -> QueueClient:
        return self._queue(f"{self._prefix}-outbox")

    def _poison_queue(self) -> QueueClient:
        return self._queue(f"{self._prefix}-outbox-poison")

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
        if self._credential is not None:
            await self._credential.close()

    @property
    def account_name(self) -> str:
        """The account, for people: its name, or its table endpoint's host."""
        fields = connection_string_fields(self._connection)
        return fields.get("accountname") or (urlsplit(endpoints(self._connection)[0]).hostname or "?")
