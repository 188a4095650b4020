"""What the sandbox knows of Dataverse's schema: its entity sets, their keys and navigation properties."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ENTITY_SETS", "LOGICAL_TO_SET", "NAVIGATIONS", "EntityMeta", "Navigation", "Row", "key_of"]

Row = dict[str, Any]


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
    "recurringappointmentmasters": EntityMeta("recurringappointmentmaster", "activityid"),
    "teams": EntityMeta("team", "teamid"),
    "teammemberships": EntityMeta("teammembership", "teammembershipid"),
    "organizations": EntityMeta("organization", "organizationid"),
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
    ("recurringappointmentmasters", "recurringappointmentmaster_activity_parties"): Navigation(
        "activityparties", "activityid", "_activityid_value", True
    ),
}


def key_of(value: Any) -> str:
    """An id as the org compares it: without braces, lower case."""
    return str(value).strip("{}").lower()
