"""`diagnose`: facts in, report out. Pure: no I/O, no Teams, no HTTP."""

from __future__ import annotations

from dataclasses import replace

from bot.diagnosis.facts import Facts
from bot.diagnosis.fixes import propose
from bot.diagnosis.report import Finding, RecordSummary, Report, UserSummary
from bot.diagnosis.rule import iso
from bot.diagnosis.rules import RULES

__all__ = ["diagnose"]


def diagnose(facts: Facts) -> Report:
    """Run every documented rule that applies to `facts` (in fix order) and return the report.

    A rule declared `only_without_causes` (sync-pending) speaks only when no rule before it failed. Each
    fail finding carries the one-click fixes `propose` finds for it.
    """
    findings: list[Finding] = []
    for rule in RULES:
        if rule.only_without_causes and any(x.status == "fail" for x in findings):
            continue
        finding = rule(facts)
        if finding is not None:
            findings.append(finding)
    report = Report(
        user=_user_summary(facts),
        record=_record_summary(facts),
        findings=tuple(findings),
        in_exchange=facts.exchange.found,
    )
    fixes = propose(facts, report)
    if not fixes:
        return report
    with_fixes = tuple(replace(f, fixes=tuple(x for x in fixes if x.finding == f.id)) for f in findings)
    return replace(report, findings=with_fixes)


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
    if record is None and facts.unreadable is not None:
        # Named and there, but not theirs to read: its id (so Re-check and Escalate keep it), no content.
        return RecordSummary(type=facts.record_type, id=facts.unreadable.id, subject=None, start=None)
    if record is None:
        return None
    return RecordSummary(type=record.type, id=record.id, subject=record.subject, start=iso(record.start))
