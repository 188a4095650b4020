"""`python -m bot report`'s three outputs, written row by row as the store's pages arrive: a table for a
terminal (the default), CSV (`--csv`, with a header) and JSON Lines (`--json`: one object per line, so a
long report streams and `jq` or a spreadsheet reads it as it comes).

    count = await write_rows(notice_rows(store, since=None), sys.stdout, "table")
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterable
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from bot.notify.report import NoticeRow

__all__ = ["FIELDS", "Format", "write_rows"]

Format = Literal["table", "csv", "json"]
FIELDS = ("queued", "user", "name", "cause", "outcome", "reason", "sent", "kind")
# The table's columns: (title, width); the last one takes what is left of the line.
_COLUMNS = (("QUEUED", 17), ("WHO", 38), ("CAUSE", 26), ("OUTCOME", 11), ("SENT", 17), ("WHY", 0))


def _iso(stamp: float | None) -> str:
    if stamp is None:
        return ""
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(stamp: float | None) -> str:
    return "" if stamp is None else datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M")


def _fit(value: str, width: int) -> str:
    """One line, clipped to `width` with "…" (0: as long as it is)."""
    line = " ".join(value.split())
    if width and len(line) > width:
        line = line[: width - 1] + "…"
    return line.ljust(width) if width else line


def _fields(row: NoticeRow) -> dict[str, Any]:
    return {
        "queued": _iso(row.queued),
        "user": row.user,
        "name": row.name,
        "cause": row.cause,
        "outcome": row.outcome,
        "reason": row.reason,
        "sent": _iso(row.sent),
        "kind": row.kind,
    }


def _table_line(row: NoticeRow) -> str:
    who = f"{row.name} ({row.user})" if row.name else row.user
    values = (_short(row.queued), who, row.cause, row.outcome, _short(row.sent), row.reason)
    return "  ".join(_fit(v, w) for v, (_, w) in zip(values, _COLUMNS, strict=True)).rstrip()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: object) -> object:
    """A CSV cell a spreadsheet won't run: names come from Dataverse, and `=HYPERLINK(...)` is a name too."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


async def write_rows(rows: AsyncIterable[NoticeRow], out: TextIO, form: Format) -> int:
    """Write each row as it comes; returns how many. Times are UTC (ISO 8601 in CSV and JSON)."""
    count = 0
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n") if form == "csv" else None
    if writer is not None:
        writer.writeheader()
    elif form == "table":
        print("  ".join(_fit(t, w) for t, w in _COLUMNS).rstrip(), file=out)
    async for row in rows:
        count += 1
        if writer is not None:
            writer.writerow({k: _inert(v) for k, v in _fields(row).items()})
        elif form == "json":
            out.write(json.dumps(_fields(row)) + "\n")
        else:
            print(_table_line(row), file=out)
    if form == "table":
        print(f"{count} notice(s)" if count else "no notices", file=out)
    return count
