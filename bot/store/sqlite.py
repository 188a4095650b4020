"""The default store: one SQLite file, no server.

One thread owns the connection and runs every call, one after another (a `sqlite3` connection must not be
used by two threads at once). A call, once submitted, runs to its end even when its caller is cancelled
(a turn's time budget, a lease): it is never abandoned mid-statement, and a `mark_sent` whose caller gave
up is still recorded. The thread is the store's own, so its calls never queue behind botbuilder's sends in
the default executor.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from bot.errors import StoreError
from bot.store.base import (
    FIRST_TICKET,
    MAX_CLAIMS,
    Conflict,
    OutboxEntry,
    StoredTicket,
    lease_key,
)
from bot.store.sqlite_history import HistoryParts, migrate

__all__ = ["SqliteStore"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS refs (key TEXT PRIMARY KEY, reference TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tickets (number INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL,
    user_aad TEXT NOT NULL, status TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, dedupe_key TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0, due REAL NOT NULL, last_error TEXT, result TEXT);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, due);
"""
LOCK_WAIT = 10.0  # seconds a call waits for another process's write lock before the store is "unavailable"


def _stored(row: sqlite3.Row) -> StoredTicket:
    return StoredTicket(
        number=row["number"],
        version=row["version"],
        user_aad=row["user_aad"],
        status=row["status"],
        body=dict(json.loads(row["body"])),
    )


def _problem(path: str, exc: sqlite3.Error) -> StoreError:
    """The admin's message: which file, and what is wrong with it in words."""
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        why = (
            "it is not a SQLite database or it is corrupt (move it away to start afresh, or restore a backup)"
        )
    elif "readonly" in text or "read-only" in text:
        why = "it is read-only (the bot needs to write it: check the file's and its folder's permissions)"
    elif "unable to open" in text:
        why = "it can't be opened (does the folder exist, and may the bot write there?)"
    elif "locked" in text or "busy" in text:
        why = f"another process has held it locked for more than {LOCK_WAIT:.0f} s"
    else:
        why = f"SQLite says: {text}"
    return StoreError(f"the SQLite store {path} can't be used: {why}")


class SqliteStore(HistoryParts):
    """`Store` on SQLite. Safe for one process; several processes share the file through SQLite's locks.

    Raises:
        StoreError: (from the constructor and every call) the file can't be opened, read or written.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._closed = False
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        try:
            self._db = self._thread.submit(self._open, path).result()
        except sqlite3.Error as exc:
            self._thread.shutdown(wait=False)
            raise _problem(path, exc) from exc

    @staticmethod
    def _open(path: str) -> sqlite3.Connection:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=LOCK_WAIT)
        try:
            db.row_factory = sqlite3.Row
            if path != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            migrate(db)
            if db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'tickets'").fetchone() is None:
                db.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES ('tickets', ?)", (FIRST_TICKET - 1,)
                )
        except BaseException:
            db.close()
            raise
        return db

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreError(f"the SQLite store {self._path} is closed")

        def guarded() -> T:
            try:
                return work(*args)
            except sqlite3.Error as exc:
                raise _problem(self._path, exc) from exc

        # Shielded: a cancelled caller stops waiting, the statement still runs to its end on the thread.
        return await asyncio.shield(asyncio.wrap_future(self._thread.submit(guarded)))

    async def close(self) -> None:
        if self._closed:
            return
        await self._run(self._db.close)
        self._closed = True
        self._thread.shutdown(wait=False)

    # --- conversation references ---------------------------------------------------------------------

    async def save_reference(self, tenant: str, user_aad: str, reference: dict[str, Any]) -> None:
        def work() -> None:
            self._db.execute(
                "INSERT INTO refs (key, reference, updated) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET reference = excluded.reference, updated = excluded.updated",
                (f"{tenant.lower()}/{user_aad.lower()}", json.dumps(reference), time.time()),
            )

        await self._run(work)

    async def get_reference(self, tenant: str, user_aad: str) -> dict[str, Any] | None:
        def work() -> dict[str, Any] | None:
            row = self._db.execute(
                "SELECT reference FROM refs WHERE key = ?", (f"{tenant.lower()}/{user_aad.lower()}",)
            ).fetchone()
            return None if row is None else dict(json.loads(row["reference"]))

        result: dict[str, Any] | None = await self._run(work)
        return result

    async def find_reference(self, user_aad: str) -> tuple[str, dict[str, Any]] | None:
        """(tenant, reference) for a user in any tenant: the sweep knows users, not tenants."""

        def work() -> tuple[str, dict[str, Any]] | None:
            row = self._db.execute(
                "SELECT key, reference FROM refs WHERE key LIKE ? ORDER BY updated DESC LIMIT 1",
                (f"%/{user_aad.lower()}",),
            ).fetchone()
            return None if row is None else (row["key"].split("/")[0], dict(json.loads(row["reference"])))

        result: tuple[str, dict[str, Any]] | None = await self._run(work)
        return result

    async def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        """Take a named lease if it is free or expired: one sweep at a time."""

        def work() -> bool:
            now = time.time()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT value FROM settings WHERE key = ?", (lease_key(name),)
                ).fetchone()
                held = json.loads(row["value"]) if row else None
                if held and held["owner"] != owner and held["until"] > now:
                    self._db.execute("ROLLBACK")
                    return False
                self._db.execute(
                    "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (lease_key(name), json.dumps({"owner": owner, "until": now + seconds})),
                )
                self._db.execute("COMMIT")
                return True
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

        result: bool = await self._run(work)
        return result

    async def release_lease(self, name: str, owner: str) -> None:
        def work() -> None:
            row = self._db.execute("SELECT value FROM settings WHERE key = ?", (lease_key(name),)).fetchone()
            if row and json.loads(row["value"])["owner"] == owner:
                self._db.execute("DELETE FROM settings WHERE key = ?", (lease_key(name),))

        await self._run(work)

    async def delete_setting(self, key: str) -> None:
        await self._run(self._db.execute, "DELETE FROM settings WHERE key = ?", (key,))

    async def delete_reference(self, tenant: str, user_aad: str) -> None:
        await self._run(
            self._db.execute, "DELETE FROM refs WHERE key = ?", (f"{tenant.lower()}/{user_aad.lower()}",)
        )

    # --- settings ------------------------------------------------------------------------------------

    async def set_setting(self, key: str, value: dict[str, Any]) -> None:
        await self._run(
            self._db.execute,
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    async def get_setting(self, key: str) -> dict[str, Any] | None:
        def work() -> dict[str, Any] | None:
            row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
            return None if row is None else dict(json.loads(row["value"]))

        result: dict[str, Any] | None = await self._run(work)
        return result

    async def add_setting(self, key: str, value: dict[str, Any]) -> bool:
        def work() -> bool:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, json.dumps(value))
            )
            return cursor.rowcount == 1

        result: bool = await self._run(work)
        return result

    async def list_settings(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        def work() -> list[tuple[str, dict[str, Any]]]:
            # A range on the primary key: "prefix:" up to "prefix;" (';' follows ':'), no LIKE wildcards.
            rows = self._db.execute(
                "SELECT key, value FROM settings WHERE key >= ? AND key < ? ORDER BY key",
                (f"{prefix}:", f"{prefix};"),
            ).fetchall()
            return [(row["key"], dict(json.loads(row["value"]))) for row in rows]

        result: list[tuple[str, dict[str, Any]]] = await self._run(work)
        return result

    # --- tickets: the body as JSON, beside the columns they are listed by ---------------------------

    async def create_ticket(self, draft: StoredTicket) -> StoredTicket:
        def work() -> StoredTicket:
            cursor = self._db.execute(
                "INSERT INTO tickets (body, user_aad, status, version) VALUES (?, ?, ?, 1)",
                (json.dumps(draft.body), draft.user_aad.lower(), draft.status),
            )
            saved = draft.written(int(cursor.lastrowid or 0), 1)
            self._db.execute(
                "UPDATE tickets SET body = ? WHERE number = ?", (json.dumps(saved.body), saved.number)
            )
            return saved

        result: StoredTicket = await self._run(work)
        return result

    def _read_ticket(self, number: int) -> StoredTicket | None:
        row = self._db.execute(
            "SELECT number, version, user_aad, status, body FROM tickets WHERE number = ?", (number,)
        ).fetchone()
        return None if row is None else _stored(row)

    async def get_ticket(self, number: int) -> StoredTicket | None:
        result: StoredTicket | None = await self._run(self._read_ticket, number)
        return result

    async def update_ticket(self, ticket: StoredTicket, *, expected_version: int) -> StoredTicket:
        """Write `ticket` if the stored version is still `expected_version`.

        Raises:
            Conflict: with the current ticket, when someone else changed it first.
            KeyError: there is no ticket with that number.
        """

        def work() -> StoredTicket:
            saved = ticket.written(ticket.number, expected_version + 1)
            cursor = self._db.execute(
                "UPDATE tickets SET body = ?, status = ?, version = ? WHERE number = ? AND version = ?",
                (json.dumps(saved.body), saved.status, saved.version, saved.number, expected_version),
            )
            if cursor.rowcount == 1:
                return saved
            current = self._read_ticket(ticket.number)
            if current is None:
                raise KeyError(ticket.number)
            raise Conflict(current)

        result: StoredTicket = await self._run(work)
        return result

    async def list_tickets(
        self, *, user_aad: str | None = None, exclude_status: str | None = None, limit: int = 20
    ) -> list[StoredTicket]:
        def work() -> list[StoredTicket]:
            query, args = "SELECT number, version, user_aad, status, body FROM tickets WHERE 1 = 1", []
            if user_aad is not None:
                query += " AND user_aad = ?"
                args.append(user_aad.lower())
            if exclude_status is not None:
                query += " AND status != ?"
                args.append(exclude_status)
            query += " ORDER BY number DESC LIMIT ?"
            return [_stored(row) for row in self._db.execute(query, (*args, limit)).fetchall()]

        result: list[StoredTicket] = await self._run(work)
        return result

    # --- outbox --------------------------------------------------------------------------------------

    async def enqueue(
        self,
        dedupe_key: str,
        kind: str,
        payload: dict[str, Any],
        *,
        group: str | None = None,
        delay: float = 0,
    ) -> bool:
        """Add a message to deliver, due in `delay` seconds; False when one with this key exists already
        (insert-if-absent)."""

        def work() -> bool:
            now = time.time()
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO outbox (dedupe_key, kind, payload, due, queued, grp) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (dedupe_key, kind, json.dumps(payload), now + max(0.0, delay), now, group),
            )
            return cursor.rowcount == 1

        result: bool = await self._run(work)
        return result

    async def claim_due(self, *, limit: int, lease_seconds: float) -> list[OutboxEntry]:
        """Take up to `limit` due entries; each is invisible to other claimers for `lease_seconds`."""

        def work() -> list[OutboxEntry]:
            now = time.time()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute(
                    "SELECT * FROM outbox WHERE status = 'pending' AND due <= ? ORDER BY id LIMIT ?",
                    (now, limit),
                ).fetchall()
                poisoned = [row for row in rows if row["attempts"] >= MAX_CLAIMS]
                for row in poisoned:
                    self._db.execute(
                        "UPDATE outbox SET status = 'dead', last_error = ?, done = ? WHERE id = ?",
                        (f"claimed {row['attempts']} times without an outcome", now, row["id"]),
                    )
                rows = [row for row in rows if row["attempts"] < MAX_CLAIMS]
                for row in rows:
                    self._db.execute(
                        "UPDATE outbox SET due = ?, attempts = attempts + 1 WHERE id = ?",
                        (now + lease_seconds, row["id"]),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return [
                OutboxEntry(
                    id=str(row["id"]),
                    dedupe_key=row["dedupe_key"],
                    kind=row["kind"],
                    payload=json.loads(row["payload"]),
                    attempts=row["attempts"] + 1,
                    last_error=row["last_error"],
                )
                for row in rows
            ]

        result: list[OutboxEntry] = await self._run(work)
        return result

    async def mark_sent(self, entry: OutboxEntry, result: dict[str, Any] | None = None) -> None:
        await self._run(
            self._db.execute,
            "UPDATE outbox SET status = 'sent', result = ?, done = ? WHERE id = ?",
            (json.dumps(result or {}), time.time(), int(entry.id)),
        )

    async def mark_retry(self, entry: OutboxEntry, *, delay: float, error: str) -> None:
        await self._run(
            self._db.execute,
            "UPDATE outbox SET due = ?, last_error = ? WHERE id = ? AND status = 'pending'",
            (time.time() + delay, error, int(entry.id)),
        )

    async def mark_dead(self, entry: OutboxEntry, *, error: str) -> None:
        await self._run(
            self._db.execute,
            "UPDATE outbox SET status = 'dead', last_error = ?, done = ? WHERE id = ?",
            (error, time.time(), int(entry.id)),
        )

    async def pending(self) -> tuple[int, float | None]:
        """(entries still to deliver, seconds until the next one is due; 0 when due now)."""

        def work() -> tuple[int, float | None]:
            row = self._db.execute(
                "SELECT COUNT(*) AS n, MIN(due) AS due FROM outbox WHERE status = 'pending'"
            ).fetchone()
            wait = None if row["due"] is None else max(0.0, row["due"] - time.time())
            return int(row["n"]), wait

        result: tuple[int, float | None] = await self._run(work)
        return result

    async def outbox_status(self) -> dict[str, int]:
        def work() -> dict[str, int]:
            rows = self._db.execute("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status").fetchall()
            return {r["status"]: r["n"] for r in rows}

        result: dict[str, int] = await self._run(work)
        return result
