"""The rows a fix writes, as who confirmed it, and whether they still hold: the Dataverse side of `Fixer`.

A created filter's id is derived (uuid5), so a repeat answers 412: the row then counts as this fix only when
it is the person's own sync filter of the type (anyone may create a row under an id they can compute).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.clients.dataverse import DataverseClient, key_of
from bot.diagnosis import Report
from bot.diagnosis.fixes import Change, Fix, Value
from bot.errors import AlreadyExists
from bot.fixing.applied import Applied, NotApplicable

__all__ = ["ACTIVE", "FILTER_CHECKED", "FILTER_READ", "INACTIVE", "by_row", "in_effect", "write"]

INACTIVE: dict[str, Value] = {"statecode": 1, "statuscode": 2}  # a deactivated filter (userquery)
ACTIVE: dict[str, Value] = {"statecode": 0, "statuscode": 1}
# A filter's columns, read back: whose it is, what kind, whether it is on (and what it selects).
FILTER_CHECKED = ("_ownerid_value", "querytype", "returnedtypecode", "statecode")
FILTER_READ = (*FILTER_CHECKED, "fetchxml")


async def write(dataverse: DataverseClient, fix: Fix, by: str, report: Report) -> list[dict[str, str]]:
    """Write the fix's changes as `by`: one create per new row, one update per existing row."""
    written: list[dict[str, str]] = []
    for (table, row), changes in by_row(fix.changes).items():
        columns = {c.column: c.new for c in changes}
        if row is None:
            try:
                made = await dataverse.create_row(table, columns, caller=by)
                action = "created"
            except AlreadyExists:
                made = str(columns.get(key_of(table) or "", "")).lower()
                action = await _made_before(dataverse, table, made, columns, by, report)
            written.append({"table": table, "id": made, "action": action})
        else:
            await dataverse.update_row(table, row, columns, caller=by)
            written.append({"table": table, "id": row, "action": "updated"})
    return written


async def _made_before(
    dataverse: DataverseClient, table: str, row_id: str, columns: dict[str, Value], by: str, report: Report
) -> str:
    """After a 412 to a create (its id is taken): the row, read as `by` (the person), counts as this
    fix only when it is their own sync filter of the same type, as an earlier press (or this one,
    before its answer was lost) made it: "existed"; made the fix's filter again (as them) when it was
    turned off since ("activated") or its selection was changed ("updated").

    Raises:
        NotApplicable: it is not their filter (anyone may create a row under an id they can compute),
            or not a sync filter of this type.
    """
    found = (
        await dataverse.read_row(table, row_id, FILTER_READ, caller=by) if table == "userqueries" else None
    )
    if found is None or not _owned_by(found, report):
        raise NotApplicable(f"a filter with this fix's id ({row_id}) exists and is not {_whose(report)}")
    if any(found.get(c) != columns.get(c) for c in ("querytype", "returnedtypecode")):
        raise NotApplicable(
            f"a filter with this fix's id ({row_id}) exists and is not a sync filter for "
            f"{columns.get('returnedtypecode')}s"
        )
    fetchxml = (
        {} if found.get("fetchxml") == columns.get("fetchxml") else {"fetchxml": columns.get("fetchxml")}
    )
    if found.get("statecode") == 0 and not fetchxml:
        return "existed"
    await dataverse.update_row(table, row_id, {**fetchxml, **ACTIVE}, caller=by)
    return "activated" if found.get("statecode") != 0 else "updated"


async def in_effect(dataverse: DataverseClient, applied: Applied, report: Report) -> bool:
    """Whether what `applied` writes holds now, read back from Dataverse: each row it changes has the
    values it sets (a mailbox's, read as the app), and a filter it creates is the person's own and on
    (read as them)."""
    for (table, row), changes in by_row(applied.fix.changes).items():
        wanted: dict[str, Value] = {c.column: c.new for c in changes}
        row_id = row if row is not None else str(wanted.get(key_of(table) or ""))
        if row is None:
            wanted = {"statecode": 0}
        if table == "userqueries":
            found = await dataverse.read_row(table, row_id, FILTER_CHECKED, caller=applied.user)
            if found is None or not _owned_by(found, report):
                return False
        else:
            found = await dataverse.read_row(table, row_id, tuple(wanted))
        if found is None or any(found.get(column) != value for column, value in wanted.items()):
            return False
    return True


def by_row(changes: Sequence[Change]) -> dict[tuple[str, str | None], list[Change]]:
    rows: dict[tuple[str, str | None], list[Change]] = {}
    for change in changes:
        rows.setdefault((change.table, change.row), []).append(change)
    return rows


def _whose(report: Report) -> str:
    return f"{report.user.name}'s" if report.user.name else "theirs"


def _owned_by(row: Mapping[str, object], report: Report) -> bool:
    owner, person = str(row.get("_ownerid_value") or "").lower(), (report.user.systemuserid or "").lower()
    return bool(person) and owner == person
