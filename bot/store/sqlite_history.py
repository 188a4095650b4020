"""The SQLite store's outbox history: entries listed for reports, sent ones expired after the retention
period, and the columns both need added to files an older version made."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from bot.store.base import OutboxPage, OutboxQuery, OutboxRecord

__all__ = ["HistoryParts", "migrate"]

T = TypeVar("T")

# Columns added since the first version, with the indexes that use them: a file that lacks them gets them
# when it is opened (`migrate`). `queued` of an older entry is taken from its `due`, and an older finished
# entry counts as done when the file was upgraded (so retention starts then, never earlier).
_ADDED = {"queued": "REAL", "done": "REAL", "grp": "TEXT"}
_ADDED_INDEXES = """
CREATE INDEX IF NOT EXISTS outbox_queued ON outbox (queued);
CREATE INDEX IF NOT EXISTS outbox_done ON outbox (status, done);
CREATE INDEX IF NOT EXISTS outbox_grp ON outbox (grp);
"""


def migrate(db: sqlite3.Connection) -> None:
    """Add what the outbox gained since the first version to a file that lacks it."""

    def missing() -> list[str]:
        have = {row["name"] for row in db.execute("PRAGMA table_info(outbox)")}
        return [name for name in _ADDED if name not in have]

    if missing():
        db.execute("BEGIN IMMEDIATE")  # another process may be upgrading the same file
        try:
            for name in missing():
                db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {_ADDED[name]}")
            db.execute("UPDATE outbox SET queued = due WHERE queued IS NULL")
            db.execute(
                "UPDATE outbox SET done = ? WHERE done IS NULL AND status != 'pending'", (time.time(),)
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    db.executescript(_ADDED_INDEXES)


class HistoryParts:
    """Reading the outbox back; the store's own thread runs each call (`_run`)."""

    _db: sqlite3.Connection

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

    async def outbox_page(
        self, query: OutboxQuery, *, cursor: str | None = None, limit: int = 500
    ) -> OutboxPage:
        """Entries in the order they were queued (`queued`, then id); the cursor is the last one's pair."""

        def work() -> OutboxPage:
            where, args = _where(query)
            if cursor is not None:
                queued, _, last_id = cursor.partition(":")
                where.append("(queued, id) > (?, ?)")
                args += [float(queued), int(last_id)]
            rows = self._db.execute(
                f"SELECT * FROM outbox WHERE {' AND '.join(where) or '1 = 1'} "  # noqa: S608 - fixed columns
                "ORDER BY queued, id LIMIT ?",
                (*args, limit),
            ).fetchall()
            last = rows[-1] if len(rows) == limit else None
            return OutboxPage(
                [_record(r) for r in rows], None if last is None else f"{last['queued']}:{last['id']}"
            )

        result: OutboxPage = await self._run(work)
        return result

    async def outbox_record(self, dedupe_key: str) -> OutboxRecord | None:
        def work() -> OutboxRecord | None:
            row = self._db.execute("SELECT * FROM outbox WHERE dedupe_key = ?", (dedupe_key,)).fetchone()
            return None if row is None else _record(row)

        result: OutboxRecord | None = await self._run(work)
        return result

    async def expire_sent(self, *, before: float, limit: int) -> int:
        """The row stays, with its `UNIQUE` key: a later enqueue of the key is still refused."""

        def work() -> int:
            cursor = self._db.execute(
                "UPDATE outbox SET status = 'expired', payload = '{}', result = NULL WHERE id IN "
                "(SELECT id FROM outbox WHERE status = 'sent' AND done < ? ORDER BY done LIMIT ?)",
                (before, limit),
            )
            return cursor.rowcount

        result: int = await self._run(work)
        return result


_SQL = {"eq": "=", "ge": ">="}


def _where(query: OutboxQuery) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    for column, op, value in query.conditions():
        where.append(f"{column} {_SQL[op]} ?")
        args.append(value)
    return where, args


def _record(row: sqlite3.Row) -> OutboxRecord:
    return OutboxRecord(
        dedupe_key=row["dedupe_key"],
        kind=row["kind"],
        status=row["status"],
        payload=dict(json.loads(row["payload"])),
        queued=row["queued"],
        done=row["done"],
        due=row["due"] if row["status"] == "pending" else None,
        attempts=row["attempts"],
        last_error=row["last_error"],
        group=row["grp"],
    )
