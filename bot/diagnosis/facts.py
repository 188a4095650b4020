"""What Sync Doctor learned about one user, their mailbox and one record: the input of `diagnose`.

Plain values only. The clients fill these in from Dataverse and Graph; the rules read them. A field is
None when Dataverse returned no value for it (null columns are common: never guess a default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

__all__ = [
    "ACT_DELIVERY",
    "ACT_STATUS",
    "APPROVAL",
    "PARTICIPATION_ROLES",
    "RECORD_TYPES",
    "ExchangeFacts",
    "Facts",
    "FilterFacts",
    "MailboxFacts",
    "RecordFacts",
    "RecordType",
    "Recurrence",
    "UnreadableRecord",
    "UserFacts",
]

RecordType = Literal["appointment", "contact", "task"]
# appointment.instancetypecode as words; "series" is a recurringappointmentmaster row.
Recurrence = Literal["single", "series", "instance", "exception"]
RECORD_TYPES: tuple[RecordType, ...] = ("appointment", "contact", "task")

# mailbox.actdeliverymethod (Appointments, Contacts, and Tasks). Not the email columns' numbering.
ACT_DELIVERY = {0: "Microsoft Dynamics 365 for Outlook", 1: "Server-Side Synchronization", 2: "None"}
ACT_OUTLOOK, ACT_SSS, ACT_NONE = 0, 1, 2
# mailbox.actstatus
ACT_STATUS = {0: "Not Run", 1: "Success", 2: "Failure"}
STATUS_NOT_RUN, STATUS_SUCCESS, STATUS_FAILURE = 0, 1, 2
# mailbox.emailrouteraccessapproval
APPROVAL = {0: "Empty", 1: "Approved", 2: "Pending Approval", 3: "Rejected"}
APPROVED = 1

# activityparty.participationtypemask -> the role name shown as evidence.
PARTICIPATION_ROLES = {
    1: "sender",
    2: "to",
    3: "cc",
    4: "bcc",
    5: "required_attendee",
    6: "optional_attendee",
    7: "organizer",
    8: "regarding",
    9: "owner",
    10: "resource",
    11: "customer",
    12: "chat_participant",
    13: "related",
}


@dataclass(frozen=True)
class UserFacts:
    """The Dataverse user (systemuser) behind a Teams user."""

    systemuserid: str
    aad_object_id: str | None
    name: str | None
    email: str | None
    is_disabled: bool | None = None


@dataclass(frozen=True)
class MailboxFacts:
    """The user's mailbox record: the columns that decide whether appointments, contacts and tasks sync."""

    mailboxid: str
    email: str | None = None
    statecode: int | None = None
    approval: int | None = None
    approved_by_o365_admin: bool | None = None
    act_delivery: int | None = None
    act_status: int | None = None
    enabled_for_act: bool | None = None
    test_scheduled: bool | None = None
    test_completed_on: datetime | None = None
    last_successful_sync: datetime | None = None
    # Whether this org is the one the Exchange mailbox syncs appointments, contacts and tasks with: one
    # mailbox syncs them with one org only (orgmarkedasprimaryforexchangesync).
    primary_for_exchange: bool | None = None
    # Dataverse documents these as internal: shown as evidence, never interpreted.
    last_sync_error: dict[str, str | int] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordFacts:
    """The appointment, contact or task that didn't reach Exchange, and the user's roles on it."""

    type: RecordType
    id: str
    subject: str | None
    start: datetime | None = None
    end: datetime | None = None
    statecode: int | None = None
    statuscode: int | None = None
    modified_on: datetime | None = None
    roles: tuple[str, ...] = ()
    global_object_id: str | None = None  # Outlook's id; links the appointment to its Exchange event
    has_organizer: bool | None = None  # whether an Organizer party is present (None: parties not read)
    recurrence: Recurrence | None = None  # None for contacts and tasks
    series_id: str | None = None  # an instance's series (its recurringappointmentmaster)
    # Whether one of the person's teams owns it (Dataverse says, run as them). None: not asked, which it is
    # only when a sync filter fix could use it (the person neither owns it nor, for an appointment, takes part).
    team_owned: bool | None = None


@dataclass(frozen=True)
class UnreadableRecord:
    """A record that exists but that the person may not read (Dataverse refused it as them).

    Only its id and, for an agent or admin asking, who owns it: never its content."""

    id: str
    owner: str | None = None  # the owner's name (or id), only when someone other than the person asked


@dataclass(frozen=True)
class FilterFacts:
    """One synchronization filter for the record's type, and whether Dataverse says it selects the record.

    `matches` is None when the filter was not run (no record, an organization filter that is inactive, or
    the query failed: `error` says why). The person's own inactive filters are run too, so that a fix can
    turn back on one that would select the record; the rules read active filters only.
    """

    name: str
    origin: Literal["user", "system"]
    active: bool
    matches: bool | None = None
    error: str | None = None
    id: str | None = None  # the userqueryid (origin "user") or savedqueryid ("system")
    modified_on: datetime | None = None


@dataclass(frozen=True)
class ExchangeFacts:
    """Whether the record's event is in the user's Exchange calendar, from Graph."""

    found: bool | None
    reason: str | None = None  # why `found` is None


@dataclass(frozen=True)
class Facts:
    """Everything `diagnose` needs. `user_ref` is what the person gave (Entra object id or email)."""

    user_ref: str
    record_type: RecordType
    user: UserFacts | None
    mailbox: MailboxFacts | None = None
    record_ref: str | None = None  # the id or words given, None for a mailbox-level check
    record: RecordFacts | None = None
    record_hint: str | None = None  # e.g. "that id belongs to a task"
    unreadable: UnreadableRecord | None = None  # the record exists, but the person may not read it
    # The org's "Process emails only for approved users" (System Settings > Email); None: not read.
    approval_required: bool | None = None
    filters: tuple[FilterFacts, ...] | None = None  # None: could not be read (see filters_error)
    filters_error: str | None = None
    exchange: ExchangeFacts = field(default_factory=lambda: ExchangeFacts(found=None, reason="not asked"))
