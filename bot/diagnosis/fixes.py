"""One-click fixes: what a failing finding's documented fix changes in Dataverse, as data (design.md section 4).

Pure, like the rest of the core: facts in, proposed changes out. Nothing here writes. `bot.fixing` applies a
fix as the person who confirmed it (impersonation), so Dataverse's own privilege checks decide.

    fixes = propose(facts, report)      # the fixes that apply to this diagnosis, each for one fail finding
    fix.to_dict()                       # {"id", "finding", "title", "who", "changes": [...]}

A fix is proposed only for a `fail` finding and only when its target is known: the mailbox's id for an
agent's fix; the filter's id and the person's Entra id (they apply it as themselves) for theirs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

from bot.diagnosis.changes import FILTER_FIXES, FIX_IDS, Change, Fix, FixId, Value, Who
from bot.diagnosis.facts import ACT_SSS, APPROVED, Facts, FilterFacts
from bot.diagnosis.report import Report
from bot.diagnosis.rule import mailbox_name
from bot.diagnosis.selection import selection

__all__ = [
    "FILTER_FIXES",
    "FILTER_NAMESPACE",
    "FIX_IDS",
    "Change",
    "Fix",
    "FixId",
    "Value",
    "Who",
    "filter_id",
    "propose",
]

# Ours, fixed forever: the ids of the filters Sync Doctor adds are uuid5s in it, so that proposing the same
# filter twice (a second press, a second agent) names the same row and Dataverse refuses the duplicate.
FILTER_NAMESPACE = uuid.UUID("6f1c2a4e-9b3d-5e7f-8a21-5d0c7c15d0c7")
SYNC_FILTERS = 256  # userquery.querytype of synchronization filters (OutlookFilters)
FILTERS = "userqueries"
MAILBOXES = "mailboxes"

Proposer = Callable[[Facts, str], Fix | None]


def propose(facts: Facts, report: Report) -> tuple[Fix, ...]:
    """The fixes that apply to `report` (made from `facts`), in the report's fix order, one per fix id."""
    fixes: dict[FixId, Fix] = {}
    for finding in report.with_status("fail"):
        proposer = _PROPOSERS.get(finding.id)
        fix = proposer(facts, finding.id) if proposer is not None else None
        if fix is not None and fix.id not in fixes:
            fixes[fix.id] = fix
    return tuple(fixes.values())


def filter_id(systemuserid: str, record_type: str, key: str) -> str:
    """The userqueryid of the filter Sync Doctor adds for this person, type and selection key."""
    return str(uuid.uuid5(FILTER_NAMESPACE, f"{systemuserid.lower()}/{record_type}/{key}"))


# --- the person's own filters -----------------------------------------------------------------------------


def _applies_as_person(facts: Facts) -> bool:
    """A filter fix is the person's to apply, as themselves: that needs their Entra id."""
    return facts.user is not None and bool(facts.user.systemuserid) and bool(facts.user.aad_object_id)


def _own_inactive(facts: Facts) -> list[FilterFacts]:
    return [f for f in facts.filters or () if f.origin == "user" and not f.active and f.id]


def _outside_sync_filter(facts: Facts, finding: str) -> Fix | None:
    """Turn back on one of their filters that selects the record (Dataverse ran it as them); else add one
    that selects records like it, by their role in it."""
    record, user = facts.record, facts.user
    if record is None or user is None or not _applies_as_person(facts):
        return None
    selecting = [f for f in _own_inactive(facts) if f.matches]
    if selecting:
        return _activate(selecting[0], finding)
    chosen = selection(record)
    row = filter_id(user.systemuserid, record.type, chosen.key)
    columns: dict[str, Value] = {
        "userqueryid": row,
        "name": chosen.name,
        "fetchxml": chosen.fetchxml,
        "querytype": SYNC_FILTERS,
        "returnedtypecode": record.type,
    }
    changes = tuple(Change(FILTERS, None, column, None, value) for column, value in columns.items())
    return Fix("add-filter", finding, f"Add a sync filter: {chosen.name}", "self", changes)


def _no_sync_filter(facts: Facts, finding: str) -> Fix | None:
    """Turn back on their most recently changed filter of the type (one that selects the record first)."""
    if not _applies_as_person(facts):
        return None
    candidates = _by_preference(_own_inactive(facts))
    return _activate(candidates[0], finding) if candidates else None


def _by_preference(filters: Sequence[FilterFacts]) -> list[FilterFacts]:
    newest_first = sorted(
        filters, key=lambda f: f.modified_on.timestamp() if f.modified_on else float("-inf"), reverse=True
    )
    return sorted(newest_first, key=lambda f: f.matches is not True)  # stable: newest first among equals


def _activate(flt: FilterFacts, finding: str) -> Fix:
    changes = (
        Change(FILTERS, flt.id, "statecode", 1, 0),  # Inactive -> Active
        Change(FILTERS, flt.id, "statuscode", 2, 1),
    )
    return Fix("activate-filter", finding, f"Turn your filter '{flt.name}' back on", "self", changes)


# --- the mailbox: an agent's --------------------------------------------------------------------------------


def _mailbox_fix(
    facts: Facts, fix_id: FixId, finding: str, title: str, column: str, old: Value, new: Value
) -> Fix | None:
    mailbox = facts.mailbox
    if mailbox is None or not mailbox.mailboxid:
        return None
    return Fix(fix_id, finding, title, "agent", (Change(MAILBOXES, mailbox.mailboxid, column, old, new),))


def _schedule_test(facts: Facts, finding: str) -> Fix | None:
    mailbox = facts.mailbox
    if mailbox is None or mailbox.test_scheduled:
        return None  # already scheduled: nothing to change
    if finding == "act-sync-failing" and mailbox.primary_for_exchange is False:
        return None  # another org syncs this mailbox: a test here fails again (act-other-org says why)
    title = f"Test and enable {mailbox_name(facts)}"
    return _mailbox_fix(
        facts, "schedule-mailbox-test", finding, title, "testemailconfigurationscheduled", False, True
    )


def _set_server_side_sync(facts: Facts, finding: str) -> Fix | None:
    old = facts.mailbox.act_delivery if facts.mailbox else None
    title = (
        f"Set {mailbox_name(facts)} to sync appointments, contacts and tasks by server-side synchronization"
    )
    return _mailbox_fix(facts, "set-act-server-side-sync", finding, title, "actdeliverymethod", old, ACT_SSS)


def _approve_email(facts: Facts, finding: str) -> Fix | None:
    mailbox = facts.mailbox
    email = mailbox.email if mailbox else None
    title = (
        f"Approve the email address {email}"
        if email
        else f"Approve the email address of {mailbox_name(facts)}"
    )
    old = mailbox.approval if mailbox else None
    return _mailbox_fix(facts, "approve-email", finding, title, "emailrouteraccessapproval", old, APPROVED)


_PROPOSERS: dict[str, Proposer] = {
    "mailbox-not-approved": _approve_email,
    "act-not-server-side-sync": _set_server_side_sync,
    "mailbox-not-tested": _schedule_test,
    "act-sync-failing": _schedule_test,
    "no-sync-filter": _no_sync_filter,
    "outside-sync-filter": _outside_sync_filter,
}
