"""The documented rules, one small function per finding id, registered in fix order.

A rule reads `Facts` and returns a `Finding`, or None when it does not apply (for example, no mailbox
checks when there is no Dynamics 365 user). `RULES` is ordered user, then mailbox, then record, so the
failing ids come out in the order a person should fix them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.diagnosis import facts as f
from bot.diagnosis.facts import Facts, MailboxFacts
from bot.diagnosis.guidance import GUIDANCE
from bot.diagnosis.report import Evidence, Finding, Status

__all__ = ["MAILBOX_RULE_IDS", "RULES", "Rule", "make_finding"]

Rule = Callable[[Facts], Finding | None]


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def make_finding(
    finding_id: str, status: Status, facts: Facts, evidence: Evidence | None = None, **words: str
) -> Finding:
    """Build a finding with the guidance text for its id and status, filled in for these facts."""
    guide = GUIDANCE[finding_id]
    values = _Blank(type=facts.record_type, mailbox=_mailbox_name(facts), **words)
    title = guide.titles.get(status) or guide.titles.get("fail") or finding_id
    steps: tuple[str, ...] = ()
    if status in ("fail", "warn"):
        chosen = guide.warn_steps if status == "warn" and guide.warn_steps is not None else guide.steps
        steps = tuple(step.format_map(values) for step in chosen)
    return Finding(
        id=finding_id,
        status=status,
        title=title.format_map(values),
        evidence=evidence or {},
        steps=steps,
        source=guide.source,
    )


def _mailbox_name(facts: Facts) -> str:
    if facts.mailbox is not None and facts.mailbox.email:
        return f"the mailbox {facts.mailbox.email}"
    if facts.user is not None and facts.user.name:
        return f"{facts.user.name}'s mailbox"
    return "your mailbox"


def _label(table: dict[int, str], value: int | None) -> str | None:
    if value is None:
        return None
    return table.get(value, f"unknown value {value}")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- user -------------------------------------------------------------------------------------------


def teams_user_unknown(facts: Facts) -> Finding:
    if facts.user is None:
        return make_finding("teams-user-unknown", "fail", facts, {"looked_for": facts.user_ref})
    return make_finding(
        "teams-user-unknown",
        "pass",
        facts,
        {"systemuserid": facts.user.systemuserid, "name": facts.user.name},
    )


def user_disabled(facts: Facts) -> Finding | None:
    if facts.user is None:
        return None
    if facts.user.is_disabled:
        return make_finding("user-disabled", "fail", facts, {"isdisabled": True})
    return make_finding("user-disabled", "pass", facts, {"isdisabled": facts.user.is_disabled})


# --- mailbox ----------------------------------------------------------------------------------------


def _mailbox(facts: Facts) -> MailboxFacts | None:
    return facts.mailbox if facts.user is not None else None


def mailbox_missing(facts: Facts) -> Finding | None:
    if facts.user is None:
        return None
    if facts.mailbox is None:
        return make_finding("mailbox-missing", "fail", facts, {"systemuserid": facts.user.systemuserid})
    return make_finding("mailbox-missing", "pass", facts, {"mailboxid": facts.mailbox.mailboxid})


def mailbox_inactive(facts: Facts) -> Finding | None:
    mailbox = _mailbox(facts)
    if mailbox is None:
        return None
    evidence: Evidence = {"state": {0: "Active", 1: "Inactive"}.get(mailbox.statecode or 0, "unknown")}
    if mailbox.statecode == 1:
        return make_finding("mailbox-inactive", "fail", facts, evidence)
    return make_finding("mailbox-inactive", "pass", facts, evidence)


def mailbox_not_approved(facts: Facts) -> Finding | None:
    mailbox = _mailbox(facts)
    if mailbox is None:
        return None
    evidence: Evidence = {"email_approval": _label(f.APPROVAL, mailbox.approval)}
    if mailbox.approved_by_o365_admin is not None:
        evidence["approved_by_microsoft_365_admin"] = mailbox.approved_by_o365_admin
    if mailbox.approval is None:
        evidence["why"] = "Dynamics 365 returned no approval status for the mailbox"
        return make_finding("mailbox-not-approved", "unknown", facts, evidence)
    status: Status = "pass" if mailbox.approval == f.APPROVED else "fail"
    return make_finding("mailbox-not-approved", status, facts, evidence)


def act_not_server_side_sync(facts: Facts) -> Finding | None:
    mailbox = _mailbox(facts)
    if mailbox is None:
        return None
    evidence: Evidence = {"appointments_contacts_tasks": _label(f.ACT_DELIVERY, mailbox.act_delivery)}
    if mailbox.act_delivery is None:
        evidence["why"] = "Dynamics 365 returned no synchronization method for the mailbox"
        return make_finding("act-not-server-side-sync", "unknown", facts, evidence)
    if mailbox.act_delivery == f.ACT_NONE:
        return make_finding("act-not-server-side-sync", "fail", facts, evidence)
    return make_finding("act-not-server-side-sync", "pass", facts, evidence)


def act_not_enabled(facts: Facts) -> Finding | None:
    """sync-logic: a mailbox syncs these only if it is enabled for them (`enabledforact`).

    Not yet in design.md's table, so it reports `warn`, never `fail` (proposed id: act-not-enabled).
    """
    mailbox = _mailbox(facts)
    if mailbox is None or mailbox.enabled_for_act is None:
        return None
    status: Status = "warn" if mailbox.enabled_for_act is False else "pass"
    return make_finding("act-not-enabled", status, facts, {"enabledforact": mailbox.enabled_for_act})


def act_outlook_client(facts: Facts) -> Finding | None:
    mailbox = _mailbox(facts)
    if mailbox is None or mailbox.act_delivery is None:
        return None
    evidence: Evidence = {"appointments_contacts_tasks": _label(f.ACT_DELIVERY, mailbox.act_delivery)}
    # Whether the add-in is installed and running can't be read from Dataverse: so warn, never fail.
    status: Status = "warn" if mailbox.act_delivery == f.ACT_OUTLOOK else "pass"
    return make_finding("act-outlook-client", status, facts, evidence)


def _uses_server_side_sync(mailbox: MailboxFacts | None) -> bool:
    # The test status describes server-side sync; with another method the rules above already apply.
    return mailbox is not None and mailbox.act_delivery == f.ACT_SSS


def mailbox_not_tested(facts: Facts) -> Finding | None:
    mailbox = _mailbox(facts)
    if mailbox is None or not _uses_server_side_sync(mailbox):
        return None
    evidence: Evidence = {
        "status": _label(f.ACT_STATUS, mailbox.act_status),
        "test_scheduled": bool(mailbox.test_scheduled),
        "last_test_completed": _iso(mailbox.test_completed_on),
    }
    never_run = mailbox.act_status in (None, f.STATUS_NOT_RUN)
    if not never_run:
        return make_finding("mailbox-not-tested", "pass", facts, evidence)
    if mailbox.test_scheduled:
        return make_finding("mailbox-not-tested", "warn", facts, evidence)
    return make_finding("mailbox-not-tested", "fail", facts, evidence)


def act_sync_failing(facts: Facts) -> Finding | None:
    mailbox = _mailbox(facts)
    if (
        mailbox is None
        or not _uses_server_side_sync(mailbox)
        or mailbox.act_status in (None, f.STATUS_NOT_RUN)
    ):
        return None
    evidence: Evidence = {"status": _label(f.ACT_STATUS, mailbox.act_status)}
    if mailbox.act_status == f.STATUS_FAILURE:
        evidence["last_sync_error"] = dict(mailbox.last_sync_error)
        return make_finding("act-sync-failing", "fail", facts, evidence)
    return make_finding("act-sync-failing", "pass", facts, evidence)


# --- record -----------------------------------------------------------------------------------------


def _active_filters(facts: Facts) -> list[f.FilterFacts]:
    return [flt for flt in facts.filters or () if flt.active]


def no_sync_filter(facts: Facts) -> Finding | None:
    if facts.user is None:
        return None
    if facts.filters is None:
        return make_finding("no-sync-filter", "unknown", facts, {"why": facts.filters_error or "not read"})
    active = _active_filters(facts)
    evidence: Evidence = {
        "active_filters": [flt.name for flt in active],
        "inactive_filters": [flt.name for flt in facts.filters if not flt.active],
    }
    return make_finding("no-sync-filter", "pass" if active else "fail", facts, evidence)


def record_not_found(facts: Facts) -> Finding | None:
    if facts.user is None or facts.record_ref is None:
        return None
    if facts.record is None:
        evidence: Evidence = {"looked_for": facts.record_ref}
        if facts.record_hint:
            evidence["hint"] = facts.record_hint
        return make_finding("record-not-found", "fail", facts, evidence)
    return make_finding("record-not-found", "pass", facts, {"id": facts.record.id})


def outside_sync_filter(facts: Facts) -> Finding | None:
    record = facts.record
    if facts.user is None or record is None or facts.filters is None:
        return None
    active = _active_filters(facts)
    if not active:
        return None  # no-sync-filter already says nothing of this type syncs
    evidence: Evidence = {"your_roles": list(record.roles), "filters": [flt.name for flt in active]}
    matched = [flt.name for flt in active if flt.matches]
    if matched:
        evidence["matched_by"] = matched
        return make_finding("outside-sync-filter", "pass", facts, evidence)
    failed = [flt for flt in active if flt.matches is None]
    if failed:
        evidence["could_not_check"] = [f"{flt.name}: {flt.error or 'not run'}" for flt in failed]
        return make_finding("outside-sync-filter", "unknown", facts, evidence)
    return make_finding("outside-sync-filter", "fail", facts, evidence)


_FREE_STATES = {1: "completed", 2: "canceled"}
_FREE_STATUSES = {1: "free", 3: "completed", 4: "canceled"}


def shown_as_free(facts: Facts) -> Finding | None:
    record = facts.record
    if record is None or record.type != "appointment":
        return None
    state = _FREE_STATES.get(record.statecode or -1) or _FREE_STATUSES.get(record.statuscode or -1)
    evidence: Evidence = {"statecode": record.statecode, "statuscode": record.statuscode}
    if state is None:
        return make_finding("shown-as-free", "pass", facts, evidence)
    return make_finding("shown-as-free", "warn", facts, evidence, state=state)


def sync_pending(facts: Facts) -> Finding | None:
    record, mailbox = facts.record, facts.mailbox
    if record is None or mailbox is None or facts.user is None:
        return None
    evidence: Evidence = {
        "last_successful_sync": _iso(mailbox.last_successful_sync),
        "record_modified": _iso(record.modified_on),
    }
    if facts.exchange.found:
        return make_finding("sync-pending", "pass", facts, evidence)
    behind = mailbox.last_successful_sync is None or (
        record.modified_on is not None and mailbox.last_successful_sync < record.modified_on
    )
    return make_finding("sync-pending", "warn" if behind else "pass", facts, evidence)


# Fix order: user, then mailbox, then record. sync-pending is decided after the others (see engine).
RULES: tuple[tuple[str, Rule], ...] = (
    ("teams-user-unknown", teams_user_unknown),
    ("user-disabled", user_disabled),
    ("mailbox-missing", mailbox_missing),
    ("mailbox-inactive", mailbox_inactive),
    ("mailbox-not-approved", mailbox_not_approved),
    ("act-not-server-side-sync", act_not_server_side_sync),
    ("act-not-enabled", act_not_enabled),
    ("act-outlook-client", act_outlook_client),
    ("mailbox-not-tested", mailbox_not_tested),
    ("act-sync-failing", act_sync_failing),
    ("record-not-found", record_not_found),
    ("no-sync-filter", no_sync_filter),
    ("outside-sync-filter", outside_sync_filter),
    ("shown-as-free", shown_as_free),
    ("sync-pending", sync_pending),
)

# The rules that speak about the user and mailbox alone: what the proactive sweep acts on.
MAILBOX_RULE_IDS: frozenset[str] = frozenset(
    {
        "teams-user-unknown",
        "user-disabled",
        "mailbox-missing",
        "mailbox-inactive",
        "mailbox-not-approved",
        "act-not-server-side-sync",
        "mailbox-not-tested",
        "act-sync-failing",
    }
)
