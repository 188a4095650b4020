"""The diagnosis report: findings out. Its JSON shape is a contract (design.md section 4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bot.diagnosis.facts import RecordType

__all__ = ["Evidence", "Finding", "RecordSummary", "Report", "Status", "UserSummary"]

Status = Literal["fail", "warn", "pass", "unknown"]
EvidenceValue = str | int | bool | None | list[str] | dict[str, str | int]
Evidence = dict[str, EvidenceValue]


@dataclass(frozen=True)
class Finding:
    """The outcome of one documented rule."""

    id: str
    status: Status
    title: str
    evidence: Evidence = field(default_factory=dict)
    steps: tuple[str, ...] = ()
    source: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "status": self.status,
            "title": self.title,
            "evidence": self.evidence,
            "steps": list(self.steps),
            "source": self.source,
        }


@dataclass(frozen=True)
class UserSummary:
    aad_object_id: str | None
    systemuserid: str | None
    name: str | None
    email: str | None


@dataclass(frozen=True)
class RecordSummary:
    type: RecordType
    id: str
    subject: str | None
    start: str | None  # ISO 8601, UTC, "Z"


@dataclass(frozen=True)
class Report:
    """What `diagnose` concludes. `causes` are the failing ids in fix order: user, mailbox, record."""

    user: UserSummary
    record: RecordSummary | None
    findings: tuple[Finding, ...]
    in_exchange: bool | None

    @property
    def causes(self) -> list[str]:
        return [f.id for f in self.findings if f.status == "fail"]

    @property
    def warnings(self) -> list[str]:
        return [f.id for f in self.findings if f.status == "warn"]

    def finding(self, finding_id: str) -> Finding | None:
        return next((f for f in self.findings if f.id == finding_id), None)

    def to_dict(self) -> dict[str, object]:
        record = None
        if self.record is not None:
            record = {
                "type": self.record.type,
                "id": self.record.id,
                "subject": self.record.subject,
                "start": self.record.start,
            }
        return {
            "user": {
                "aad_object_id": self.user.aad_object_id,
                "systemuserid": self.user.systemuserid,
                "name": self.user.name,
                "email": self.user.email,
            },
            "record": record,
            "findings": [f.to_dict() for f in self.findings],
            "causes": self.causes,
            "in_exchange": self.in_exchange,
        }
