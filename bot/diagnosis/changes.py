"""What a one-click fix changes in Dataverse, as data: `Change` (one column of one row) and `Fix`.

Apart from `bot.diagnosis.fixes` (which proposes them) so that `report` can carry fixes on its findings
without importing what proposes them. Import them from `bot.diagnosis.fixes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = ["FILTER_FIXES", "FIX_IDS", "Change", "Fix", "FixId", "Value", "Who"]

FixId = Literal[
    "activate-filter", "add-filter", "schedule-mailbox-test", "set-act-server-side-sync", "approve-email"
]
FIX_IDS: tuple[FixId, ...] = get_args(FixId)
# The fixes that change the person's own sync filters: theirs alone to make, and the ones Undo reverses.
FILTER_FIXES: frozenset[FixId] = frozenset({"activate-filter", "add-filter"})
# "self": the person applies it as themselves (their own filters); "agent": a helpdesk agent applies it
# as themselves (the mailbox): Dataverse decides, either way, whether they may.
Who = Literal["self", "agent"]
Value = str | int | bool | None


@dataclass(frozen=True)
class Change:
    """One column of one row: `row` is None for a row the fix creates (then `old` is None)."""

    table: str  # the entity set name, e.g. "userqueries", "mailboxes"
    row: str | None
    column: str
    old: Value
    new: Value

    def to_dict(self) -> dict[str, Value]:
        return {"table": self.table, "id": self.row, "column": self.column, "from": self.old, "to": self.new}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Change:
        """Raises: ValueError when `data` is not a change `to_dict` wrote."""
        table, row, column = data.get("table"), data.get("id"), data.get("column")
        if (
            not isinstance(table, str)
            or not isinstance(column, str)
            or not (row is None or isinstance(row, str))
        ):
            raise ValueError("a change needs a table, a column and an id (or null)")
        return cls(
            table=table, row=row, column=column, old=_value(data.get("from")), new=_value(data.get("to"))
        )


@dataclass(frozen=True)
class Fix:
    """The documented fix for one fail finding, as the exact changes it makes."""

    id: FixId
    finding: str
    title: str
    who: Who
    changes: tuple[Change, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "finding": self.finding,
            "title": self.title,
            "who": self.who,
            "changes": [c.to_dict() for c in self.changes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Fix:
        """Raises: ValueError when `data` is not a fix `to_dict` wrote."""
        fix_id = next((f for f in FIX_IDS if f == data.get("id")), None)
        who = next((w for w in get_args(Who) if w == data.get("who")), None)
        finding, title, changes = data.get("finding"), data.get("title"), data.get("changes")
        if fix_id is None or who is None or not isinstance(finding, str) or not isinstance(title, str):
            raise ValueError("not a fix")
        if not isinstance(changes, list) or not all(isinstance(c, Mapping) for c in changes):
            raise ValueError("a fix's changes must be a list of objects")
        return cls(
            id=fix_id,
            finding=finding,
            title=title,
            who=who,
            changes=tuple(Change.from_dict(c) for c in changes),
        )


def _value(value: object) -> Value:
    if value is None or isinstance(value, str | int | bool):
        return value
    raise ValueError("a change's values are strings, numbers, booleans or null")
