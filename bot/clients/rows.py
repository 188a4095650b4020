"""Dataverse rows as the core's facts: where each record type lives, and the row -> fact conversions.

Pure: no I/O. `bot.clients.dataverse` asks the Web API for these rows and re-exports the public names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bot.diagnosis.facts import (
    PARTICIPATION_ROLES,
    MailboxFacts,
    RecordFacts,
    RecordType,
    Recurrence,
    UserFacts,
)

__all__ = [
    "ENTITIES",
    "MAILBOX_NAV",
    "ORGANIZER",
    "SERIES",
    "EntityInfo",
    "Row",
    "SyncFilter",
    "mailbox_facts",
    "parse_datetime",
    "pick_mailbox",
    "record_facts",
    "sync_filter",
    "user_facts",
]

Row = dict[str, Any]

MAILBOX_NAV = "mailbox_regarding_systemuser"  # a systemuser's mailboxes, expanded into its row


@dataclass(frozen=True)
class EntityInfo:
    """Where a record type lives in the Web API."""

    logical_name: RecordType
    entity_set: str
    key: str
    title: str
    parties: str | None  # collection-valued navigation to activityparty, None for contacts
    columns: tuple[str, ...]


# What appointments and tasks (activities) both have, in the order they are selected.
_ACTIVITY_COLUMNS = (
    "activityid",
    "subject",
    "scheduledstart",
    "scheduledend",
    "_ownerid_value",
    "statecode",
    "statuscode",
)

ENTITIES: dict[RecordType, EntityInfo] = {
    "appointment": EntityInfo(
        "appointment",
        "appointments",
        "activityid",
        "subject",
        "appointment_activity_parties",
        (*_ACTIVITY_COLUMNS, "globalobjectid", "modifiedon", "instancetypecode", "seriesid"),
    ),
    "task": EntityInfo(
        "task", "tasks", "activityid", "subject", "task_activity_parties", (*_ACTIVITY_COLUMNS, "modifiedon")
    ),
    "contact": EntityInfo(
        "contact",
        "contacts",
        "contactid",
        "fullname",
        None,
        ("contactid", "fullname", "_ownerid_value", "statecode", "statuscode", "modifiedon"),
    ),
}


# A recurring appointment's series (its master row); its instances are appointments whose `seriesid` is it.
SERIES = EntityInfo(
    "appointment",
    "recurringappointmentmasters",
    "activityid",
    "subject",
    "recurringappointmentmaster_activity_parties",
    (*_ACTIVITY_COLUMNS, "globalobjectid", "modifiedon"),
)


@dataclass(frozen=True)
class SyncFilter:
    """A synchronization filter (userquery or savedquery with querytype 256)."""

    id: str
    name: str
    origin: Literal["user", "system"]
    returned_type: str
    active: bool
    fetchxml: str
    owner_id: str | None = None  # read when the filters were read as their owner, to keep only theirs
    modified_on: datetime | None = None  # which of a person's inactive filters to turn back on first


def parse_datetime(value: object) -> datetime | None:
    """A Web API date-time (UTC, ISO 8601) as an aware datetime; None for null or unparseable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def user_facts(row: Row) -> UserFacts:
    """A systemuser row as facts."""
    return UserFacts(
        systemuserid=str(row.get("systemuserid", "")).lower(),
        aad_object_id=_str(row.get("azureactivedirectoryobjectid")),
        name=_str(row.get("fullname")),
        email=_str(row.get("internalemailaddress")) or _str(row.get("domainname")),
        is_disabled=_bool(row.get("isdisabled")),
    )


def pick_mailbox(row: Row) -> MailboxFacts | None:
    """The user's mailbox among those expanded into their row: the default one first, then an active one."""
    mailboxes = [m for m in row.get(MAILBOX_NAV) or [] if isinstance(m, dict)]
    if not mailboxes:
        return None
    default = str(row.get("_defaultmailbox_value") or "").lower()
    mailboxes.sort(key=lambda m: (str(m.get("mailboxid", "")).lower() != default, m.get("statecode") != 0))
    return mailbox_facts(mailboxes[0])


def mailbox_facts(m: Row) -> MailboxFacts:
    """A mailbox row as facts."""
    error: dict[str, str | int] = {}
    for column in (
        "lastsyncerrorcode",
        "lastsyncerroroccurredon",
        "lastsyncerrorcount",
        "itemsfailedforlastsync",
    ):
        value = m.get(column)
        if isinstance(value, str | int) and not isinstance(value, bool):
            error[column] = value
    return MailboxFacts(
        mailboxid=str(m.get("mailboxid", "")).lower(),
        email=_str(m.get("emailaddress")),
        statecode=_int(m.get("statecode")),
        approval=_int(m.get("emailrouteraccessapproval")),
        approved_by_o365_admin=_bool(m.get("isemailaddressapprovedbyo365admin")),
        act_delivery=_int(m.get("actdeliverymethod")),
        act_status=_int(m.get("actstatus")),
        enabled_for_act=_bool(m.get("enabledforact")),
        test_scheduled=_bool(m.get("testemailconfigurationscheduled")),
        test_completed_on=parse_datetime(m.get("testmailboxaccesscompletedon")),
        last_successful_sync=parse_datetime(m.get("lastsuccessfulsynccompletedon")),
        primary_for_exchange=_bool(m.get("orgmarkedasprimaryforexchangesync")),
        last_sync_error=error,
    )


# 3 Recurring Exception, 4 Recurring Future Exception: occurrences changed on their own.
_RECURRENCE: dict[int, Recurrence] = {0: "single", 1: "series", 2: "instance", 3: "exception", 4: "exception"}
ORGANIZER = 7  # activityparty.participationtypemask


def record_facts(info: EntityInfo, row: Row, systemuserid: str) -> RecordFacts:
    """A record row (with its expanded activity parties) as facts, with this user's roles on it."""
    user = systemuserid.lower()
    roles: list[str] = []
    if str(row.get("_ownerid_value", "")).lower() == user:
        roles.append("owner")
    parties = row.get(info.parties) if info.parties else None
    party_rows = [p for p in parties if isinstance(p, dict)] if isinstance(parties, list) else []
    for party in party_rows:
        if str(party.get("_partyid_value", "")).lower() != user:
            continue
        role = PARTICIPATION_ROLES.get(_int(party.get("participationtypemask")) or 0)
        if role and role not in roles:
            roles.append(role)
    return RecordFacts(
        type=info.logical_name,
        id=str(row.get(info.key, "")).lower(),
        subject=_str(row.get(info.title)),
        start=parse_datetime(row.get("scheduledstart")),
        end=parse_datetime(row.get("scheduledend")),
        statecode=_int(row.get("statecode")),
        statuscode=_int(row.get("statuscode")),
        modified_on=parse_datetime(row.get("modifiedon")),
        roles=tuple(roles),
        global_object_id=_str(row.get("globalobjectid")),
        # Parties not expanded (a contact, or a row read without them): whether there is an organizer is unknown.
        has_organizer=(
            any(_int(p.get("participationtypemask")) == ORGANIZER for p in party_rows)
            if isinstance(parties, list)
            else None
        ),
        recurrence=_recurrence(info, row),
        series_id=(_str(row.get("seriesid")) or "").lower() or None,
    )


def _recurrence(info: EntityInfo, row: Row) -> Recurrence | None:
    """Whether the row is a series, one of its instances, or a single appointment (None: not recurring kind)."""
    if info.entity_set == SERIES.entity_set:
        return "series"
    if "instancetypecode" not in info.columns:
        return None
    return _RECURRENCE.get(_int(row.get("instancetypecode")) or 0, "single")


def sync_filter(row: Row, key: str, origin: Literal["user", "system"]) -> SyncFilter:
    """A userquery or savedquery row (`key` is its id column) as a sync filter."""
    return SyncFilter(
        id=str(row.get(key, "")),
        name=str(row.get("name") or "(unnamed filter)"),
        origin=origin,
        returned_type=str(row.get("returnedtypecode") or ""),
        active=row.get("statecode", 0) == 0,
        fetchxml=str(row.get("fetchxml") or ""),
        owner_id=str(row.get("_ownerid_value") or "").lower() or None,
        modified_on=parse_datetime(row.get("modifiedon")),
    )
