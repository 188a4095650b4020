"""Dataverse rows as the core's facts: where each record type lives, and the row -> fact conversions.

Pure: no I/O. `bot.clients.dataverse` asks the Web API for these rows and re-exports the public names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bot.diagnosis.facts import PARTICIPATION_ROLES, MailboxFacts, RecordFacts, RecordType, UserFacts

__all__ = [
    "ENTITIES",
    "MAILBOX_NAV",
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
        (*_ACTIVITY_COLUMNS, "globalobjectid", "modifiedon"),
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


@dataclass(frozen=True)
class SyncFilter:
    """A synchronization filter (userquery or savedquery with querytype 256)."""

    id: str
    name: str
    origin: Literal["user", "system"]
    returned_type: str
    active: bool
    fetchxml: str


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
        last_sync_error=error,
    )


def record_facts(info: EntityInfo, row: Row, systemuserid: str) -> RecordFacts:
    """A record row (with its expanded activity parties) as facts, with this user's roles on it."""
    user = systemuserid.lower()
    roles: list[str] = []
    if str(row.get("_ownerid_value", "")).lower() == user:
        roles.append("owner")
    for party in row.get(info.parties or "", None) or []:
        if not isinstance(party, dict) or str(party.get("_partyid_value", "")).lower() != user:
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
    )


def sync_filter(row: Row, key: str, origin: Literal["user", "system"]) -> SyncFilter:
    """A userquery or savedquery row (`key` is its id column) as a sync filter."""
    return SyncFilter(
        id=str(row.get(key, "")),
        name=str(row.get("name") or "(unnamed filter)"),
        origin=origin,
        returned_type=str(row.get("returnedtypecode") or ""),
        active=row.get("statecode", 0) == 0,
        fetchxml=str(row.get("fetchxml") or ""),
    )
