"""What each finding says to a person: titles by status, the resolution steps, and the documented source.

One place for this text, so the CLI, the cards and the notifications say the same thing. The steps
follow KB 4509420 and the sync-logic docs, in our own words.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.diagnosis.report import Status

__all__ = ["GUIDANCE", "Guidance"]

KB_4509420 = "https://support.microsoft.com/help/4509420"
SYNC_LOGIC = "https://learn.microsoft.com/power-platform/admin/sync-logic"
CHOOSE_RECORDS = "https://learn.microsoft.com/power-platform/admin/choose-records-synchronize-dynamics-365-outlook-exchange"
DEFAULT_FILTERS = "https://learn.microsoft.com/power-platform/admin/configure-default-sync-filters"
CONNECT_EXCHANGE = "https://learn.microsoft.com/power-platform/admin/connect-exchange-online"

_OPEN_MAILBOX = (
    "In Dynamics 365, open Settings > Email Configuration > Mailboxes > Active Mailboxes and open {mailbox}."
)
_TEST_ENABLE = "Select Test & Enable Mailbox, wait for the test to finish, then check that the Appointments, Contacts, and Tasks status is Success."
_FILTER_STEPS = (
    "In Dynamics 365, select the gear icon > Personal Options (Set Personal Options) > Synchronization tab.",
    "Under synchronization filters, open the filter for {type}s and change it, or add a filter that selects records like this one.",
    "Or make yourself the organizer or a required attendee of the record: by default that is what the filter selects; being only the owner is not enough.",
)


@dataclass(frozen=True)
class Guidance:
    """Text for one finding id. `titles` maps a status to a one-line title; `steps` apply to fail/warn."""

    titles: dict[Status, str]
    source: str
    steps: tuple[str, ...] = ()
    warn_steps: tuple[str, ...] | None = None  # when a warning needs other steps than a failure
    extra: dict[str, str] = field(default_factory=dict)


GUIDANCE: dict[str, Guidance] = {
    "teams-user-unknown": Guidance(
        titles={
            "fail": "No Dynamics 365 user is linked to this Microsoft 365 account",
            "pass": "Found the Dynamics 365 user",
        },
        source=SYNC_LOGIC,
        steps=(
            "Ask your Dynamics 365 admin to check that you have a user in Dynamics 365 (Settings > Security > Users).",
            "The user must be the same Microsoft Entra account you use in Teams; a user added recently can take a few minutes to appear.",
        ),
    ),
    "user-disabled": Guidance(
        titles={"fail": "Your Dynamics 365 user is disabled", "pass": "Dynamics 365 user is enabled"},
        source=SYNC_LOGIC,
        steps=(
            "Ask your Dynamics 365 admin to enable your user and assign it a license (Settings > Security > Users).",
        ),
    ),
    "mailbox-missing": Guidance(
        titles={"fail": "You have no mailbox record in Dynamics 365", "pass": "Mailbox record found"},
        source=KB_4509420,
        steps=(
            "Ask your Dynamics 365 admin to create or restore your mailbox record: it is created with your user; "
            "check Settings > Email Configuration > Mailboxes.",
            "Then set Appointments, Contacts, and Tasks to Server-Side Synchronization and run Test & Enable Mailbox.",
        ),
    ),
    "mailbox-inactive": Guidance(
        titles={"fail": "Your mailbox record is inactive", "pass": "Mailbox record is active"},
        source=SYNC_LOGIC,
        steps=(
            "In Dynamics 365, open Settings > Email Configuration > Mailboxes > Inactive Mailboxes and open {mailbox}.",
            "Select Activate, then run Test & Enable Mailbox.",
        ),
    ),
    "mailbox-not-approved": Guidance(
        titles={
            "fail": "Your mailbox's email address is not approved",
            "pass": "Email address is approved",
            "unknown": "Could not tell whether the email address is approved",
        },
        source=SYNC_LOGIC,
        steps=(
            _OPEN_MAILBOX,
            "Select Approve Email (an admin with the right to approve email addresses must do this).",
            _TEST_ENABLE,
        ),
    ),
    "act-not-server-side-sync": Guidance(
        titles={
            "fail": "Appointments, Contacts, and Tasks are not set to synchronize",
            "pass": "Appointments, Contacts, and Tasks use Server-Side Synchronization",
            "unknown": "Could not read how Appointments, Contacts, and Tasks synchronize",
        },
        source=KB_4509420,
        steps=(
            _OPEN_MAILBOX,
            "Under Synchronization Method, set Appointments, Contacts, and Tasks to Server-Side Synchronization and save.",
            _TEST_ENABLE,
        ),
    ),
    "act-not-enabled": Guidance(
        titles={
            "warn": "The mailbox is not enabled for appointments, contacts and tasks",
            "pass": "Mailbox is enabled for appointments, contacts and tasks",
        },
        source=SYNC_LOGIC,
        steps=(
            _OPEN_MAILBOX,
            "Set Appointments, Contacts, and Tasks to Server-Side Synchronization, save, and run Test & Enable Mailbox.",
        ),
    ),
    "act-outlook-client": Guidance(
        titles={
            "warn": "Appointments, Contacts, and Tasks sync through the legacy Dynamics 365 for Outlook add-in",
            "pass": "Not relying on the legacy Outlook add-in",
        },
        source=KB_4509420,
        steps=(
            "If you use the Dynamics 365 for Outlook add-in, make sure it is installed, signed in and running on your computer.",
            "Otherwise (recommended): " + _OPEN_MAILBOX,
            "Set Appointments, Contacts, and Tasks to Server-Side Synchronization and save.",
            _TEST_ENABLE,
        ),
    ),
    "mailbox-not-tested": Guidance(
        titles={
            "fail": "Your mailbox was never tested and enabled",
            "warn": "A mailbox test is scheduled but has not finished",
            "pass": "Mailbox was tested and enabled",
        },
        source=KB_4509420,
        steps=(_OPEN_MAILBOX, _TEST_ENABLE),
        warn_steps=(
            "Wait a few minutes for the scheduled Test & Enable to finish, then select Re-check.",
            "If it stays this way for more than an hour, " + _OPEN_MAILBOX[0].lower() + _OPEN_MAILBOX[1:],
            _TEST_ENABLE,
        ),
    ),
    "act-sync-failing": Guidance(
        titles={
            "fail": "Appointments, Contacts, and Tasks synchronization is failing",
            "pass": "Appointments, Contacts, and Tasks status is Success",
        },
        source=KB_4509420,
        steps=(
            _OPEN_MAILBOX,
            "Open Alerts on the mailbox to read the error Dynamics 365 recorded.",
            "Fix what the alert names (often the mailbox's Exchange permissions or its email server profile), then "
            + _TEST_ENABLE[0].lower()
            + _TEST_ENABLE[1:],
        ),
    ),
    "no-sync-filter": Guidance(
        titles={
            "fail": "No synchronization filter selects any {type}s, so none sync",
            "pass": "Active synchronization filters exist for {type}s",
            "unknown": "Could not read your synchronization filters",
        },
        source=CHOOSE_RECORDS,
        steps=(
            "In Dynamics 365, select the gear icon > Personal Options (Set Personal Options) > Synchronization tab.",
            "Under synchronization filters, activate the filter for {type}s or add one (for example: "
            "'{type}s where I am the organizer or a required attendee').",
        ),
    ),
    "outside-sync-filter": Guidance(
        titles={
            "fail": "This {type} doesn't meet your synchronization filters",
            "pass": "This {type} meets your synchronization filters",
            "unknown": "Could not check this {type} against your synchronization filters",
        },
        source=KB_4509420,
        steps=_FILTER_STEPS,
    ),
    "sync-pending": Guidance(
        titles={
            "warn": "Synchronization hasn't caught up with your latest change yet",
            "pass": "Synchronization is up to date",
        },
        source=SYNC_LOGIC,
        steps=(
            "Server-side synchronization runs in the background; give it up to 15 minutes, then select Re-check.",
            "If nothing changes within an hour, ask your admin to check the mailbox's alerts.",
        ),
    ),
    "shown-as-free": Guidance(
        titles={
            "warn": "This appointment is {state}, so Outlook shows it as Free with no reminder",
            "pass": "Appointment will show as busy",
        },
        source=SYNC_LOGIC,
        steps=(
            "This is expected: completed, canceled and Free appointments reach Exchange as Free, without a reminder.",
            "If it should block your calendar, reopen it or set its status to Busy in Dynamics 365.",
        ),
    ),
    "record-not-found": Guidance(
        titles={"fail": "Couldn't find that {type}", "pass": "Found the {type}"},
        source=KB_4509420,
        steps=(
            "Check the id or the words from the subject, and that the {type} is shared with you in Dynamics 365.",
        ),
    ),
}
