"""The proactive sweep (design.md section 7): set-based, paged reads; one outbox entry per problem.

A person is affected when a mailbox-level finding fails for them: the same rules `diagnose` runs, on
the same facts, so the two never disagree. Each (person, cause, evidence) is told once: the outbox's
dedupe key remembers it across sweeps, also after retention has expired the notice itself (the key stays:
a person still broken a month later is not told again; a changed problem, other evidence, is news).

Each sweep ends by queueing its delivery report for the helpdesk channel (sent once its notices are, by
`bot.helpdesk.reports`) and by expiring a bounded batch of sent entries older than the retention period.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.clients.dataverse import DataverseClient
from bot.diagnosis import MAILBOX_RULE_IDS, Facts, Finding, diagnose
from bot.errors import BackendError
from bot.notify.outbox.kinds import DeliveryReport, NotifyProblem, NotifyUser, Unreached, enqueue
from bot.notify.preferences import clear_watch, muted_users, watches
from bot.notify.progress import Progress
from bot.store.base import Store

__all__ = ["Affected", "SweepResult", "find_affected", "run_sweep", "sweep_forever"]

log = logging.getLogger(__name__)
LEASE = "sweep"
DAY = 86400.0
EXPIRE_PER_SWEEP = 1000  # sent entries expired per sweep at most: bounded work, the backlog goes over runs
UNREACHED_KEPT = 1000  # people named in a delivery report (the rest are counted)
UNREACHED_SEEN = "sweep_unreachable:last"  # the last report's unreachable people (a fingerprint)
TELL_AT_ONCE = 16  # people queued concurrently by the sweep
SEND_RATE = 40.0  # messages a second the report's wait allows for (Teams permits 50)
FIXED = (
    "Good news: the sync problem with your Dynamics 365 mailbox is fixed. "
    "New appointments will reach Outlook again."
)


@dataclass(frozen=True)
class Affected:
    aad_object_id: str
    email: str | None
    name: str | None
    findings: tuple[Finding, ...]  # the failing mailbox-level findings, as in the report

    @property
    def causes(self) -> list[str]:
        return [f.id for f in self.findings]


@dataclass
class SweepResult:
    affected: list[Affected] = field(default_factory=list)
    reachable: int = 0
    unreachable: int = 0
    dataverse_requests: int = 0
    pages: int = 0
    queued: int = 0
    already_told: int = 0
    muted: int = 0
    fixed: int = 0
    expired: int = 0  # sent entries whose body retention dropped this time
    sweep: str = ""  # this sweep's id: its notices' outbox group
    report_key: str | None = None  # its delivery report's dedupe key

    def dry_run_json(self) -> dict[str, Any]:
        """The `sweep --dry-run --json` contract."""
        return {
            "affected": [
                {"aad_object_id": a.aad_object_id, "email": a.email, "causes": a.causes}
                for a in self.affected
            ],
            "reachable": self.reachable,
            "unreachable": self.unreachable,
            "dataverse_requests": self.dataverse_requests,
        }


def fingerprint(finding: Finding) -> str:
    """Same cause with the same evidence: the same problem (a changed error is a new one)."""
    evidence = json.dumps(finding.evidence, sort_keys=True, default=str)
    return hashlib.sha256(f"{finding.id}|{evidence}".encode()).hexdigest()[:16]


async def find_affected(
    dataverse: DataverseClient, progress: Progress | None = None
) -> tuple[list[Affected], list[str], int, int]:
    """(affected, every user checked, requests made, pages read), reading users with mailboxes in pages."""
    before = dataverse.requests_sent
    affected: list[Affected] = []
    checked: list[str] = []
    pages = 0
    async for page_affected, page_checked in affected_pages(dataverse, progress):
        pages += 1
        affected += page_affected
        checked += page_checked
    return affected, checked, dataverse.requests_sent - before, pages


async def affected_pages(
    dataverse: DataverseClient, progress: Progress | None = None
) -> AsyncIterator[tuple[list[Affected], list[str]]]:
    """Per page of users with mailboxes, as it is read: (the affected, every user checked). A sweep tells
    the first page's people while the next is read, so the first notice doesn't wait for the last page."""
    approval_required = await _approval_required(dataverse)  # the same rules as a diagnosis: one read
    async for page in dataverse.users_with_mailboxes():
        affected: list[Affected] = []
        checked: list[str] = []
        for user, mailbox in page:
            if user.aad_object_id is None:
                continue
            checked.append(user.aad_object_id)
            report = diagnose(
                Facts(
                    user_ref=user.aad_object_id,
                    record_type="appointment",
                    user=user,
                    mailbox=mailbox,
                    approval_required=approval_required,
                )
            )
            failing = tuple(f for f in report.with_status("fail") if f.id in MAILBOX_RULE_IDS)
            if failing:
                affected.append(Affected(user.aad_object_id, user.email, user.name, failing))
        if progress is not None:
            progress.add(read=len(page), affected=len(affected))
        yield affected, checked


async def _approval_required(dataverse: DataverseClient) -> bool | None:
    """The org's "Process emails only for approved users": unknown (None) when it can't be read, so an
    unapproved address stays a cause, as a diagnosis says."""
    try:
        return await dataverse.email_approval_required()
    except BackendError as exc:
        log.info("could not read the org's email approval setting: %s", exc)
        return None


async def run_sweep(
    dataverse: DataverseClient,
    store: Store,
    *,
    dry_run: bool,
    retention_days: float = 30.0,
    clock: Callable[[], float] = time.time,
    progress: Progress | None = None,
) -> SweepResult:
    """Find affected people; unless `dry_run`, queue what to tell them, then the delivery report for the
    helpdesk, and expire sent entries older than `retention_days` (by `clock`, epoch seconds).

    Raises:
        RuntimeError: another sweep holds the lease.
    """
    owner = uuid.uuid4().hex
    if not dry_run and not await store.acquire_lease(LEASE, owner, seconds=900):
        raise RuntimeError("another sweep is running; try again when it has finished")
    try:
        requests_before = dataverse.requests_sent
        result = SweepResult(affected=[], dataverse_requests=0, pages=0, sweep=owner)
        checked: list[str] = []
        unreachable: list[Affected] = []
        try:
            await _tell_page_by_page(dataverse, store, result, checked, unreachable, dry_run, progress)
        except BaseException:
            if not dry_run and result.queued:  # some were told: the helpdesk hears of them all the same
                result.unreachable = len(unreachable)
                await _queue_report(store, result, unreachable, now=clock())
            raise
        result.dataverse_requests = dataverse.requests_sent - requests_before
        affected = result.affected
        result.unreachable = len(unreachable)
        if not dry_run:
            result.fixed = await _tell_the_fixed(store, affected, checked)
            result.report_key = await _queue_report(store, result, unreachable, now=clock())
            before = clock() - retention_days * DAY
            result.expired = await store.expire_sent(before=before, limit=EXPIRE_PER_SWEEP)
        return result
    finally:
        if not dry_run:
            await store.release_lease(LEASE, owner)


async def _tell_page_by_page(
    dataverse: DataverseClient,
    store: Store,
    result: SweepResult,
    checked: list[str],
    unreachable: list[Affected],
    dry_run: bool,
    progress: Progress | None,
) -> None:
    """Each page's affected people, queued as the page is read (delivery may start before the last)."""
    async for page_affected, page_checked in affected_pages(dataverse, progress):
        # Read once a page (one request, not one per person): who asked to hear no more until just now.
        muted = set() if dry_run or not page_affected else await muted_users(store)
        result.pages += 1
        result.affected += page_affected
        checked += page_checked
        # Queued now (delivery may start before the last page is read), several people at a time: each
        # costs a few store round trips, and a shared store (Azure) answers them in parallel.
        for start in range(0, len(page_affected), TELL_AT_ONCE):
            people = page_affected[start : start + TELL_AT_ONCE]
            told = await asyncio.gather(
                *(_tell(store, p, result, muted, dry_run=dry_run, progress=progress) for p in people)
            )
            unreachable += [person for person, reached in zip(people, told, strict=True) if not reached]


async def _tell(
    store: Store,
    person: Affected,
    result: SweepResult,
    muted: set[str],
    *,
    dry_run: bool,
    progress: Progress | None,
) -> bool:
    """Queue a notice per failing finding, once each (unless `dry_run` or muted). False: unreachable."""
    found = await store.find_reference(person.aad_object_id)
    if found is None:
        if progress is not None:
            progress.add(unreachable=1)
        return False
    result.reachable += 1
    if dry_run:
        return True
    if person.aad_object_id.lower() in muted:
        result.muted += 1
        return True
    for finding in person.findings:
        key = f"notify:{person.aad_object_id.lower()}:{finding.id}:{fingerprint(finding)}"
        notice = NotifyProblem(
            tenant=found[0],
            user=person.aad_object_id,
            finding=finding.to_dict(),
            name=_name(person),
            reference=found[1],
        )
        queued = await enqueue(store, key, notice, group=result.sweep)
        result.queued += queued
        result.already_told += not queued
        if progress is not None:
            progress.add(queued=int(queued), already_told=int(not queued))
    return True


def _name(person: Affected) -> str:
    return person.name or person.email or person.aad_object_id


async def _tell_the_fixed(store: Store, affected: list[Affected], checked: list[str]) -> int:
    """People who asked to be told when it's fixed, whose causes are gone now: tell them, once."""
    still = {a.aad_object_id.lower(): set(a.causes) for a in affected}
    waiting = await watches(store)  # one read: few people watch, every person with a mailbox is checked
    told = 0
    for user in checked:
        watch = waiting.get(user.lower())
        if watch is None or set(watch.causes) & still.get(user.lower(), set()):
            continue
        found = await store.find_reference(user)
        if found is not None:
            news = NotifyUser(tenant=found[0], user=user, text=FIXED)
            if await enqueue(store, f"fixed:{user.lower()}:{watch.since}", news):
                told += 1
        await clear_watch(store, user)
    return told


async def _queue_report(store: Store, result: SweepResult, unreachable: list[Affected], *, now: float) -> str:
    """The sweep's delivery report, durable before anything is sent; its key."""
    people = sorted(f"{p.aad_object_id.lower()}:{','.join(p.causes)}" for p in unreachable)
    seen = hashlib.sha256("|".join(people).encode()).hexdigest()[:16]
    changed = (await store.get_setting(UNREACHED_SEEN) or {}).get("people") != seen
    if changed:
        await store.set_setting(UNREACHED_SEEN, {"people": seen})
    report = DeliveryReport(
        sweep=result.sweep,
        at=now,
        found=len(result.affected),
        reachable=result.reachable,
        queued=result.queued,
        already_told=result.already_told,
        muted=result.muted,
        fixed=result.fixed,
        causes=dict(Counter(cause for person in result.affected for cause in person.causes)),
        unreachable=[Unreached(user=p.aad_object_id, name=_name(p), causes=p.causes) for p in unreachable][
            :UNREACHED_KEPT
        ],
        unreachable_total=len(unreachable),
        unreachable_changed=changed and bool(unreachable),
        # Long enough to send what was queued at Teams' pace, twice over; then it goes with what is known.
        settle_by=now + min(3600.0, 60.0 + 2 * result.queued / SEND_RATE),
    )
    key = f"report:{result.sweep}"
    await enqueue(store, key, report, group=result.sweep)
    return key


async def sweep_forever(
    dataverse: DataverseClient,
    store: Store,
    *,
    every: float,
    then: Callable[[], None] | None = None,
    retention_days: float = 30.0,
    progress: Callable[[], Progress | None] = lambda: None,
) -> None:
    """The proactive sweep every `every` seconds (SWEEP_INTERVAL_MINUTES); after each, `then()` (to start
    delivering what it queued at once). `progress` gives each sweep its display (None: logs only)."""
    while True:
        try:
            shown = progress()
            result = await run_sweep(
                dataverse, store, dry_run=False, retention_days=retention_days, progress=shown
            )
            if shown is not None:
                shown.finish()
            log.info(
                "sweep: %d affected, %d queued, %d already told, %d unreachable, %d expired",
                len(result.affected),
                result.queued,
                result.already_told,
                result.unreachable,
                result.expired,
            )
            if then is not None:
                then()
        except RuntimeError as exc:  # another instance is sweeping
            log.info("sweep skipped: %s", exc)
        except Exception:
            log.exception("sweep failed; trying again next time")
        await asyncio.sleep(every)
