"""What became of the proactive notices, read back from the outbox a page at a time: a sweep's tally for
its delivery report, and one row per notice for `python -m bot report`.

Who and which cause come from an entry's payload, or, once the entry has expired (retention dropped its
body), from its dedupe key: the sweep's keys are `notify:<user>:<cause>:<fingerprint>` and
`fixed:<user>:<since>`.

    async for row in notice_rows(store, since=None):   # never the whole outbox in memory
        ...
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from bot.notify.outbox.kinds import Kind
from bot.store.base import OutboxQuery, OutboxRecord, Store

__all__ = [
    "STILL_SENDING",
    "Failure",
    "NoticeRow",
    "Tally",
    "describe",
    "given_up_since",
    "notice_rows",
    "records",
    "report_waits",
    "tally_sweep",
]

PAGE = 500  # entries read from the store at once
LISTED = 25  # failures named one by one on the channel's card
SETTLED_WAIT = 30.0  # seconds: a notice tried next later than this is counted as retrying, not waited for
UNREACHABLE = "no chat with the bot yet"
STILL_SENDING = "still being sent"  # what a delivery report waiting for its notices says it waits for


async def records(store: Store, query: OutboxQuery) -> AsyncIterator[OutboxRecord]:
    """Every entry `query` matches, read a page at a time."""
    cursor: str | None = None
    while True:
        page = await store.outbox_page(query, cursor=cursor, limit=PAGE)
        for record in page.records:
            yield record
        if page.cursor is None:
            return
        cursor = page.cursor


@dataclass(frozen=True)
class Who:
    user: str  # an Entra object id, or where a helpdesk message goes
    name: str  # as the sweep knew them ("" when it didn't say)
    cause: str  # a finding id, "fixed", or the kind of a helpdesk message


def describe(record: OutboxRecord) -> Who:
    """Who an entry is for and what it is about, from its payload or (expired) from its key."""
    payload, parts = record.payload, record.dedupe_key.split(":")
    if record.kind == Kind.NOTIFY_PROBLEM:
        finding: dict[str, Any] = payload.get("finding") or {}
        user = str(payload.get("user") or (parts[1] if len(parts) > 2 else ""))
        cause = str(finding.get("id") or (parts[2] if len(parts) > 2 else "?"))
        return Who(user, str(payload.get("name") or ""), cause)
    if record.kind == Kind.NOTIFY_USER:
        user = str(payload.get("user") or (parts[1] if len(parts) > 1 else ""))
        return Who(user, "", "fixed" if parts[0] == "fixed" else "ticket news")
    if record.kind in (Kind.POST_TICKET, Kind.UPDATE_TICKET_CARD):
        return Who(f"SD-{payload.get('number', parts[1] if len(parts) > 1 else '?')}", "", record.kind)
    return Who("helpdesk channel", "", record.kind)


@dataclass(frozen=True)
class Failure:
    who: str
    cause: str
    reason: str


@dataclass
class Tally:
    """How a sweep's notices went (or what gave up since the last report)."""

    told: int = 0
    failed: int = 0
    sending: int = 0  # due now or being sent
    retrying: int = 0  # waiting for a later try (429s, an outage)
    reasons: Counter[str] = field(default_factory=Counter)  # failures per reason
    failures: list[Failure] = field(default_factory=list)  # the first LISTED of them

    def fail(self, record: OutboxRecord) -> None:
        who = describe(record)
        reason = record.last_error or "gave up"
        self.failed += 1
        self.reasons[reason] += 1
        if len(self.failures) < LISTED:
            self.failures.append(Failure(who.name or who.user, who.cause, reason))

    @property
    def settled(self) -> bool:
        """Nothing is being sent now: every notice was sent, given up, or waits for a later retry."""
        return self.sending == 0


async def tally_sweep(store: Store, sweep: str, *, now: float) -> Tally:
    """The outcomes of the notices a sweep queued (its outbox group), its delivery report aside."""
    tally = Tally()
    async for record in records(store, OutboxQuery(group=sweep)):
        if record.kind == Kind.DELIVERY_REPORT:
            continue
        if record.status in ("sent", "expired"):
            tally.told += 1
        elif record.status == "dead":
            tally.fail(record)
        elif record.last_error and record.due is not None and record.due > now + SETTLED_WAIT:
            tally.retrying += 1  # failed before and waits: a claim in flight has no error yet
        else:
            tally.sending += 1
    return tally


async def given_up_since(store: Store, since: float, *, besides: str) -> Tally:
    """Entries of any kind given up since `since`, other than sweep `besides`'s (counted with it)."""
    tally = Tally()
    async for record in records(store, OutboxQuery(status="dead", done_since=since)):
        if record.group != besides:
            tally.fail(record)
    return tally


async def report_waits(store: Store, key: str, *, now: float, within: float = 300.0) -> bool:
    """The delivery report `key` is still to be sent, not yet tried or waiting for its notices (not for a
    helpdesk channel), and tried again within `within` seconds: a `sweep` run stays for it rather than
    leave it to the next run."""
    record = await store.outbox_record(key)
    if record is None or record.status != "pending":
        return False
    waits_for_notices = record.last_error is None or STILL_SENDING in record.last_error
    return waits_for_notices and (record.due or now) <= now + within


@dataclass(frozen=True)
class NoticeRow:
    """One line of `python -m bot report`."""

    queued: float | None  # when the notice was queued (or the sweep found the person unreachable)
    user: str
    name: str
    cause: str
    outcome: str  # delivered, failed, pending, unreachable
    reason: str  # why it failed or waits ("" when delivered)
    sent: float | None  # when it was delivered or given up
    kind: str


def _row(record: OutboxRecord) -> NoticeRow:
    who = describe(record)
    outcome = {"sent": "delivered", "expired": "delivered", "dead": "failed"}.get(record.status, "pending")
    reason = "" if outcome == "delivered" else (record.last_error or "")
    return NoticeRow(record.queued, who.user, who.name, who.cause, outcome, reason, record.done, record.kind)


def _unreachable(record: OutboxRecord) -> list[NoticeRow]:
    """The people a sweep's delivery report names as unreachable, one row per cause."""
    return [
        NoticeRow(record.payload.get("at"), p["user"], p["name"], cause, "unreachable", UNREACHABLE, None, "")
        for p in record.payload.get("unreachable") or []
        for cause in p.get("causes") or []
    ]


async def notice_rows(store: Store, *, since: float | None) -> AsyncIterator[NoticeRow]:
    """Every proactive notice queued since `since` and its outcome; the people sweeps could not reach;
    and any other outbox entry that was given up (a ticket's card, a report), so none fails silently."""
    async for record in records(store, OutboxQuery(since=since)):
        if record.kind == Kind.DELIVERY_REPORT:
            for row in _unreachable(record):
                yield row
        notice = record.kind == Kind.NOTIFY_PROBLEM or record.dedupe_key.startswith("fixed:")
        if notice or record.status == "dead":
            yield _row(record)
