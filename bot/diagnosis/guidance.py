"""What each finding says to a person: titles by status, the resolution steps, the documented source.

All of it in one place, so the CLI, the cards and the notifications say the same thing. One `Guidance`
per rule, named after it; the rule's declaration in `bot.diagnosis.rules` (`@rule(id, scope, guidance)`)
is what ties the text to a finding id. The steps follow KB 4509420 and the sync-logic docs, in our own
words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.diagnosis.report import Evidence, Finding, Status

__all__ = [
    "ACT_NOT_ENABLED",
    "ACT_NOT_SERVER_SIDE_SYNC",
    "ACT_OTHER_ORG",
    "ACT_OUTLOOK_CLIENT",
    "ACT_SYNC_FAILING",
    "CHOOSE_RECORDS",
    "KB_4509420",
    "MAILBOX_INACTIVE",
    "MAILBOX_MISSING",
    "MAILBOX_NOT_APPROVED",
    "MAILBOX_NOT_TESTED",
    "NO_SYNC_FILTER",
    "OPEN_MAILBOX",
    "ORGANIZER_MISSING",
    "OUTSIDE_SYNC_FILTER",
    "PERSONAL_OPTIONS",
    "RECORD_NOT_FOUND",
    "RECORD_NOT_READABLE",
    "SHOWN_AS_FREE",
    "SYNC_LOGIC",
    "SYNC_PENDING",
    "TEAMS_USER_UNKNOWN",
    "TEST_ENABLE",
    "TROUBLESHOOTING",
    "USER_DISABLED",
    "Guidance",
    "fill",
]

KB_4509420 = "https://support.microsoft.com/help/4509420"
SYNC_LOGIC = "https://learn.microsoft.com/power-platform/admin/sync-logic"
TROUBLESHOOTING = (
    "https://learn.microsoft.com/power-platform/admin/troubleshooting-monitoring-server-side-synchronization"
)
CHOOSE_RECORDS = "https://learn.microsoft.com/power-platform/admin/choose-records-synchronize-dynamics-365-outlook-exchange"

OPEN_MAILBOX = (
    "In Dynamics 365, open Settings > Email Configuration > Mailboxes > Active Mailboxes and open {mailbox}."
)
TEST_ENABLE = "Select Test & Enable Mailbox, wait for the test to finish, then check that the Appointments, Contacts, and Tasks status is Success."
PERSONAL_OPTIONS = (
    "In Dynamics 365, select the gear icon > Personal Options (Set Personal Options) > Synchronization tab."
)


class _Blank(dict[str, str]):
    """Placeholders without a value stay as written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(text: str, words: Mapping[str, str]) -> str:
    """`text` with its `{placeholders}` filled in from `words` (unknown ones left alone)."""
    return text.format_map(_Blank(words))


@dataclass(frozen=True)
class Guidance:
    """Text for one finding id. `titles` maps a status to a one-line title; `steps` apply to fail/warn.

    Placeholders: `{type}` (the record type), `{mailbox}` (the mailbox, named), and any word the rule's
    outcome adds. `self_check` is what a person can check on their own when Dynamics 365 can't be read
    (the checklist card), in the order of the rules.
    """

    titles: Mapping[str, str]  # by status, and "status:variant" for a more precise title
    source: str
    steps: tuple[str, ...] = ()
    warn_steps: tuple[str, ...] | None = None  # when a warning needs other steps than a failure
    self_check: tuple[str, ...] = ()
    # Where the steps differ by record type (the default filters select appointments, contacts and
    # tasks differently): the steps, and what a person can check alone, for that type.
    steps_for: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    self_check_for: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def finding(
        self,
        finding_id: str,
        status: Status,
        evidence: Evidence,
        words: Mapping[str, str],
        variant: str | None = None,
    ) -> Finding:
        """The finding for `status`, its title and steps filled in with `words`.

        `variant` picks a more precise title where the guidance has one (`titles["fail:tested"]`)."""
        title = (
            (self.titles.get(f"{status}:{variant}") if variant else None)
            or self.titles.get(status)
            or self.titles.get("fail")
            or finding_id
        )
        steps: tuple[str, ...] = ()
        if status in ("fail", "warn"):
            chosen = self.warn_steps if status == "warn" and self.warn_steps is not None else self.steps
            if status == "fail" or self.warn_steps is None:
                chosen = self.steps_for.get(words.get("type", ""), chosen)
            steps = tuple(fill(step, words) for step in chosen)
        return Finding(
            id=finding_id,
            status=status,
            title=fill(title, words),
            evidence=evidence,
            steps=steps,
            source=self.source,
        )


def _lower_first(text: str) -> str:
    return text[0].lower() + text[1:]


# --- user -------------------------------------------------------------------------------------------

TEAMS_USER_UNKNOWN = Guidance(
    titles={
        "fail": "No Dynamics 365 user is linked to this Microsoft 365 account",
        "pass": "Found the Dynamics 365 user",
    },
    source=SYNC_LOGIC,
    steps=(
        "Ask your Dynamics 365 admin to check that you have a user in Dynamics 365 (Settings > Security > Users).",
        "The user must be the same Microsoft Entra account you use in Teams; a user added recently can take a few minutes to appear.",
    ),
)


USER_DISABLED = Guidance(
    titles={
        "fail": "Your Dynamics 365 user is disabled",
        "pass": "Dynamics 365 user is enabled",
    },
    source=SYNC_LOGIC,
    steps=(
        "Ask your Dynamics 365 admin to enable your user and assign it a license (Settings > Security > Users).",
    ),
)


# --- mailbox ----------------------------------------------------------------------------------------

MAILBOX_MISSING = Guidance(
    titles={
        "fail": "You have no mailbox record in Dynamics 365",
        "pass": "Mailbox record found",
    },
    source=KB_4509420,
    steps=(
        "Ask your Dynamics 365 admin to create or restore your mailbox record: it is created with your user; "
        "check Settings > Email Configuration > Mailboxes.",
        "Then set Appointments, Contacts, and Tasks to Server-Side Synchronization and run Test & Enable Mailbox.",
    ),
)


MAILBOX_INACTIVE = Guidance(
    titles={
        "fail": "Your mailbox record is inactive",
        "pass": "Mailbox record is active",
    },
    source=SYNC_LOGIC,
    steps=(
        "In Dynamics 365, open Settings > Email Configuration > Mailboxes > Inactive Mailboxes and open {mailbox}.",
        "Select Activate, then run Test & Enable Mailbox.",
    ),
)


MAILBOX_NOT_APPROVED = Guidance(
    titles={
        "fail": "Your mailbox's email address is not approved",
        "warn": "The email address isn't approved, but your organization doesn't require approval",
        "pass": "Email address is approved",
        "unknown": "Could not tell whether the email address is approved",
    },
    source=SYNC_LOGIC,
    steps=(
        OPEN_MAILBOX,
        "Select Approve Email (an admin with the right to approve email addresses must do this).",
        TEST_ENABLE,
    ),
    warn_steps=(
        "Your organization processes email for unapproved users (System Settings > Email), so this doesn't "
        "block synchronization by itself.",
        "If the mailbox uses the Exchange Online email server profile, a Microsoft 365 admin must still approve "
        "it: " + _lower_first(OPEN_MAILBOX) + " Then select Approve Email.",
    ),
)


ACT_NOT_SERVER_SIDE_SYNC = Guidance(
    titles={
        "fail": "Appointments, Contacts, and Tasks are not set to synchronize",
        "pass": "Appointments, Contacts, and Tasks use Server-Side Synchronization",
        "unknown": "Could not read how Appointments, Contacts, and Tasks synchronize",
    },
    source=KB_4509420,
    steps=(
        OPEN_MAILBOX,
        "Under Synchronization Method, set Appointments, Contacts, and Tasks to Server-Side Synchronization and save.",
        TEST_ENABLE,
    ),
    self_check=(
        OPEN_MAILBOX,
        "Check that Appointments, Contacts, and Tasks is set to Server-Side Synchronization.",
    ),
)


ACT_NOT_ENABLED = Guidance(
    titles={
        "warn": "The mailbox is not enabled for appointments, contacts and tasks",
        "pass": "Mailbox is enabled for appointments, contacts and tasks",
    },
    source=SYNC_LOGIC,
    steps=(
        OPEN_MAILBOX,
        "Set Appointments, Contacts, and Tasks to Server-Side Synchronization, save, and run Test & Enable Mailbox.",
    ),
)


ACT_OUTLOOK_CLIENT = Guidance(
    titles={
        "warn": "Appointments, Contacts, and Tasks sync through the legacy Dynamics 365 for Outlook add-in",
        "pass": "Not relying on the legacy Outlook add-in",
    },
    source=KB_4509420,
    steps=(
        "If you use the Dynamics 365 for Outlook add-in, make sure it is installed, signed in and running on your computer.",
        "Otherwise (recommended): " + OPEN_MAILBOX,
        "Set Appointments, Contacts, and Tasks to Server-Side Synchronization and save.",
        TEST_ENABLE,
    ),
)


MAILBOX_NOT_TESTED = Guidance(
    titles={
        "fail": "Your mailbox was never tested and enabled",
        # Not Run although a test completed: the last test didn't cover appointments, contacts and tasks.
        "fail:tested": "Appointments, Contacts, and Tasks weren't tested: their status is Not Run although "
        "the mailbox was last tested on {tested_on}",
        "warn": "A mailbox test is scheduled but has not finished",
        "pass": "Mailbox was tested and enabled",
    },
    source=KB_4509420,
    steps=(OPEN_MAILBOX, TEST_ENABLE),
    warn_steps=(
        "Wait a few minutes for the scheduled Test & Enable to finish, then select Re-check.",
        "If it stays this way for more than an hour, " + _lower_first(OPEN_MAILBOX),
        TEST_ENABLE,
    ),
    self_check=(
        "Check that the mailbox was tested and enabled and that the Appointments, Contacts, and Tasks status is Success.",
    ),
)


ACT_OTHER_ORG = Guidance(
    titles={
        "warn": "Appointments, contacts and tasks may be synchronizing with another Dynamics 365 organization",
        "pass": "This organization syncs the mailbox's appointments, contacts and tasks",
    },
    source=TROUBLESHOOTING,
    steps=(
        "An Exchange mailbox synchronizes appointments, contacts and tasks with one Dynamics 365 organization "
        "only, and Dynamics 365 says this one isn't it.",
        OPEN_MAILBOX,
        'Select Test & Enable Mailbox with "Sync items with Exchange from this Organization only, even if '
        'Exchange was set to sync with a different Organization" selected. This stops the sync in the other '
        "organization: check with your admin first.",
    ),
)


ACT_SYNC_FAILING = Guidance(
    titles={
        "fail": "Appointments, Contacts, and Tasks synchronization is failing",
        "pass": "Appointments, Contacts, and Tasks status is Success",
    },
    source=KB_4509420,
    steps=(
        OPEN_MAILBOX,
        "Open Alerts on the mailbox to read the error Dynamics 365 recorded.",
        "Fix what the alert names (often the mailbox's Exchange permissions or its email server profile), then "
        + _lower_first(TEST_ENABLE),
    ),
)


# --- record -----------------------------------------------------------------------------------------

RECORD_NOT_FOUND = Guidance(
    titles={
        "fail": "Couldn't find that {type}",
        "pass": "Found the {type}",
    },
    source=KB_4509420,
    steps=(
        "Check the id or the words from the subject, and that the {type} is shared with you in Dynamics 365.",
    ),
)


RECORD_NOT_READABLE = Guidance(
    titles={
        "fail": "You can't open this {type} in Dynamics 365, so it can't sync to your Outlook",
        "pass": "You can read this {type} in Dynamics 365",
    },
    source=SYNC_LOGIC,
    steps=(
        "Server-side synchronization only syncs what you can read in Dynamics 365, and this {type} isn't "
        "shared with you.",
        "Ask the {type}'s owner{owner} to share it with you (Share, in the {type}'s command bar), or ask your "
        "Dynamics 365 admin for a security role that lets you read it.",
        "Then select Re-check.",
    ),
)


ORGANIZER_MISSING = Guidance(
    titles={
        "fail": "This appointment has no organizer, so it can't be synchronized",
        "pass": "The appointment has an organizer",
    },
    source=TROUBLESHOOTING,
    steps=(
        "Open the appointment in Dynamics 365, set its Organizer (usually yourself) and save.",
        "If the appointment form has no Organizer field, ask your Dynamics 365 admin to add it to the "
        "Appointment form and publish it: server-side synchronization needs it.",
        "Then select Re-check.",
    ),
)


NO_SYNC_FILTER = Guidance(
    titles={
        "fail": "No synchronization filter selects any {type}s, so none sync",
        "pass": "Active synchronization filters exist for {type}s",
        "unknown": "Could not read your synchronization filters",
    },
    source=CHOOSE_RECORDS,
    steps=(
        PERSONAL_OPTIONS,
        "Select the synchronization filters link, then on User Filters activate a filter for {type}s or add one.",
    ),
    steps_for={
        "appointment": (
            PERSONAL_OPTIONS,
            "Select the synchronization filters link, then on User Filters activate a filter for appointments "
            "or add one (for example: appointments where you are the organizer or a required attendee).",
        ),
        "contact": (
            PERSONAL_OPTIONS,
            "Select the synchronization filters link, then on User Filters activate a filter for contacts or "
            "add one (for example: active contacts you own, like the default My Outlook Contacts).",
        ),
        "task": (
            PERSONAL_OPTIONS,
            "Select the synchronization filters link, then on User Filters activate a filter for tasks or add "
            "one (for example: tasks you own).",
        ),
    },
)


OUTSIDE_SYNC_FILTER = Guidance(
    titles={
        "fail": "This {type} doesn't meet your synchronization filters",
        "pass": "This {type} meets your synchronization filters",
        "unknown": "Could not check this {type} against your synchronization filters",
    },
    source=KB_4509420,
    steps=(
        PERSONAL_OPTIONS,
        "Select the synchronization filters link and, on User Filters, change your filter for {type}s or add "
        "one that selects records like this one.",
    ),
    steps_for={
        "appointment": (
            "Make yourself the organizer or a required attendee of the appointment: that is what the default "
            "appointment filter selects; being only its owner is not enough.",
            "Or: "
            + _lower_first(PERSONAL_OPTIONS)
            + " Select the synchronization filters link and, on User Filters, change your appointment filter "
            "or add one that selects appointments like this one.",
        ),
        "contact": (
            "The default contact filter selects active contacts you own. If a colleague or a team owns this "
            "contact, ask them to assign it to you; if it is inactive, activate it.",
            "Or: "
            + _lower_first(PERSONAL_OPTIONS)
            + " Select the synchronization filters link and, on User Filters, change your contact filter or "
            "add one that selects contacts like this one.",
        ),
        "task": (
            "Your task filters select tasks by who owns them: if someone else or a team owns this task, ask "
            "them to assign it to you.",
            "Or: "
            + _lower_first(PERSONAL_OPTIONS)
            + " Select the synchronization filters link and, on User Filters, change your task filter or add "
            "one that selects tasks like this one.",
        ),
    },
    self_check=("Check your synchronization filters: gear icon > Personal Options > Synchronization tab.",),
    self_check_for={
        "appointment": (
            "Open the appointment: make sure you are its organizer or a required attendee, not only its owner "
            "(that's what the default synchronization filter needs).",
            "Or check your filters: gear icon > Personal Options > Synchronization tab.",
        ),
        "contact": (
            "Open the contact: make sure you own it and it is active (that's what the default filter needs).",
            "Or check your filters: gear icon > Personal Options > Synchronization tab.",
        ),
        "task": (
            "Open the task: make sure you own it.",
            "Or check your filters: gear icon > Personal Options > Synchronization tab.",
        ),
    },
)


SHOWN_AS_FREE = Guidance(
    titles={
        "warn": "This appointment is {state}, so Outlook shows it as Free with no reminder",
        "pass": "Appointment will show as busy",
    },
    source=SYNC_LOGIC,
    steps=(
        "This is expected: completed, canceled and Free appointments reach Exchange as Free, without a reminder.",
        "If it should block your calendar, reopen it or set its status to Busy in Dynamics 365.",
    ),
)


SYNC_PENDING = Guidance(
    titles={
        "warn": "Synchronization hasn't caught up with your latest change yet",
        "pass": "Synchronization is up to date",
    },
    source=SYNC_LOGIC,
    steps=(
        "Server-side synchronization runs in the background; give it up to 15 minutes, then select Re-check.",
        "If nothing changes within an hour, ask your admin to check the mailbox's alerts.",
    ),
)
