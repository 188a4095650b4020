"""The diagnostic core: facts in, findings out. Imports nothing from Teams, HTTP or the clients.

Modules: `facts` (the input), `report` (the output: findings, report, verdict), `rule` (how a rule is
declared), `guidance` (what each finding says), `rules` (the checks and their table, in fix order),
`fixes` (the one-click fixes a fail finding carries: `changes` their types, `selection` the sync filter a
fix adds), `engine` (`diagnose`).
"""

from bot.diagnosis.engine import diagnose
from bot.diagnosis.facts import (
    RECORD_TYPES,
    ExchangeFacts,
    Facts,
    FilterFacts,
    MailboxFacts,
    RecordFacts,
    RecordType,
    UserFacts,
)
from bot.diagnosis.fixes import FIX_IDS, Change, Fix, FixId, Who, propose
from bot.diagnosis.guidance import Guidance
from bot.diagnosis.report import (
    Finding,
    RecordSummary,
    Report,
    Status,
    UserSummary,
    Verdict,
    VerdictKind,
    stored_findings,
)
from bot.diagnosis.rule import Outcome, Rule, Scope
from bot.diagnosis.rules import FINDING_IDS, MAILBOX_RULE_IDS, RULES, self_checks

__all__ = [
    "FINDING_IDS",
    "FIX_IDS",
    "MAILBOX_RULE_IDS",
    "RECORD_TYPES",
    "RULES",
    "Change",
    "ExchangeFacts",
    "Facts",
    "FilterFacts",
    "Finding",
    "Fix",
    "FixId",
    "Guidance",
    "MailboxFacts",
    "Outcome",
    "RecordFacts",
    "RecordSummary",
    "RecordType",
    "Report",
    "Rule",
    "Scope",
    "Status",
    "UserFacts",
    "UserSummary",
    "Verdict",
    "VerdictKind",
    "Who",
    "diagnose",
    "propose",
    "self_checks",
    "stored_findings",
]
