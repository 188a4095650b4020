"""The documented rules, one small check per finding id, and the table that runs them in fix order.

Each rule is declared once, `@rule(id, scope, guidance)` on its check: the check reads `Facts` and
returns an `Outcome` (status and evidence), or None when it does not apply (no mailbox checks without a
Dynamics 365 user, for example). Everything that needs the list of findings derives it from `RULES`:
the ids (`FINDING_IDS`, checked against design.md's table by the tests), the rules the sweep acts on
(`MAILBOX_RULE_IDS`), the checklist a person can follow when Dynamics 365 can't be read
(`self_checks`).
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.diagnosis import facts as f
from bot.diagnosis import guidance
from bot.diagnosis.facts import Facts, FilterFacts, MailboxFacts
from bot.diagnosis.guidance import fill
from bot.diagnosis.report import Evidence, Status
from bot.diagnosis.rule import SCOPES, Outcome, Rule, iso, label, rule

__all__ = ["FINDING_IDS", "MAILBOX_RULE_IDS", "RULES", "self_checks"]

_MAILBOX_STATES = {0: "Active", 1: "Inactive"}


# --- user -------------------------------------------------------------------------------------------


@rule("teams-user-unknown", "user", guidance.TEAMS_USER_UNKNOWN)
def teams_user_unknown(facts: Facts) -> Outcome:
    if facts.user is None:
        return Outcome("fail", {"looked_for": facts.user_ref})
    return Outcome("pass", {"systemuserid": facts.user.systemuserid, "name": facts.user.name})


@rule("user-disabled", "user", guidance.USER_DISABLED)
def user_disabled(facts: Facts) -> Outcome | None:
    if facts.user is None:
        return None
    if facts.user.is_disabled:
        return Outcome("fail", {"isdisabled": True})
    return Outcome("pass", {"isdisabled": facts.user.is_disabled})


# --- mailbox ----------------------------------------------------------------------------------------


def _mailbox(facts: Facts) -> MailboxFacts | None:
    return facts.mailbox if facts.user is not None else None


def _unread(evidence: Evidence, column: str) -> Outcome:
    """A column the rule needs came back null: the answer is unknown, and the evidence says why."""
    return Outcome("unknown", {**evidence, "why": f"Dynamics 365 returned no {column} for the mailbox"})


@rule("mailbox-missing", "mailbox", guidance.MAILBOX_MISSING)
def mailbox_missing(facts: Facts) -> Outcome | None:
    if facts.user is None:
        return None
    if facts.mailbox is None:
        return Outcome("fail", {"systemuserid": facts.user.systemuserid})
    return Outcome("pass", {"mailboxid": facts.mailbox.mailboxid})


@rule("mailbox-inactive", "mailbox", guidance.MAILBOX_INACTIVE)
def mailbox_inactive(facts: Facts) -> Outcome | None:
    mailbox = _mailbox(facts)
    if mailbox is None:
        return None
    # A null state is not read as Active: Dataverse returned nothing, so the evidence says so.
    evidence: Evidence = {"state": label(_MAILBOX_STATES, mailbox.statecode) or "unknown"}
    return Outcome("fail" if mailbox.statecode == 1 else "pass", evidence)


@rule("mailbox-not-approved", "mailbox", guidance.MAILBOX_NOT_APPROVED)
def mailbox_not_approved(facts: Facts) -> Outcome | None:
    mailbox = _mailbox(facts)
    if mailbox is None:
        return None
    evidence: Evidence = {"email_approval": label(f.APPROVAL, mailbox.approval)}
    if mailbox.approved_by_o365_admin is not None:
        evidence["approved_by_microsoft_365_admin"] = mailbox.approved_by_o365_admin
    if mailbox.approval is None:
        return _unread(evidence, "approval status")
    if mailbox.approval == f.APPROVED:
        return Outcome("pass", evidence)
    if facts.approval_required is False:
        # "Process emails only for approved users" is off: not a cause (the Exchange Online profile may
        # still want a Microsoft 365 admin's approval, which the warning says).
        return Outcome("warn", {**evidence, "org_requires_approval": False})
    return Outcome("fail", evidence)


@rule("act-not-server-side-sync", "mailbox", guidance.ACT_NOT_SERVER_SIDE_SYNC)
def act_not_server_side_sync(facts: Facts) -> Outcome | None:
    mailbox = _mailbox(facts)
    if mailbox is None:
        return None
    evidence: Evidence = {"appointments_contacts_tasks": label(f.ACT_DELIVERY, mailbox.act_delivery)}
    if mailbox.act_delivery is None:
        return _unread(evidence, "synchronization method")
    return Outcome("fail" if mailbox.act_delivery == f.ACT_NONE else "pass", evidence)


@rule("act-not-enabled", "mailbox", guidance.ACT_NOT_ENABLED)
def act_not_enabled(facts: Facts) -> Outcome | None:
    """sync-logic: a mailbox syncs these only if it is enabled for them (`enabledforact`): `warn` only."""
    mailbox = _mailbox(facts)
    if mailbox is None or mailbox.enabled_for_act is None:
        return None
    status: Status = "warn" if mailbox.enabled_for_act is False else "pass"
    return Outcome(status, {"enabledforact": mailbox.enabled_for_act})


@rule("act-outlook-client", "mailbox", guidance.ACT_OUTLOOK_CLIENT)
def act_outlook_client(facts: Facts) -> Outcome | None:
    mailbox = _mailbox(facts)
    if mailbox is None or mailbox.act_delivery is None:
        return None
    evidence: Evidence = {"appointments_contacts_tasks": label(f.ACT_DELIVERY, mailbox.act_delivery)}
    # Whether the add-in is installed and running can't be read from Dataverse: so warn, never fail.
    return Outcome("warn" if mailbox.act_delivery == f.ACT_OUTLOOK else "pass", evidence)


def _server_side_mailbox(facts: Facts) -> MailboxFacts | None:
    # The test status describes server-side sync; with another method the rules above already apply.
    mailbox = _mailbox(facts)
    return mailbox if mailbox is not None and mailbox.act_delivery == f.ACT_SSS else None


def _never_tested(mailbox: MailboxFacts) -> bool:
    return mailbox.act_status in (None, f.STATUS_NOT_RUN)


@rule("mailbox-not-tested", "mailbox", guidance.MAILBOX_NOT_TESTED)
def mailbox_not_tested(facts: Facts) -> Outcome | None:
    mailbox = _server_side_mailbox(facts)
    if mailbox is None:
        return None
    evidence: Evidence = {
        "status": label(f.ACT_STATUS, mailbox.act_status),
        "test_scheduled": bool(mailbox.test_scheduled),
        "last_test_completed": iso(mailbox.test_completed_on),
    }
    if not _never_tested(mailbox):
        return Outcome("pass", evidence)
    if mailbox.test_scheduled:
        return Outcome("warn", evidence)
    if mailbox.test_completed_on is not None:  # tested, yet Not Run: say so, not "never tested"
        return Outcome("fail", evidence, {"tested_on": iso(mailbox.test_completed_on) or ""}, "tested")
    return Outcome("fail", evidence)


@rule("act-sync-failing", "mailbox", guidance.ACT_SYNC_FAILING)
def act_sync_failing(facts: Facts) -> Outcome | None:
    mailbox = _server_side_mailbox(facts)
    if mailbox is None or _never_tested(mailbox):
        return None
    evidence: Evidence = {"status": label(f.ACT_STATUS, mailbox.act_status)}
    if mailbox.act_status == f.STATUS_FAILURE:
        evidence["last_sync_error"] = dict(mailbox.last_sync_error)
        return Outcome("fail", evidence)
    return Outcome("pass", evidence)


@rule("act-other-org", "mailbox", guidance.ACT_OTHER_ORG)
def act_other_org(facts: Facts) -> Outcome | None:
    """One Exchange mailbox syncs appointments, contacts and tasks with one org only; when another org
    has it, the test here fails (the documented alert). The flag alone is no evidence (its default is
    false), so it is read only beside a failing status. Proposed id (not in design.md's table yet), so
    `warn` only."""
    mailbox = _server_side_mailbox(facts)
    if mailbox is None or mailbox.act_status != f.STATUS_FAILURE or mailbox.primary_for_exchange is None:
        return None
    evidence: Evidence = {"this_org_syncs_the_mailbox": mailbox.primary_for_exchange}
    return Outcome("pass" if mailbox.primary_for_exchange else "warn", evidence)


# --- record -----------------------------------------------------------------------------------------


@rule("record-not-found", "record", guidance.RECORD_NOT_FOUND)
def record_not_found(facts: Facts) -> Outcome | None:
    if facts.user is None or facts.record_ref is None:
        return None
    if facts.unreadable is not None:
        return Outcome("pass", {"id": facts.unreadable.id})  # it exists: whether they may read it is next
    if facts.record is None:
        evidence: Evidence = {"looked_for": facts.record_ref}
        if facts.record_hint:
            evidence["hint"] = facts.record_hint
        return Outcome("fail", evidence)
    return Outcome("pass", {"id": facts.record.id})


@rule("record-not-readable", "record", guidance.RECORD_NOT_READABLE)
def record_not_readable(facts: Facts) -> Outcome | None:
    """Server-side sync syncs only what the person may read. Only the id (and, for an agent or admin, the
    owner) is evidence: nothing of the record's content reaches someone who may not read it."""
    if facts.user is None or facts.record_ref is None:
        return None
    if facts.unreadable is not None:
        owner = facts.unreadable.owner
        evidence: Evidence = {"id": facts.unreadable.id}
        if owner:
            evidence["owner"] = owner
        return Outcome("fail", evidence, {"owner": f" ({owner})" if owner else ""})
    if facts.record is None:
        return None
    return Outcome("pass", {"id": facts.record.id})


@rule("organizer-missing", "record", guidance.ORGANIZER_MISSING)
def organizer_missing(facts: Facts) -> Outcome | None:
    """The mailbox alert "the Organizer field is not present": sync needs an appointment's organizer."""
    record = facts.record
    if facts.user is None or record is None or record.type != "appointment" or record.has_organizer is None:
        return None
    return Outcome("pass" if record.has_organizer else "fail", {"organizer_present": record.has_organizer})


def _active_filters(facts: Facts) -> list[FilterFacts]:
    return [flt for flt in facts.filters or () if flt.active]


@rule("no-sync-filter", "record", guidance.NO_SYNC_FILTER)
def no_sync_filter(facts: Facts) -> Outcome | None:
    if facts.user is None:
        return None
    if facts.filters is None:
        return Outcome("unknown", {"why": facts.filters_error or "not read"})
    active = _active_filters(facts)
    evidence: Evidence = {
        "active_filters": [flt.name for flt in active],
        "inactive_filters": [flt.name for flt in facts.filters if not flt.active],
    }
    return Outcome("pass" if active else "fail", evidence)


@rule("outside-sync-filter", "record", guidance.OUTSIDE_SYNC_FILTER)
def outside_sync_filter(facts: Facts) -> Outcome | None:
    record = facts.record
    if facts.user is None or record is None or facts.filters is None:
        return None
    active = _active_filters(facts)
    if not active:
        return None  # no-sync-filter already says nothing of this type syncs
    evidence: Evidence = {"your_roles": list(record.roles), "filters": [flt.name for flt in active]}
    return _matched(active, evidence)


def _matched(active: list[FilterFacts], evidence: Evidence) -> Outcome:
    """Filters are OR-ed: one match is enough; with none, a filter that could not run leaves it unknown."""
    matched = [flt.name for flt in active if flt.matches]
    if matched:
        return Outcome("pass", {**evidence, "matched_by": matched})
    failed = [f"{flt.name}: {flt.error or 'not run'}" for flt in active if flt.matches is None]
    if failed:
        return Outcome("unknown", {**evidence, "could_not_check": failed})
    return Outcome("fail", evidence)


_FREE_STATES = {1: "completed", 2: "canceled"}
_FREE_STATUSES = {1: "free", 3: "completed", 4: "canceled"}


@rule("shown-as-free", "record", guidance.SHOWN_AS_FREE)
def shown_as_free(facts: Facts) -> Outcome | None:
    record = facts.record
    if record is None or record.type != "appointment":
        return None
    state = _FREE_STATES.get(record.statecode or -1) or _FREE_STATUSES.get(record.statuscode or -1)
    evidence: Evidence = {"statecode": record.statecode, "statuscode": record.statuscode}
    if state is None:
        return Outcome("pass", evidence)
    return Outcome("warn", evidence, {"state": state})


@rule("sync-pending", "record", guidance.SYNC_PENDING, only_without_causes=True)
def sync_pending(facts: Facts) -> Outcome | None:
    record, mailbox = facts.record, facts.mailbox
    if record is None or mailbox is None or facts.user is None:
        return None
    evidence: Evidence = {
        "last_successful_sync": iso(mailbox.last_successful_sync),
        "record_modified": iso(record.modified_on),
    }
    if facts.exchange.found:
        return Outcome("pass", evidence)
    behind = mailbox.last_successful_sync is None or (
        record.modified_on is not None and mailbox.last_successful_sync < record.modified_on
    )
    return Outcome("warn" if behind else "pass", evidence)


# --- the table ----------------------------------------------------------------------------------


def _in_fix_order(rules: Iterable[Rule]) -> tuple[Rule, ...]:
    """By scope (user, mailbox, record); within a scope, as listed. One rule per id."""
    ordered = tuple(sorted(rules, key=lambda r: SCOPES.index(r.scope)))
    ids = [r.id for r in ordered]
    if len(set(ids)) != len(ids):
        raise ValueError(f"a finding id is declared twice: {ids}")
    return ordered


RULES: tuple[Rule, ...] = _in_fix_order(
    (
        teams_user_unknown,
        user_disabled,
        mailbox_missing,
        mailbox_inactive,
        mailbox_not_approved,
        act_not_server_side_sync,
        act_not_enabled,
        act_outlook_client,
        mailbox_not_tested,
        act_sync_failing,
        act_other_org,
        record_not_found,
        record_not_readable,
        organizer_missing,
        no_sync_filter,
        outside_sync_filter,
        shown_as_free,
        sync_pending,
    )
)

FINDING_IDS: tuple[str, ...] = tuple(r.id for r in RULES)

# The rules that speak about the user and mailbox alone: what the proactive sweep acts on.
MAILBOX_RULE_IDS: frozenset[str] = frozenset(r.id for r in RULES if r.scope in ("user", "mailbox"))


def self_checks(record_type: str) -> tuple[str, ...]:
    """What a person can check on their own, in fix order, for a record of `record_type`."""
    words = {"type": record_type, "mailbox": "your mailbox"}
    return tuple(
        fill(step, words)
        for r in RULES
        for step in r.guidance.self_check_for.get(record_type, r.guidance.self_check)
    )
