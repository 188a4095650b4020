"""The personal sync filter that selects records like this one, by the person's role in it.

In the shape of Dynamics 365's default sync filters, built as XML (never pasted): `eq-userid` is the person
the filter belongs to (server-side sync runs it as them), `eq-userteams` the teams they are a member of.
The role, most telling first: for an appointment, organizer, required or optional attendee (an activity
party, as the default filters select appointments); then owner; then one of their teams as owner; else the
record alone. A recurring series is selected through its instances (appointments whose `seriesid` is it).

    chosen = selection(record)  # Selection(role="owner", name="Appointments I own", fetchxml="<fetch ...")
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from bot.diagnosis.facts import PARTICIPATION_ROLES, RecordFacts, RecordType

__all__ = [
    "NAME_LIMIT",
    "PARTY_ROLES",
    "PLURAL",
    "Selection",
    "describe_selection",
    "needs_team_check",
    "role_of",
    "selection",
    "team_selection",
]

PARTY_ROLES = ("organizer", "required_attendee", "optional_attendee")  # an appointment's, in this order
NAME_LIMIT = 200  # userquery.name's maximum length in Dataverse

_MASKS = {role: mask for mask, role in PARTICIPATION_ROLES.items()}
# Each type's key column and the column its default filters show first.
_COLUMNS: dict[RecordType, tuple[str, str]] = {
    "appointment": ("activityid", "subject"),
    "task": ("activityid", "subject"),
    "contact": ("contactid", "fullname"),
}
PLURAL: dict[str, str] = {"appointment": "appointments", "contact": "contacts", "task": "tasks"}
_PARTY_NAMES = {
    "organizer": "Appointments I organize",
    "required_attendee": "Appointments where I'm a required attendee",
    "optional_attendee": "Appointments where I'm an optional attendee",
}


@dataclass(frozen=True)
class Selection:
    """A filter to add: what it selects by (`role`: a party role, "owner", "team" or "record"), its name
    and its FetchXML. `key` tells one selection from another for the same person and type."""

    role: str
    name: str
    fetchxml: str
    key: str


def role_of(record: RecordFacts) -> str:
    """What a new filter would select `record` by (see the module's docstring)."""
    if record.type == "appointment":
        party = next((role for role in PARTY_ROLES if role in record.roles), None)
        if party is not None:
            return party
    if "owner" in record.roles:
        return "owner"
    return "team" if record.team_owned else "record"


def needs_team_check(record: RecordFacts) -> bool:
    """Whether only a team's ownership could still select `record` by role (so it is worth asking)."""
    return role_of(record) in ("team", "record")


def selection(record: RecordFacts) -> Selection:
    """The filter that selects records like `record` by the person's role in it."""
    return _select(record, role_of(record))


def team_selection(record: RecordFacts) -> Selection:
    """The filter "<type>s my teams own" as it would be proposed for `record`: run as the person and
    restricted to the record, it says whether one of their teams owns it."""
    return _select(record, "team")


def _select(record: RecordFacts, role: str) -> Selection:
    key_column, title = _COLUMNS[record.type]
    party = role in _PARTY_NAMES
    root = ET.Element(
        "fetch",
        {
            "version": "1.0",
            "output-format": "xml-platform",
            "mapping": "logical",
            "distinct": "true" if party else "false",  # a record with two matching parties comes back once
        },
    )
    entity = ET.SubElement(root, "entity", {"name": record.type})
    for column in (title, key_column):
        ET.SubElement(entity, "attribute", {"name": column})
    if party:
        link = ET.SubElement(
            entity,
            "link-entity",
            {"name": "activityparty", "from": "activityid", "to": "activityid", "alias": "party"},
        )
        where = ET.SubElement(link, "filter", {"type": "and"})
        _condition(where, "partyid", "eq-userid")
        _condition(where, "participationtypemask", "eq", str(_MASKS[role]))
        return Selection(role, _PARTY_NAMES[role], _text(root), role)
    where = ET.SubElement(entity, "filter", {"type": "and"})
    if role == "record":
        # A series is no appointment row: its instances are, and they name it in `seriesid`.
        _condition(where, "seriesid" if record.recurrence == "series" else key_column, "eq", record.id)
        return Selection(role, _record_name(record), _text(root), f"record:{record.id}")
    _condition(where, "ownerid", "eq-userid" if role == "owner" else "eq-userteams")
    plural = PLURAL[record.type].capitalize()
    if record.type == "contact" and record.statecode == 0:
        # As the default contact filter: active ones (an inactive contact would not be selected).
        _condition(where, "statecode", "eq", "0")
        plural = "Active contacts"
    return Selection(role, f"{plural} {'I own' if role == 'owner' else 'my teams own'}", _text(root), role)


def _condition(parent: ET.Element, attribute: str, operator: str, value: str | None = None) -> None:
    attributes = {"attribute": attribute, "operator": operator}
    if value is not None:
        attributes["value"] = value
    ET.SubElement(parent, "condition", attributes)


def _text(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode")


def _record_name(record: RecordFacts) -> str:
    what = "recurring appointment" if record.recurrence == "series" else record.type
    name = f"This {what}: {record.subject}" if record.subject else f"This {what} ({record.id})"
    return name if len(name) <= NAME_LIMIT else name[: NAME_LIMIT - 1] + "…"


_WHO = {
    "7": "you organize",
    "5": "where you're a required attendee",
    "6": "where you're an optional attendee",
}


def describe_selection(fetchxml: object, record_type: str | None) -> str:
    """What a sync filter's FetchXML selects, in words ("appointments you own"): the shapes `selection`
    writes (by role, by team, one record); anything else is named as what it is. The XML is parsed with
    defusedxml: it may come from a card's data."""
    plural = PLURAL.get(record_type or "", "records")
    try:
        root = SafeET.fromstring(fetchxml) if isinstance(fetchxml, str) else None
    except (ET.ParseError, DefusedXmlException):
        root = None
    if root is None:
        return f"the {plural} its query names"
    conditions = {(c.get("attribute"), c.get("operator")): c.get("value") for c in root.iter("condition")}
    active = "active " if conditions.get(("statecode", "eq")) == "0" else ""
    if ("ownerid", "eq-userid") in conditions:
        return f"{active}{plural} you own"
    if ("ownerid", "eq-userteams") in conditions:
        return f"{active}{plural} your teams own"
    if ("partyid", "eq-userid") in conditions:
        who = _WHO.get(conditions.get(("participationtypemask", "eq")) or "")
        if who:
            return f"{active}{plural} {who}"
    if any(op == "eq" and attr in ("activityid", "contactid", "seriesid") for attr, op in conditions):
        return (
            "only this recurring series"
            if ("seriesid", "eq") in conditions
            else f"only this {record_type or 'record'}"
        )
    return f"the {plural} its query names"
