"""Reading a fixture's content (design.md section 6): every check, in order, and the first problem found."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import FixtureError
from bot.ids import is_id
from bot.sandbox.schema import ENTITY_SETS, EntityMeta, Row, key_of

__all__ = ["Fixture", "read_fixture"]

Fail = Callable[[str], FixtureError]  # a problem -> the error that names the fixture and it

_LOOKUPS_TO_CHECK = {
    "mailboxes": ("_regardingobjectid_value",),
    "activityparties": ("_activityid_value",),
}
_QUERY_TABLES = ("userqueries", "savedqueries")
_GENERATED_KEYS = ("activityparties", "teammemberships")  # intersect-like rows: an id is made when missing


@dataclass(frozen=True)
class _Reference:
    """A column holding another row's id: `target` names the table it must be in (None: any id will do)."""

    table: str
    column: str
    target: str | None
    required: bool = False


_REFERENCES = (
    _Reference("teammemberships", "teamid", "teams", required=True),
    _Reference("teammemberships", "systemuserid", "systemusers", required=True),
    _Reference("systemusers", "_parentsystemuserid_value", "systemusers"),
    _Reference("systemusers", "_businessunitid_value", None),
    _Reference("appointments", "seriesid", "recurringappointmentmasters"),
)
_ORGANIZATION_COLUMNS: dict[str, type] = {  # organization columns the sandbox reads, and their types
    "requireapprovalforuseremail": bool,
    "requireapprovalforqueueemail": bool,
    "maxdepthforhierarchicalsecuritymodel": int,
}


@dataclass
class Fixture:
    """A fixture's content, checked: what an `Org` is made of."""

    tables: dict[str, list[Row]]
    events: dict[str, list[Row]]
    team_members: dict[str, list[Row]]
    fault_specs: list[dict[str, Any]]
    privileges: dict[str, frozenset[str]]
    anchor_day: date | None  # the day "$relative_to" names, if it names one
    sync_cycle_seconds: float | None = None  # "$sync_cycle_seconds": how often the sync cycle runs


def read_fixture(data: Any, source: str) -> Fixture:
    """Check a fixture's content.

    Raises:
        FixtureError: naming `source` and the first problem found.
    """

    def fail(problem: str) -> FixtureError:
        return FixtureError(f"{source}: {problem}")

    if not isinstance(data, dict):
        raise fail("the top level must be a JSON object of tables keyed by entity set name")
    tables = _tables(data, fail)
    _check_keys(tables, fail)
    _check_lookups(tables, fail)
    _check_references(tables, fail)
    _check_queries(tables, fail)
    _check_organization(tables["organizations"], fail)
    fault_specs = _fault_specs(data, fail)
    privileges = _privileges(data, fail)
    return Fixture(
        tables=tables,
        events=_graph_events(data.get("graph"), fail),
        team_members=_team_members(data.get("graph"), fail),
        fault_specs=fault_specs,
        privileges=privileges,
        anchor_day=_anchor_day(data.get("$relative_to"), fail),
        sync_cycle_seconds=_sync_cycle_seconds(data.get("$sync_cycle_seconds"), fail),
    )


def _tables(data: dict[str, Any], fail: Fail) -> dict[str, list[Row]]:
    """Every entity set (missing ones empty) and any other table the fixture has, rows copied."""
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
    return tables


def _check_keys(tables: dict[str, list[Row]], fail: Fail) -> None:
    """Each row of an entity set has a unique id as its key (activity parties and team memberships get one
    if they lack it)."""
    for name, meta in ENTITY_SETS.items():
        seen: set[str] = set()
        for index, row in enumerate(tables[name]):
            seen.add(_row_key(name, meta, index, row, seen, fail))


def _row_key(name: str, meta: EntityMeta, index: int, row: Row, seen: set[str], fail: Fail) -> str:
    if meta.key not in row and name in _GENERATED_KEYS:
        row[meta.key] = str(uuid.uuid4())
    value = row.get(meta.key)
    if not isinstance(value, str) or not is_id(value.strip("{}")):
        raise fail(f"{name}[{index}]: {meta.key} must be an id (hex digits and dashes), got {value!r}")
    if key_of(value) in seen:
        raise fail(f"{name}[{index}]: duplicate {meta.key} {value}")
    return key_of(value)


def _check_lookups(tables: dict[str, list[Row]], fail: Fail) -> None:
    for name, columns in _LOOKUPS_TO_CHECK.items():
        for index, row in enumerate(tables[name]):
            for column in columns:
                if row.get(column) is None:
                    raise fail(f"{name}[{index}]: {column} is required")


def _check_references(tables: dict[str, list[Row]], fail: Fail) -> None:
    """Each id-valued column in `_REFERENCES` holds an id, of a row its target table has."""
    for ref in _REFERENCES:
        known = {key_of(r[ENTITY_SETS[ref.target].key]) for r in tables[ref.target]} if ref.target else None
        for index, row in enumerate(tables[ref.table]):
            value = row.get(ref.column)
            if value is None and not ref.required:
                continue
            where = f"{ref.table}[{index}]: {ref.column}"
            if not isinstance(value, str) or not is_id(value.strip("{}")):
                raise fail(f"{where} must be an id (hex digits and dashes), got {value!r}")
            if known is not None and key_of(value) not in known:
                raise fail(f"{where} {value} names no row of {ref.target}")


def _check_organization(rows: list[Row], fail: Fail) -> None:
    """An org has one organization row; the columns the sandbox reads have their types."""
    if len(rows) > 1:
        raise fail(f"organizations has {len(rows)} rows; an org has one")
    for row in rows:
        for column, kind in _ORGANIZATION_COLUMNS.items():
            value = row.get(column)
            if value is not None and (
                not isinstance(value, kind) or isinstance(value, bool) != (kind is bool)
            ):
                raise fail(f"organizations[0]: {column} must be {kind.__name__}, got {value!r}")


def _check_queries(tables: dict[str, list[Row]], fail: Fail) -> None:
    for name in _QUERY_TABLES:
        for index, row in enumerate(tables[name]):
            if not isinstance(row.get("fetchxml"), str) or not row["fetchxml"].strip():
                raise fail(f"{name}[{index}]: fetchxml must be a non-empty string")


def _fault_specs(data: dict[str, Any], fail: Fail) -> list[dict[str, Any]]:
    faults = data.get("$faults", [])
    if not isinstance(faults, list) or not all(isinstance(x, dict) and "route" in x for x in faults):
        raise fail("$faults must be a list of objects, each with a 'route'")
    return faults


def _privileges(data: dict[str, Any], fail: Fail) -> dict[str, frozenset[str]]:
    privileges = data.get("$privileges", {})
    if not isinstance(privileges, dict) or not all(
        isinstance(v, list) and all(isinstance(p, str) for p in v) for v in privileges.values()
    ):
        raise fail('$privileges must map systemuserids to lists of privilege names ("prvReadActivity")')
    return {key_of(k): frozenset(v) for k, v in privileges.items()}


def _sync_cycle_seconds(value: Any, fail: Fail) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise fail(f"$sync_cycle_seconds must be a positive number of seconds, got {value!r}")
    return float(value)


def _anchor_day(anchor: Any, fail: Fail) -> date | None:
    if anchor is None:
        return None
    try:
        return datetime.fromisoformat(str(anchor).replace("Z", "+00:00")).date()
    except ValueError as exc:
        raise fail(f"$relative_to {anchor!r} is not an ISO 8601 date-time") from exc


def _team_members(graph: Any, fail: Fail) -> dict[str, list[Row]]:
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
        members[key_of(team_id)] = [dict(r) for r in rows]
    return members


def _graph_events(graph: Any, fail: Fail) -> dict[str, list[Row]]:
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
            _check_event(f"graph.users[{user_id!r}].events[{index}]", event, fail)
        events[key_of(user_id)] = [dict(e) for e in items]
    return events


def _check_event(where: str, event: Any, fail: Fail) -> None:
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
