"""One-click fix cards: the confirmation (the exact changes in plain words) and each outcome of applying it.

The words come from the fix's changes themselves (`describe`), never from card data: what the card says is
what `bot.fixing` writes. Filter names, subjects and email addresses are Dynamics 365's text: `literal`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, Protocol

from microsoft_teams.cards.core import AdaptiveCard, CardElement, ExecuteAction, TextBlock

from bot.diagnosis.facts import ACT_DELIVERY, APPROVAL
from bot.diagnosis.fixes import FILTER_FIXES, Change, Fix
from bot.diagnosis.selection import PLURAL, describe_selection
from cards.common import (
    ERROR,
    LINE,
    NAME,
    SUBJECT,
    card,
    clip,
    execute,
    heading,
    literal,
    local_time,
    plain,
    text,
)

__all__ = [
    "AppliedView",
    "RetryVerb",
    "build_fix_applied_card",
    "build_fix_confirm_card",
    "build_fix_failed_card",
    "build_fix_refused_card",
    "describe",
    "minutes",
    "person_title",
    "undo_caveat",
]

# A fix as its person names it on their own cards (the button says "Fix it for me"), where the core's title
# names the mailbox as an agent reads it ("Test and enable the mailbox isaiahl@contoso.com").
_PERSON_TITLE = {"schedule-mailbox-test": "Test and enable my mailbox"}


class AppliedView(Protocol):
    """What the result cards read of an application (`bot.fixing.Applied` has it all)."""

    @property
    def key(self) -> str: ...
    @property
    def fix(self) -> Fix: ...
    @property
    def user(self) -> str: ...
    @property
    def by(self) -> str: ...
    @property
    def state(self) -> str: ...  # applying, applied, refused, failed, undone
    @property
    def at(self) -> datetime: ...
    @property
    def error(self) -> str | None: ...
    @property
    def first(self) -> bool: ...
    @property
    def result(self) -> Mapping[str, Any]: ...  # "undone_at": when it was undone (ISO)


def person_title(fix: Fix) -> str:
    """The fix's title as the person it is for reads it on their own card (plain text: clip or escape it)."""
    return _PERSON_TITLE.get(fix.id, fix.title)


# --- the changes in plain words --------------------------------------------------------------------------


def describe(fix: Fix, *, mailbox: str | None = None, done: bool = False, yours: bool = False) -> list[str]:
    """One sentence per row the fix touches, as markdown (Dynamics 365's text escaped): what it will do,
    or with `done`, what it did. `mailbox` names the mailbox (its address) for the mailbox fixes; `yours`:
    the reader is its person ("your mailbox")."""
    rows: dict[tuple[str, str | None], list[Change]] = {}
    for change in fix.changes:
        rows.setdefault((change.table, change.row), []).append(change)
    return [_sentence(table, row, changes, mailbox, done, yours) for (table, row), changes in rows.items()]


def _sentence(
    table: str, row: str | None, changes: list[Change], mailbox: str | None, done: bool, yours: bool
) -> str:
    columns = {c.column: c for c in changes}
    if table == "userqueries" and row is None:
        return _new_filter(columns, done)
    if table == "userqueries" and "statecode" in columns:
        on = columns["statecode"].new == 0
        if on:
            return (
                "Turned your sync filter back on" if done else "Turn your sync filter back on (it is off now)"
            )
        return "Turned the sync filter off" if done else "Turn the sync filter off"
    if table == "mailboxes":
        address = literal(mailbox, NAME) if mailbox else None
        if yours:
            where = f"your mailbox ({address})" if address else "your mailbox"
        else:
            where = f"the mailbox {address}" if address else "the person's mailbox"
        return "; ".join(_mailbox_change(c, where, done) for c in changes)
    # A change this card doesn't know by name: still shown exactly.
    return "; ".join(
        f"Set {literal(c.column, NAME)} of {literal(table, NAME)} "
        f"from {literal(c.old, NAME)} to {literal(c.new, NAME)}"
        for c in changes
    )


def _new_filter(columns: Mapping[str, Change], done: bool) -> str:
    name = columns["name"].new if "name" in columns else None
    kind = columns["returnedtypecode"].new if "returnedtypecode" in columns else None
    fetch = columns["fetchxml"].new if "fetchxml" in columns else None
    named = f" “{literal(name, NAME)}”" if isinstance(name, str) and name else ""
    selecting = describe_selection(fetch, kind if isinstance(kind, str) else None)
    verb = "Created" if done else "Create"
    return f"{verb} a sync filter{named} owned by you, selecting {selecting}"


def _mailbox_change(change: Change, where: str, done: bool) -> str:
    if change.column == "actdeliverymethod":
        old, new = _label(ACT_DELIVERY, change.old), _label(ACT_DELIVERY, change.new)
        return f"Set Appointments, Contacts, and Tasks of {where} from {old} to {new}"
    if change.column == "emailrouteraccessapproval":
        old = _label(APPROVAL, change.old)
        return f"{'Approved' if done else 'Approve'} the email address of {where} (it was {old})"
    if change.column == "testemailconfigurationscheduled":
        verb = "Scheduled" if done else "Schedule"
        return f"{verb} Test & Enable for {where} (Dynamics 365 runs it within a few minutes)"
    return f"Set {literal(change.column, NAME)} of {where} from {literal(change.old, NAME)} to {literal(change.new, NAME)}"


def _label(labels: Mapping[int, str], value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value in labels:
        return labels[value]
    return "(empty)" if value is None else literal(value, NAME)


def undo_caveat(record_type: str) -> str:
    """The documented warning (sync-logic, KB 4345686): a record that stops meeting the filters is deleted
    from Exchange by server-side sync, unless the organization keeps logical deletes apart."""
    plural = PLURAL.get(record_type, "records")
    return (
        f"You can undo it: Undo turns the filter off again, and {plural} it selected may then be removed "
        "from your Outlook at the next sync."
    )


def minutes(seconds: float) -> str:
    """ "about 15 minutes", "about 1 minute": when the first check after a fix comes."""
    n = max(1, round(seconds / 60))
    return f"about {n} minute{'s' if n != 1 else ''}"


# --- the cards ------------------------------------------------------------------------------------------


def _changes(fix: Fix, mailbox: str | None, *, done: bool, yours: bool = False) -> TextBlock:
    return text("\n".join(f"- {line}" for line in describe(fix, mailbox=mailbox, done=done, yours=yours)))


def build_fix_confirm_card(
    fix: Fix,
    *,
    data: dict[str, Any],
    cancel: dict[str, Any],
    record_type: str,
    subject: str | None = None,
    mailbox: str | None = None,
    whose: Literal["yours", "theirs"] = "yours",
) -> AdaptiveCard:
    """Confirm or Cancel one fix: the exact changes in plain words, made as the presser (Dataverse checks
    their privileges), and for a filter fix what Undo would do.

    Args:
        data: what Confirm sends: whose fix, the record, its type and the fix id (and the ticket's number).
        cancel: what Cancel sends: the diagnosis to show again (the ticket, for an agent's fix).
        whose: "yours", the person's own fix (Confirm `fix_apply`, Cancel a fresh diagnosis); "theirs", an
            agent's fix from a ticket card (Confirm `ticket_fix_apply`, Cancel the ticket card again).
    """
    about = f" for “{literal(subject, SUBJECT)}”" if subject else ""
    yours = whose == "yours"
    question = "Fix it for me?" if yours else "Apply this fix?"
    title = person_title(fix) if yours else fix.title
    body: list[CardElement] = [
        heading(question, size="Medium"),
        plain(clip(title, LINE), weight="Bolder"),
        text(f"When you confirm, I'll make this change in Dynamics 365{about}, as you:"),
        _changes(fix, mailbox, done=False, yours=yours),
    ]
    if fix.id in FILTER_FIXES:
        body.append(text(undo_caveat(record_type), color="Warning"))
    else:
        body.append(
            text("Dynamics 365 checks that you may make it; nothing changes if it says no.", subtle=True)
        )
    confirm_tip, cancel_tip = "Confirm: make this change", "Cancel: change nothing"
    if yours:
        actions = [
            execute("Confirm", "fix_apply", data, style="positive", tooltip=confirm_tip),
            execute("Cancel", "recheck", cancel, tooltip=cancel_tip),
        ]
    else:
        actions = [
            execute("Confirm", "ticket_fix_apply", data, style="positive", tooltip=confirm_tip),
            execute("Cancel", "ticket_view", cancel, tooltip=cancel_tip),
        ]
    return card(body, actions, fallback_text=f"{question} {title}")


def build_fix_applied_card(
    applied: AppliedView,
    *,
    record_type: str,
    recheck_after: float | None,
    check: dict[str, Any],
    viewer: str,
    subject: str | None = None,
    mailbox: str | None = None,
    by_name: str | None = None,
) -> AdaptiveCard:
    """The fix was made (or undone): what changed, when the bot checks again, and Undo for a filter fix.

    A second press shows this same card (`applied.first` False): done once, by whom and when.
    Args:
        check: the data of Re-check (the diagnosis the fix was for).
        viewer: who sees the card: Undo is offered to the person the fix is for.
    """
    fix = applied.fix
    undone = applied.state == "undone"
    mine = applied.user.lower() == viewer.lower()  # the person the fix is for
    named = person_title(fix) if mine else fix.title
    title = clip(named, LINE) + (f" ({clip(subject, SUBJECT)})" if subject else "")
    body: list[CardElement] = [heading("Undone" if undone else "Change made", size="Medium"), plain(title)]
    if undone:
        body.append(
            text(
                f"I turned the filter off again. {PLURAL.get(record_type, 'Records').capitalize()} it selected "
                "may be removed from your Outlook at the next sync.",
                color="Warning",
            )
        )
    else:
        when = (
            f"I'll check again after the next sync, in {minutes(recheck_after)}, and tell you here."
            if recheck_after is not None
            else "Ask me again after the next sync to see it in Outlook."
        )
        body.append(text(f"Done. {when}", color="Good"))
        body.append(_changes(fix, mailbox, done=True, yours=mine))
    who = "you" if applied.by.lower() == viewer.lower() else literal(by_name or applied.by, NAME)
    when = local_time(_undone_at(applied) if undone else applied.at) or ""
    again = "" if applied.first else " (done once already: pressing again changes nothing)"
    body.append(text(f"{'Undone' if undone else 'Made'} by {who}, {when}{again}", subtle=True))
    actions = []
    if not undone and fix.id in FILTER_FIXES and mine:
        body.append(text(undo_caveat(record_type), subtle=True))
        # Not "key": the Agents Playground's card renderer throws on an Action.Execute datum of that name.
        undo = {"user": applied.user, "applied": applied.key}
        actions.append(execute("Undo", "fix_undo", undo, tooltip="Undo: turn the filter off again"))
    actions.append(execute("Re-check", "recheck", check, style="positive", tooltip="Re-check it now"))
    fallback = f"Undone: {named}" if undone else f"Done: {named}"
    return card(body, actions, fallback_text=fallback)


RetryVerb = Literal["fix_offer", "fix_apply", "fix_undo", "ticket_fix_offer", "ticket_fix_apply"]


def _retry(verb: RetryVerb, data: dict[str, Any], title: str, tooltip: str) -> ExecuteAction:
    """The button that sends the press again (each verb written out: tests read the verbs cards carry)."""
    return {
        "fix_offer": execute(title, "fix_offer", data, style="positive", tooltip=tooltip),
        "fix_apply": execute(title, "fix_apply", data, style="positive", tooltip=tooltip),
        "fix_undo": execute(title, "fix_undo", data, style="positive", tooltip=tooltip),
        "ticket_fix_offer": execute(title, "ticket_fix_offer", data, style="positive", tooltip=tooltip),
        "ticket_fix_apply": execute(title, "ticket_fix_apply", data, style="positive", tooltip=tooltip),
    }[verb]


def _undone_at(applied: AppliedView) -> datetime:
    """When it was undone, as the service kept it (else when it was made)."""
    kept = applied.result.get("undone_at")
    try:
        return datetime.fromisoformat(kept) if isinstance(kept, str) else applied.at
    except ValueError:
        return applied.at


def build_fix_failed_card(
    fix: Fix | None,
    *,
    reason: str,
    retry: tuple[RetryVerb, dict[str, Any]],
    in_progress: bool = False,
    throttled: bool = False,
) -> AdaptiveCard:
    """Dynamics 365 couldn't be reached, or asked us to wait (`throttled`: `reason` says until when), or
    the change is still being made: why, and a button to try again (a retry never changes twice)."""
    what = f": {clip(fix.title, LINE)}" if fix else ""
    if in_progress:
        body: list[CardElement] = [
            heading("Still working on it", size="Medium"),
            plain(f"I'm still making this change in Dynamics 365{what}."),
            text("Check again in a minute to see how it went.", subtle=True),
        ]
        label, tip = "Check again", "Check again: how the change went"
    else:
        when = "when it says above" if throttled else "in a minute"
        body = [
            heading(
                "Dynamics 365 asked me to wait" if throttled else "I couldn't reach Dynamics 365",
                size="Medium",
            ),
            plain(clip(reason, ERROR) + (f" ({clip(fix.title, LINE)})" if fix else "")),
            text(f"Try again {when}: if a change was made after all, I won't make it twice.", subtle=True),
        ]
        label, tip = "Try again", "Try again: make the change"
    return card(body, [_retry(retry[0], retry[1], label, tip)], fallback_text=label)


def build_fix_refused_card(
    fix: Fix,
    *,
    message: str | None,
    helpdesk: str | None,
    check: dict[str, Any] | None = None,
    whose: Literal["yours", "theirs"] = "yours",
) -> AdaptiveCard:
    """Dynamics 365 refused the change (403): the presser lacks a privilege. `helpdesk` says what became of
    it (a ticket, or who to ask); Dataverse's own words follow, for whoever fixes the roles. `whose`: the
    presser's own fix ("yours") or an agent's for someone ("theirs"), as `build_fix_confirm_card`."""
    title = person_title(fix) if whose == "yours" else fix.title
    body: list[CardElement] = [
        heading("Your organization doesn't let you change this", size="Medium"),
        plain(clip(title, LINE), weight="Bolder"),
    ]
    if helpdesk:
        body.append(plain(clip(helpdesk, ERROR), color="Attention"))
    if message:
        body.append(plain(f"Dynamics 365 said: {clip(message, ERROR)}", subtle=True))
    actions = [] if check is None else [execute("Re-check", "recheck", check, tooltip="Re-check it now")]
    return card(body, actions, fallback_text="Your organization doesn't let you change this")
