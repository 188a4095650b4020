"""The diagnostic core: facts in, findings out. Imports nothing from Teams, HTTP or the clients."""

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
from bot.diagnosis.report import Finding, RecordSummary, Report, Status, UserSummary
from bot.diagnosis.rules import MAILBOX_RULE_IDS, RULES

__all__ = [
    "MAILBOX_RULE_IDS",
    "RECORD_TYPES",
    "RULES",
    "ExchangeFacts",
    "Facts",
    "FilterFacts",
    "Finding",
    "MailboxFacts",
    "RecordFacts",
    "RecordSummary",
    "RecordType",
    "Report",
    "Status",
    "UserFacts",
    "UserSummary",
    "diagnose",
]
