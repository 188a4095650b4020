"""The diagnosis report: findings out. Its JSON shape is a contract (design.md section 4).

`Report.to_dict()` writes that shape and `Report.from_dict()` reads it back, so an edge that keeps a
report (the sweep's outbox, a ticket) hands the cards typed values again. `Report.verdict()` is the
one-line answer every edge shows (the card, the CLI): what blocks sync, else what may explain it. A
`fail` finding carries the one-click fixes that apply to it (`Finding.fixes`, `Report.fixes`), written
under `"fixes"` only when there are some.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Literal, get_args

from bot.diagnosis.changes import Fix
from bot.diagnosis.facts import RECORD_TYPES, RecordType

__all__ = [
    "Evidence",
    "EvidenceValue",
    "Finding",
    "RecordSummary",
    "Report",
    "Status",
    "UserSummary",
    "Verdict",
    "VerdictKind",
    "stored_findings",
]

Status = Literal["fail", "warn", "pass", "unknown"]
STATUSES: tuple[Status, ...] = get_args(Status)
EvidenceValue = str | int | bool | None | list[str] | dict[str, str | int]
Evidence = dict[str, EvidenceValue]


def _need(data: Mapping[str, object], key: str) -> object:
    if key not in data:
        raise ValueError(f"missing {key!r}")
    return data[key]


def _required_text(data: Mapping[str, object], key: str) -> str:
    value = _need(data, key)
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string, not {type(value).__name__}")
    return value


def _optional_text(data: Mapping[str, object], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string or null, not {type(value).__name__}")
    return value


def _mapping(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{what} must be an object")
    return value


def _status(value: object) -> Status:
    for status in STATUSES:
        if value == status:
            return status
    raise ValueError(f"'status' must be one of {', '.join(STATUSES)}")


def _strings(value: object, what: str) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} must be a list of strings")
    return [str(v) for v in value]


def _evidence_value(key: str, value: object) -> EvidenceValue:
    if value is None or isinstance(value, str | int):
        return value
    if isinstance(value, list):
        return _strings(value, f"evidence {key!r}")
    items = _mapping(value, f"evidence {key!r}")
    flat = {k: v for k, v in items.items() if isinstance(v, str | int)}
    if len(flat) != len(items):
        raise ValueError(f"evidence {key!r} must hold strings and numbers")
    return flat


def _fixes(value: object) -> tuple[Fix, ...]:
    if not isinstance(value, list):
        raise ValueError("'fixes' must be a list")
    return tuple(Fix.from_dict(_mapping(item, "a fix")) for item in value)


@dataclass(frozen=True)
class Finding:
    """The outcome of one documented rule. A `fail` finding may carry the fixes that apply to it.

    Raises:
        ValueError: fixes on a finding that doesn't fail, or a fix of another finding.
    """

    id: str
    status: Status
    title: str
    evidence: Evidence = field(default_factory=dict)
    steps: tuple[str, ...] = ()
    source: str = ""
    fixes: tuple[Fix, ...] = ()

    def __post_init__(self) -> None:
        # Nothing to fix in what passes or only warns: a fix always answers a cause.
        if self.fixes and self.status != "fail":
            raise ValueError(f"a {self.status} finding carries no fixes")
        if any(fix.finding != self.id for fix in self.fixes):
            raise ValueError(f"a fix of another finding on {self.id!r}")

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "id": self.id,
            "status": self.status,
            "title": self.title,
            "evidence": self.evidence,
            "steps": list(self.steps),
            "source": self.source,
        }
        if self.fixes:
            data["fixes"] = [fix.to_dict() for fix in self.fixes]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Finding:
        """The finding `to_dict` wrote. `evidence`, `steps`, `source` and `fixes` may be absent.

        Raises:
            ValueError: `data` is not a finding (a key missing, a value of the wrong type).
        """
        evidence = _mapping(data.get("evidence") or {}, "'evidence'")
        return cls(
            id=_required_text(data, "id"),
            status=_status(_need(data, "status")),
            title=_required_text(data, "title"),
            evidence={k: _evidence_value(k, v) for k, v in evidence.items()},
            steps=tuple(_strings(data.get("steps") or [], "'steps'")),
            source=_optional_text(data, "source") or "",
            fixes=_fixes(data.get("fixes") or []),
        )


def stored_findings(data: Mapping[str, object]) -> tuple[Finding, ...]:
    """The findings of a kept report dict, skipping entries that are not findings.

    For what an edge stored and must still show: a `Report.to_dict()`, or the `{"findings": [], "error":
    ...}` the helpdesk keeps when the diagnosis could not run.
    """
    items = data.get("findings")
    found: list[Finding] = []
    for item in items if isinstance(items, list) else []:
        try:
            found.append(Finding.from_dict(_mapping(item, "a finding")))
        except ValueError:
            continue
    return tuple(found)


@dataclass(frozen=True)
class UserSummary:
    aad_object_id: str | None
    systemuserid: str | None
    name: str | None
    email: str | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> UserSummary:
        return cls(
            aad_object_id=_optional_text(data, "aad_object_id"),
            systemuserid=_optional_text(data, "systemuserid"),
            name=_optional_text(data, "name"),
            email=_optional_text(data, "email"),
        )


@dataclass(frozen=True)
class RecordSummary:
    type: RecordType
    id: str
    subject: str | None
    start: str | None  # ISO 8601, UTC, "Z"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> RecordSummary:
        record_type = next((t for t in RECORD_TYPES if t == data.get("type")), None)
        if record_type is None:
            raise ValueError(f"record 'type' must be one of {', '.join(RECORD_TYPES)}")
        return cls(
            type=record_type,
            id=_required_text(data, "id"),
            subject=_optional_text(data, "subject"),
            start=_optional_text(data, "start"),
        )


VerdictKind = Literal["blocked", "warned", "in_exchange", "clear"]


@dataclass(frozen=True)
class Verdict:
    """The one-line answer to "why isn't it in Outlook?".

    `blocked`: `findings` are the causes, in fix order. `warned`: nothing blocks sync, `findings` are the
    warnings. `in_exchange`: every check passed and the record is in Exchange. `clear`: every check that
    could run passed.
    """

    kind: VerdictKind
    findings: tuple[Finding, ...] = ()

    @property
    def ids(self) -> list[str]:
        return [f.id for f in self.findings]


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

    @property
    def fixes(self) -> tuple[Fix, ...]:
        """Every fix the findings carry, in fix order."""
        return tuple(fix for f in self.findings for fix in f.fixes)

    def fix(self, fix_id: str) -> Fix | None:
        return next((fix for fix in self.fixes if fix.id == fix_id), None)

    def with_status(self, *statuses: Status) -> tuple[Finding, ...]:
        """The findings with one of `statuses`, in report order."""
        return tuple(f for f in self.findings if f.status in statuses)

    def verdict(self) -> Verdict:
        causes, warnings = self.with_status("fail"), self.with_status("warn")
        if causes:
            return Verdict("blocked", causes)
        if warnings:
            return Verdict("warned", warnings)
        return Verdict("in_exchange" if self.in_exchange else "clear")

    def to_dict(self) -> dict[str, object]:
        return {
            "user": self.user.to_dict(),
            "record": None if self.record is None else self.record.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
            "causes": self.causes,
            "in_exchange": self.in_exchange,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Report:
        """The report `to_dict` wrote (`causes` is derived from the findings, so it is not read).

        Raises:
            ValueError: `data` is not a report.
        """
        record = _need(data, "record")
        findings = _need(data, "findings")
        if not isinstance(findings, list):
            raise ValueError("'findings' must be a list")
        in_exchange = data.get("in_exchange")
        if in_exchange is not None and not isinstance(in_exchange, bool):
            raise ValueError("'in_exchange' must be true, false or null")
        return cls(
            user=UserSummary.from_dict(_mapping(_need(data, "user"), "'user'")),
            record=None if record is None else RecordSummary.from_dict(_mapping(record, "'record'")),
            findings=tuple(Finding.from_dict(_mapping(f, "a finding")) for f in findings),
            in_exchange=in_exchange,
        )
