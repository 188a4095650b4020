"""A Dynamics 365 org held in memory, loaded from a fixture file (design.md section 6)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.errors import FixtureError
from bot.sandbox.fixture import read_fixture
from bot.sandbox.schema import ENTITY_SETS, NAVIGATIONS, EntityMeta, Navigation, Row
from bot.sandbox.schema import LOGICAL_TO_SET as LOGICAL_TO_SET  # re-exported (the schema is its own module)
from bot.sandbox.schema import key_of as _key

__all__ = ["ENTITY_SETS", "NAVIGATIONS", "SAMPLE_ORG", "EntityMeta", "Navigation", "Org", "load_fixture"]

SAMPLE_ORG = Path(__file__).with_name("sample_org.json")

# Who may read a record (a simple model of Dataverse's privileges): its owner (a user, or a team the reader
# is a member of) and, for activities, its parties; everyone whose "$privileges" hold the table's Read
# privilege (organization-wide read).
READ_PRIVILEGES = {
    "appointments": "prvReadActivity",
    "recurringappointmentmasters": "prvReadActivity",
    "tasks": "prvReadActivity",
    "contacts": "prvReadContact",
}
_PARTIES = {
    "appointments": "appointment_activity_parties",
    "recurringappointmentmasters": "recurringappointmentmaster_activity_parties",
    "tasks": "task_activity_parties",
}
# Hierarchy security's Depth when the org doesn't say (organization.maxdepthforhierarchicalsecuritymodel):
# the levels of reports below a manager that the hierarchy operators reach.
DEFAULT_HIERARCHY_DEPTH = 3


@dataclass
class Org:
    """The tables of one org, keyed by entity set name, and each Entra user's Exchange events."""

    tables: dict[str, list[Row]]
    events: dict[str, list[Row]] = field(default_factory=dict)  # lower-case Entra id -> Graph events
    team_members: dict[str, list[Row]] = field(default_factory=dict)  # team (group) id -> Graph members
    source: str = "<memory>"
    fault_specs: list[dict[str, Any]] = field(default_factory=list)  # the fixture's "$faults" (see Fault)
    privileges: dict[str, frozenset[str]] = field(default_factory=dict)  # systemuserid -> "$privileges"
    sync_cycle_seconds: float | None = None  # "$sync_cycle_seconds" (see sync.py)
    _indexes: dict[tuple[str, str], tuple[int, dict[str, list[Row]]]] = field(
        default_factory=dict, repr=False
    )

    def rows(self, entity_set: str) -> list[Row]:
        return self.tables.get(entity_set, [])

    def by_key(self, entity_set: str, key: str) -> Row | None:
        meta = ENTITY_SETS.get(entity_set)
        if meta is None:
            return None
        wanted = _key(key)
        return next((r for r in self.rows(entity_set) if _key(r.get(meta.key, "")) == wanted), None)

    def navigate(self, entity_set: str, row: Row, name: str) -> list[Row] | None:
        nav = NAVIGATIONS.get((entity_set, name))
        if nav is None:
            return None
        local = row.get(nav.local)
        if local is None:
            return []
        return list(self._index(nav.target, nav.remote).get(_key(local), []))

    def _index(self, entity_set: str, column: str) -> dict[str, list[Row]]:
        """Rows by one column's value, rebuilt when the table grows or shrinks (tests add rows)."""
        rows = self.rows(entity_set)
        cached = self._indexes.get((entity_set, column))
        if cached is not None and cached[0] == len(rows):
            return cached[1]
        index: dict[str, list[Row]] = {}
        for candidate in rows:
            if candidate.get(column) is not None:
                index.setdefault(_key(candidate[column]), []).append(candidate)
        self._indexes[(entity_set, column)] = (len(rows), index)
        return index

    def may_read(self, entity_set: str, row: Row, systemuserid: str) -> bool:
        """Whether `systemuserid` may read `row` (see READ_PRIVILEGES); tables outside it are open."""
        privilege = READ_PRIVILEGES.get(entity_set)
        caller = _key(systemuserid)
        if privilege is None or privilege in self.privileges.get(caller, frozenset()):
            return True
        owner = _key(row.get("_ownerid_value") or "")
        if owner == caller or owner in self.teams_of(caller):
            return True
        parties = self.navigate(entity_set, row, _PARTIES[entity_set]) if entity_set in _PARTIES else []
        return any(_key(p.get("_partyid_value") or "") == caller for p in parties or [])

    def teams_of(self, systemuserid: str) -> frozenset[str]:
        """The teamids (as keys) of the teams `systemuserid` is a member of ("teammemberships")."""
        memberships = self._index("teammemberships", "systemuserid").get(_key(systemuserid), [])
        return frozenset(_key(m["teamid"]) for m in memberships if m.get("teamid"))

    def reports_of(self, systemuserid: str) -> frozenset[str]:
        """The systemuserids (as keys) below `systemuserid` in the manager hierarchy
        (`_parentsystemuserid_value`), down to the org's hierarchy depth; a cycle in the data ends it."""
        managers = self._index("systemusers", "_parentsystemuserid_value")
        found: set[str] = set()
        level = {_key(systemuserid)}
        for _ in range(self.hierarchy_depth()):
            level = {_key(r["systemuserid"]) for m in level for r in managers.get(m, [])} - found
            level.discard(_key(systemuserid))
            if not level:
                break
            found |= level
        return frozenset(found)

    def hierarchy_depth(self) -> int:
        """How many levels of reports the hierarchy operators reach: the organization's setting, else 3."""
        organizations = self.rows("organizations")
        depth = organizations[0].get("maxdepthforhierarchicalsecuritymodel") if organizations else None
        if isinstance(depth, int) and not isinstance(depth, bool) and depth >= 0:
            return depth
        return DEFAULT_HIERARCHY_DEPTH

    def business_unit_of(self, systemuserid: str) -> str | None:
        """The user's business unit id (as a key), None when the fixture doesn't give one."""
        user = self.by_key("systemusers", systemuserid)
        unit = user.get("_businessunitid_value") if user is not None else None
        return _key(unit) if unit else None

    def user_by_aad(self, aad_object_id: str) -> Row | None:
        wanted = _key(aad_object_id)
        return next(
            (
                r
                for r in self.rows("systemusers")
                if _key(r.get("azureactivedirectoryobjectid") or "") == wanted
            ),
            None,
        )

    @classmethod
    def from_dict(cls, data: Any, source: str = "<memory>", *, today: date | None = None) -> Org:
        """Validate a fixture's content.

        A fixture may say `"$relative_to": "<date-time>"`: every date-time in it then moves by whole days
        so that that day falls on `today` (default: today, UTC), and its stories stay current.

        Raises:
            FixtureError: naming `source` and the first problem found.
        """
        fixture = read_fixture(data, source)
        org = cls(
            tables=fixture.tables,
            events=fixture.events,
            team_members=fixture.team_members,
            source=source,
            fault_specs=fixture.fault_specs,
            privileges=fixture.privileges,
            sync_cycle_seconds=fixture.sync_cycle_seconds,
        )
        if fixture.anchor_day is not None:
            org.shift_days(((today or datetime.now(UTC).date()) - fixture.anchor_day).days)
        return org

    def shift_days(self, days: int) -> None:
        """Move every date-time value in the org by `days` days."""
        if days == 0:
            return
        delta = timedelta(days=days)
        for rows in self.tables.values():
            for row in rows:
                for column, value in row.items():
                    row[column] = _shifted(value, delta)
        for events in self.events.values():
            for event in events:
                for edge in ("start", "end"):
                    event[edge] = {**event[edge], "dateTime": _shifted(event[edge]["dateTime"], delta)}


_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _shifted(value: Any, delta: timedelta) -> Any:
    if not isinstance(value, str) or not _DATETIME.match(value):
        return value
    try:
        moved = datetime.fromisoformat(value[:19]) + delta
    except ValueError:
        return value
    return moved.strftime("%Y-%m-%dT%H:%M:%S") + value[19:]


def load_fixture(path: str | Path) -> Org:
    """Load and validate a fixture file.

    Raises:
        FixtureError: the file is missing, not JSON, or not in the fixture format; the message names the file.
    """
    location = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise FixtureError(f"{location}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise FixtureError(f"{location}: can't be read ({exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FixtureError(
            f"{location}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    return Org.from_dict(data, source=location)
