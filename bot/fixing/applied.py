"""What applying a fix leaves behind: the application's record (`Applied`), its key, and the errors that
say why a fix was not applied.

An application is kept as the setting "fix:<key>" (`Applied.to_dict()`). Its key is a hash of what it
changes for whom, so two presses of one fix (or two agents at once) share one record: the first claims
it (insert-if-absent), the others read it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from bot.diagnosis import RECORD_TYPES, RecordType, Report
from bot.diagnosis.fixes import FILTER_FIXES, Fix
from bot.errors import SyncDoctorError

__all__ = [
    "FILTER_FIXES",
    "PERSON_TOO",
    "SETTING",
    "Applied",
    "FixError",
    "NotAllowed",
    "NotApplicable",
    "Refused",
    "State",
    "application_key",
    "may_apply",
    "setting_key",
]

SETTING = "fix"  # the settings' prefix: "fix:<key>"
# Agents' fixes the person may apply to their own mailbox too, as themselves, where Dataverse lets them (the
# issue's table: "the person too where Dataverse lets users test their own mailbox"). Their `who` stays
# "agent": it is an agent's fix that Dataverse may also allow a person.
PERSON_TOO = frozenset({"schedule-mailbox-test"})
# "applying": claimed, being written (or its writer crashed); "applied": written; "refused": Dataverse
# said no (403); "failed": Dataverse could not be reached or refused otherwise; "undone": written, then
# reversed.
State = Literal["applying", "applied", "refused", "failed", "undone"]
STATES: tuple[State, ...] = get_args(State)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FixError(SyncDoctorError):
    """A fix that was not applied, and why (CLI exit 2). `report`: the fresh diagnosis the decision was made
    on, when there is one, so that the caller can show it without diagnosing again (Teams' time limit)."""

    def __init__(self, message: str, *, report: Report | None = None) -> None:
        self.report = report
        super().__init__(message)


class NotApplicable(FixError):
    """No such fix applies now: it is fixed already, something else blocks sync, or the fix is unknown."""


class NotAllowed(FixError):
    """Who asked may not apply this fix: someone's own filters are changed by them alone."""


class Refused(FixError):
    """Dataverse refused the write (403) to who asked. `detail` is Dataverse's own message (e.g. "... is
    missing prvWriteMailbox privilege ..."), or None when it gave none."""

    def __init__(self, message: str, *, detail: str | None = None, report: Report | None = None) -> None:
        self.detail = detail
        super().__init__(message, report=report)


def may_apply(fix: Fix, *, by: str, person: str | None, is_agent: bool) -> bool:
    """Whether `by` may ask for `fix` for `person` (Entra object ids; `person` None: they have none).

    A person's own filters are changed by them alone. An agent's fix is an agent's (`is_agent`: the Teams
    layer and the CLI decide who is one), and, for `PERSON_TOO`, the person's too. Either way the write is
    made as `by`, so Dataverse's privileges still decide what actually changes."""
    themselves = person is not None and by.strip().lower() == person.strip().lower()
    if fix.who == "self":
        return themselves
    return is_agent or (themselves and fix.id in PERSON_TOO)


def application_key(fix: Fix, person: str) -> str:
    """The key of applying `fix` for `person` (an Entra object id): the same fix, changing the same
    columns of the same rows to the same values, for the same person, has the same key."""
    changes = sorted([c.table, c.row or "", c.column, c.new] for c in fix.changes)
    text = json.dumps([fix.id, person.lower(), changes], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def setting_key(key: str) -> str:
    return f"{SETTING}:{key}"


@dataclass(frozen=True)
class Applied:
    """One application of a fix, as recorded.

    Attributes:
        key: the application's key (`application_key`).
        fix: what it changes.
        user: for whom: their Entra object id, or their systemuserid when they have none (an agent's
            fix, written as the agent; nobody can be told in Teams then).
        by: who confirmed it (their Entra object id): the writes are made as them.
        state: see `State`.
        at: when it was claimed (UTC).
        result: what the writes gave: `{"written": [{"table", "id", "action"}]}` (action "created",
            "existed" (made by an earlier press: the person's own, on), "activated" (the same, turned
            back on), or "updated"); `no_followup` (why nobody will be told how it went), `settled_at`
            (a writer that stopped between write and record, found applied later), `undone_at`, `gone`
            (rows deleted meanwhile, when undone) and `checked` as they happen.
        error: why it was refused or failed.
        first: True for the call that applied it; False for a call that found it applied (or being
            applied) already and wrote nothing. Not kept.
        record: the record the diagnosis was about (its id), None for a mailbox check.
        record_type: that record's type.
    """

    key: str
    fix: Fix
    user: str
    by: str
    state: State
    at: datetime
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    first: bool = True
    record: str | None = None
    record_type: RecordType = "appointment"

    @property
    def stamp(self) -> str:
        """This application among those of its key (undone and applied again, applied again later): when
        it was claimed, in microseconds since the epoch. What its checks carry, to skip an older one's."""
        return str((self.at - _EPOCH) // timedelta(microseconds=1))

    @property
    def undoable(self) -> bool:
        return self.state == "applied" and self.fix.id in FILTER_FIXES

    def again(self) -> Applied:
        """This application as a later call sees it: nothing written by that call."""
        return replace(self, first=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "fix": self.fix.to_dict(),
            "user": self.user,
            "by": self.by,
            "state": self.state,
            "at": self.at.astimezone(UTC).isoformat(),
            "result": self.result,
            "error": self.error,
            "record": self.record,
            "type": self.record_type,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, first: bool = False) -> Applied:
        """The application `to_dict` wrote.

        Raises:
            ValueError: `data` is not one.
        """
        fix = data.get("fix")
        if not isinstance(fix, Mapping):
            raise ValueError("an application needs its fix")
        state = next((s for s in STATES if s == data.get("state")), None)
        record_type: RecordType = next((t for t in RECORD_TYPES if t == data.get("type")), "appointment")
        key, user, by, at = data.get("key"), data.get("user"), data.get("by"), data.get("at")
        if state is None or not all(isinstance(v, str) for v in (key, user, by, at)):
            raise ValueError("an application needs a key, a user, who applied it, a state and a time")
        assert isinstance(key, str) and isinstance(user, str) and isinstance(by, str) and isinstance(at, str)
        when = datetime.fromisoformat(at)
        result, error, record = data.get("result"), data.get("error"), data.get("record")
        return cls(
            key=key,
            fix=Fix.from_dict(fix),
            user=user,
            by=by,
            state=state,
            at=when if when.tzinfo else when.replace(tzinfo=UTC),
            result=dict(result) if isinstance(result, Mapping) else {},
            error=error if isinstance(error, str) else None,
            first=first,
            record=record if isinstance(record, str) else None,
            record_type=record_type,
        )
