"""`diagnose`: facts in, report out. Pure: no I/O, no Teams, no HTTP."""

from __future__ import annotations

from bot.diagnosis.facts import Facts
from bot.diagnosis.report import Finding, RecordSummary, Report, UserSummary
from bot.diagnosis.rules import RULES

__all__ = ["diagnose"]


def diagnose(facts: Facts) -> Report:
    """Run every documented rule that applies to `facts` and return the report.

    `sync-pending` only speaks when nothing else failed: a pending sync is no explanation when a
    documented cause blocks sync anyway.
    """
    findings: list[Finding] = []
    for rule_id, rule in RULES:
        finding = rule(facts)
        if finding is None:
            continue
        if rule_id == "sync-pending" and any(x.status == "fail" for x in findings):
            continue
        findings.append(finding)
    return Report(
        user=_user_summary(facts),
        record=_record_summary(facts),
        findings=tuple(findings),
        in_exchange=facts.exchange.found,
    )


def _user_summary(facts: Facts) -> UserSummary:
    if facts.user is None:
        given_email = facts.user_ref if "@" in facts.user_ref else None
        given_id = None if given_email else facts.user_ref
        return UserSummary(aad_object_id=given_id, systemuserid=None, name=None, email=given_email)
    return UserSummary(
        aad_object_id=facts.user.aad_object_id,
        systemuserid=facts.user.systemuserid,
        name=facts.user.name,
        email=facts.user.email,
    )


def _record_summary(facts: Facts) -> RecordSummary | None:
    record = facts.record
    if record is None:
        return None
    start = record.start.strftime("%Y-%m-%dT%H:%M:%SZ") if record.start else None
    return RecordSummary(type=record.type, id=record.id, subject=record.subject, start=start)
