"""The checks after a fix: due a while after it (`FIX_RECHECK_AFTER`), each re-diagnoses the same user and
record and tells the person in their 1:1 chat how it went, or, when it isn't through yet and a later check
remains, queues that one. Durable: each check is an outbox entry (kind `fix_followup`), and the next is
queued before this one is marked sent, under a key of its own (a retry queues it once). A check names the
application it follows (`check_ref`): one undone, or undone and applied again since, is not checked (the
new application's own checks tell the person, once).

    register_followups(deliverer, investigator)   # where the deliverer is built (serve, sweep, deliver)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from botbuilder.core import MessageFactory

from bot.diagnosis import RECORD_TYPES, RecordSummary, Report
from bot.errors import InputError
from bot.fixing.applied import Applied, setting_key
from bot.investigation import Investigator
from bot.notify.outbox.connector import Connector, Undeliverable
from bot.notify.outbox.deliverer import Deliverer, Result
from bot.notify.outbox.kinds import FixFollowup, enqueue
from bot.store.base import Store
from cards.common import literal

__all__ = ["FixFollowups", "check_key", "check_ref", "followup_message", "register_followups"]

log = logging.getLogger(__name__)

SUBJECT = 80  # characters of a record's subject in a message


def check_key(applied: Applied, after: float) -> str:
    """The outbox key of the check `after` seconds after `applied`: one per application and delay (an
    application undone and applied again is a new one: its time differs)."""
    return f"fix:{applied.key}:{applied.stamp}:after:{after:g}"


def check_ref(applied: Applied) -> str:
    """What a check carries as its `key`: the application's key and which application of it (`stamp`), so
    that the checks of one undone, or applied again since, are skipped: "<key>@<stamp>"."""
    return f"{applied.key}@{applied.stamp}"


def _ref(key: str) -> tuple[str, str | None]:
    """(application key, stamp) of a check's `key` (None: it names no application in particular)."""
    application, _, stamp = key.partition("@")
    return application, stamp or None


def followup_message(report: Report, *, last: bool, fix_id: str | None = None) -> str | None:
    """What to tell the person after a fix (`fix_id`), from a diagnosis run now; None: nothing yet (not
    through, and a later check remains).

    Fixed: the appointment is in their Outlook (Graph found it), or, with no record, for a contact or a
    task, or when Graph can't be asked, nothing blocks sync any more. After Test & Enable was scheduled,
    never before the test ran (it is still scheduled): only a warning until then. At the last check: still
    waiting for the next sync (or the test), or what blocks it now (the first cause)."""
    record = report.record
    name = _named(record)
    if fix_id == "schedule-mailbox-test" and _test_scheduled(report):
        if not last:
            return None
        return (
            "The fix is in, but the test of your mailbox (Test & Enable) has not run yet: still waiting "
            "for it. Ask me again later to check."
        )
    if record is not None and record.type == "appointment" and report.in_exchange:
        return f"Fixed: {name} is in your Outlook now."
    confirmed = record is None or record.type != "appointment" or report.in_exchange is None
    if not report.causes and confirmed:
        return f"Fixed: nothing keeps {name} from syncing with Outlook any more."
    if not last:
        return None
    if report.causes:
        cause = report.verdict().findings[0].title.rstrip(".")
        return f"The fix is in, but {name} still doesn't sync: {cause}. Ask me again to see what to do."
    return (
        f"The fix is in, but {name} is not in your Outlook yet: still waiting for the next sync. "
        "Ask me again later to check."
    )


def _test_scheduled(report: Report) -> bool:
    """The mailbox's Test & Enable is scheduled and has not run yet (the check reads the flag as evidence,
    whatever the status)."""
    finding = report.finding("mailbox-not-tested")
    return finding is not None and finding.evidence.get("test_scheduled") is True


def _named(record: RecordSummary | None) -> str:
    """The record as a message names it: its subject as written (no markdown), else its type."""
    if record is None:
        return "your mailbox"
    return literal(record.subject, SUBJECT) if record.subject else f"your {record.type}"


class FixFollowups:
    """The sender of `FixFollowup` entries.

    Args:
        now: the wall clock, epoch seconds (tests move it): when the next check is due.
    """

    def __init__(
        self,
        store: Store,
        connector: Connector,
        investigator: Investigator,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.connector = connector
        self.investigator = investigator
        self.now = now

    async def send(self, check: FixFollowup) -> Result:
        key, stamp = _ref(check.key)
        applied = await self._application(key)
        if applied is None or applied.state != "applied":
            return {"skipped": applied.state if applied else "no such application"}  # undone meanwhile
        if stamp is not None and stamp != applied.stamp:  # undone and applied again: its own checks tell
            return {"skipped": "an earlier application"}
        record_type = next((t for t in RECORD_TYPES if t == check.type), applied.record_type)
        try:
            report = await self.investigator.run(check.user, check.record, record_type)
        except InputError as exc:  # it never will run (a BackendError is retried, with backoff)
            raise Undeliverable(f"the check can't run: {exc}", permanent=True) from exc
        text = followup_message(report, last=not check.remaining, fix_id=applied.fix.id)
        if text is None:
            after, *later = check.remaining
            wait = max(0.0, applied.at.timestamp() + after - self.now())
            await enqueue(
                self.store,
                check_key(applied, after),
                check.model_copy(update={"remaining": later}),
                delay=wait,
            )
            return {"fixed": False, "next_in": round(wait, 1)}
        fixed = text.startswith("Fixed")
        await self._note(applied, fixed=fixed, in_exchange=report.in_exchange)
        found = await self.store.find_reference(check.user)
        if found is None:
            raise Undeliverable("no conversation with the person to tell them", permanent=True)
        await self.connector.send(found[1], MessageFactory.text(text))
        return {"fixed": fixed, "told": text}

    async def _application(self, key: str) -> Applied | None:
        data = await self.store.get_setting(setting_key(key))
        try:
            return Applied.from_dict(data) if data is not None else None
        except ValueError:
            log.warning("fix application %s can't be read: its check is skipped", key)
            return None

    async def _note(self, applied: Applied, *, fixed: bool, in_exchange: bool | None) -> None:
        """Keep the last check's outcome with the application (listed by `python -m bot fixes`), unless
        it changed meanwhile (undone, or applied again)."""
        current = await self.store.get_setting(setting_key(applied.key))
        if (
            current is None
            or current.get("state") != "applied"
            or current.get("at") != applied.to_dict()["at"]
        ):
            return
        checked = {"at": self.now(), "fixed": fixed, "in_exchange": in_exchange}
        await self.store.set_setting(
            setting_key(applied.key), {**current, "result": {**current.get("result", {}), "checked": checked}}
        )


def register_followups(deliverer: Deliverer, investigator: Investigator) -> None:
    """Send this process's `fix_followup` entries: the checks re-diagnose with `investigator`."""
    deliverer.register(FixFollowup, FixFollowups(deliverer.store, deliverer.connector, investigator).send)
