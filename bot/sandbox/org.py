"""A Dynamics 365 org held in memory, loaded from a fixture file (design.md section 6)."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import FixtureError
from bot.ids import is_id

__all__ = ["ENTITY_SETS", "NAVIGATIONS", "SAMPLE_ORG", "EntityMeta", "Navigation", "Org", "load_fixture"]

Row = dict[str, Any]
SAMPLE_ORG = Path(__file__).with_name("sample_org.json")


@dataclass(frozen=True)
class EntityMeta:
    logical_name: str
    key: str


ENTITY_SETS: dict[str, EntityMeta] = {
    "systemusers": EntityMeta("systemuser", "systemuserid"),
    "mailboxes": EntityMeta("mailbox", "mailboxid"),
    "appointments": EntityMeta("appointment", "activityid"),
    "tasks": EntityMeta("task", "activityid"),
    "contacts": EntityMeta("contact", "contactid"),
    "activityparties": EntityMeta("activityparty", "activitypartyid"),
    "userqueries": EntityMeta("userquery", "userqueryid"),
    "savedqueries": EntityMeta("savedquery", "savedqueryid"),
}
LOGICAL_TO_SET = {meta.logical_name: name for name, meta in ENTITY_SETS.items()}


@dataclass(frozen=True)
class Navigation:
    """A navigation property: rows of `target` whose `remote` column equals this row's `local` column."""

    target: str
    local: str
    remote: str
    many: bool


NAVIGATIONS: dict[tuple[str, str], Navigation] = {
    ("systemusers", "mailbox_regarding_systemuser"): Navigation(
        "mailboxes", "systemuserid", "_regardingobjectid_value", True
    ),
    ("systemusers", "defaultmailbox"): Navigation("mailboxes", "_defaultmailbox_value", "mailboxid", False),
    ("mailboxes", "regardingobjectid_systemuser"): Navigation(
        "systemusers", "_regardingobjectid_value", "systemuserid", False
    ),
    ("appointments", "appointment_activity_parties"): Navigation(
        "activityparties", "activityid", "_activityid_value", True
    ),
    ("tasks", "task_activity_parties"): Navigation(
        "activityparties", "activityid", "_activityid_value", True
    ),
}

# Who may read a record (a simple model of Dataverse's privileges): its owner and, for activities, its
# parties; everyone whose "$privileges" hold the table's Read privilege (organization-wide read).
READ_PRIVILEGES = {
    "appointments": "prvReadActivity",
    "tasks": "prvReadActivity",
    "contacts": "prvReadContact",
}
_PARTIES = {"appointments": "appointment_activity_parties", "tasks": "task_activity_parties"}

_LOOKUPS_TO_CHECK = {
    "mailboxes": ("_regardingobjectid_value",),
    "activityparties": ("_activityid_value",),
}


def _key(value: Any) -> str:
    return str(value).strip("{}").lower()


@dataclass
class Org:
    """The tables of one org, keyed by entity set name, and each Entra user's Exchange events."""

    tables: dict[str, list[Row]]
    events: dict[str, list[Row]] = field(default_factory=dict)  # lower-case Entra id -> Graph events
    team_members: dict[str, list[Row]] = field(default_factory=dict)  # team (group) id -> Graph members
    source: str = "<memory>"
    fault_specs: list[dict[str, Any]] = field(default_factory=list)  # the fixture's "$faults" (see Fault)
    privileges: dict[str, frozenset[str]] = field(default_factory=dict)  # systemuserid -> "$privileges"
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
        if _key(row.get("_ownerid_value") or "") == caller:
            return True
        parties = self.navigate(entity_set, row, _PARTIES[entity_set]) if entity_set in _PARTIES else []
        return any(_key(p.get("_partyid_value") or "") == caller for p in parties or [])

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

        def fail(problem: str) -> FixtureError:
            return FixtureError(f"{source}: {problem}")

        if not isinstance(data, dict):
            raise fail("the top level must be a JSON object of tables keyed by entity set name")
        tables: dict[str, list[Row]] = {name: [] for name in ENTITY_SETS}
        for name, rows in data.items():
            if name == "graph" or name.startswith("$"):
                continue
            if not isinstance(rows, list):
                raise fail(f"table {name!r} must be a list of rows")
            for index, row in enumerate(rows):
                if not isinstance(row, dict):
                    raise fail(f"{name}[{index}] must be an object")
            tables[name] = [dict(r) for r in rows]
        for name, meta in ENTITY_SETS.items():
            seen: set[str] = set()
            for index, row in enumerate(tables[name]):
                if meta.key not in row and name == "activityparties":
                    row[meta.key] = str(uuid.uuid4())
                value = row.get(meta.key)
                if not isinstance(value, str) or not is_id(value.strip("{}")):
                    raise fail(
                        f"{name}[{index}]: {meta.key} must be an id (hex digits and dashes), got {value!r}"
                    )
                if _key(value) in seen:
                    raise fail(f"{name}[{index}]: duplicate {meta.key} {value}")
                seen.add(_key(value))
        for name, columns in _LOOKUPS_TO_CHECK.items():
            for index, row in enumerate(tables[name]):
                for column in columns:
                    if row.get(column) is None:
                        raise fail(f"{name}[{index}]: {column} is required")
        for name in ("userqueries", "savedqueries"):
            for index, row in enumerate(tables[name]):
                if not isinstance(row.get("fetchxml"), str) or not row["fetchxml"].strip():
                    raise fail(f"{name}[{index}]: fetchxml must be a non-empty string")
        faults = data.get("$faults", [])
        if not isinstance(faults, list) or not all(isinstance(x, dict) and "route" in x for x in faults):
            raise fail("$faults must be a list of objects, each with a 'route'")
        privileges = data.get("$privileges", {})
        if not isinstance(privileges, dict) or not all(
            isinstance(v, list) and all(isinstance(p, str) for p in v) for v in privileges.values()
        ):
            raise fail('$privileges must map systemuserids to lists of privilege names ("prvReadActivity")')
        org = cls(
            tables=tables,
            events=_graph_events(data.get("graph"), fail),
            team_members=_team_members(data.get("graph"), fail),
            source=source,
            fault_specs=faults,
            privileges={_key(k): frozenset(v) for k, v in privileges.items()},
        )
        anchor = data.get("$relative_to")
        if anchor is not None:
            try:
                anchor_day = datetime.fromisoformat(str(anchor).replace("Z", "+00:00")).date()
            except ValueError as exc:
                raise fail(f"$relative_to {anchor!r} is not an ISO 8601 date-time") from exc
            org.shift_days(((today or datetime.now(UTC).date()) - anchor_day).days)
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


def _team_members(graph: Any, fail: Any) -> dict[str, list[Row]]:
    """Optional `graph.teams`: {team id: {"members": [{"userId", "displayName", "roles": ["owner"]}]}}."""
    teams = graph.get("teams") if isinstance(graph, dict) else None
    if teams is None:
        return {}
    if not isinstance(teams, dict):
        raise fail("graph.teams must be an object keyed by team (group) id")
    members: dict[str, list[Row]] = {}
    for team_id, entry in teams.items():
        rows = entry.get("members") if isinstance(entry, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "userId" in r for r in rows):
            raise fail(f"graph.teams[{team_id!r}] must have a 'members' list of objects with a userId")
        members[_key(team_id)] = [dict(r) for r in rows]
    return members


def _graph_events(graph: Any, fail: Any) -> dict[str, list[Row]]:
    if graph is None:
        return {}
    users = graph.get("users") if isinstance(graph, dict) else None
    if not isinstance(users, dict):
        raise fail("graph must be an object with a 'users' object keyed by Entra object id")
    events: dict[str, list[Row]] = {}
    for user_id, entry in users.items():
        items = entry.get("events") if isinstance(entry, dict) else None
        if not isinstance(items, list):
            raise fail(f"graph.users[{user_id!r}] must have an 'events' list")
        for index, event in enumerate(items):
            where = f"graph.users[{user_id!r}].events[{index}]"
            if not isinstance(event, dict):
                raise fail(f"{where} must be an object")
            for edge in ("start", "end"):
                value = event.get(edge)
                if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
                    raise fail(f"{where}.{edge} must be {{'dateTime': ..., 'timeZone': ...}}")
                zone = value.get("timeZone") or "UTC"
                try:
                    ZoneInfo(zone)
                except (ZoneInfoNotFoundError, ValueError) as exc:
                    raise fail(f"{where}.{edge}.timeZone {zone!r} is not an IANA time zone or UTC") from exc
        events[_key(user_id)] = [dict(e) for e in items]
    return events


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
