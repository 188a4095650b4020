"""The proactive sweep (design.md section 7): set-based, paged reads; one outbox entry per problem.

A person is affected when a mailbox-level finding fails for them: the same rules `diagnose` runs, on
the same facts, so the two never disagree. Each (person, cause, evidence) is told once: the outbox's
dedupe key remembers it across sweeps.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.clients.dataverse import DataverseClient
from bot.diagnosis import MAILBOX_RULE_IDS, Facts, Finding, diagnose
from bot.notify.outbox.kinds import Digest, NotifyProblem, NotifyUser, enqueue
from bot.notify.preferences import clear_watch, get_watch, is_muted
from bot.store.base import Store

__all__ = ["Affected", "SweepResult", "find_affected", "run_sweep", "sweep_forever"]

log = logging.getLogger(__name__)
LEASE = "sweep"
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


async def find_affected(dataverse: DataverseClient) -> tuple[list[Affected], list[str], int, int]:
    """(affected, every user checked, requests made, pages read), reading users with mailboxes in pages."""
    before = dataverse.requests_sent
    affected: list[Affected] = []
    checked: list[str] = []
    pages = 0
    async for page in dataverse.users_with_mailboxes():
        pages += 1
        for user, mailbox in page:
            if user.aad_object_id is None:
                continue
            checked.append(user.aad_object_id)
            report = diagnose(
                Facts(user_ref=user.aad_object_id, record_type="appointment", user=user, mailbox=mailbox)
            )
            failing = tuple(f for f in report.with_status("fail") if f.id in MAILBOX_RULE_IDS)
            if failing:
                affected.append(Affected(user.aad_object_id, user.email, user.name, failing))
    return affected, checked, dataverse.requests_sent - before, pages


async def run_sweep(dataverse: DataverseClient, store: Store, *, dry_run: bool) -> SweepResult:
    """Find affected people; unless `dry_run`, queue what to tell them (and the helpdesk).

    Raises:
        RuntimeError: another sweep holds the lease.
    """
    owner = uuid.uuid4().hex
    if not dry_run and not await store.acquire_lease(LEASE, owner, seconds=900):
        raise RuntimeError("another sweep is running; try again when it has finished")
    try:
        affected, checked, requests, pages = await find_affected(dataverse)
        result = SweepResult(affected=affected, dataverse_requests=requests, pages=pages)
        unreachable: list[Affected] = []
        for person in affected:
            if not await _tell(store, person, result, dry_run=dry_run):
                unreachable.append(person)
        result.unreachable = len(unreachable)
        if not dry_run:
            result.fixed = await _tell_the_fixed(store, affected, checked)
            if unreachable:
                await _queue_digest(store, unreachable)
        return result
    finally:
        if not dry_run:
            await store.release_lease(LEASE, owner)


async def _tell(store: Store, person: Affected, result: SweepResult, *, dry_run: bool) -> bool:
    """Queue a notice per failing finding, once each (unless `dry_run` or muted). False: unreachable."""
    found = await store.find_reference(person.aad_object_id)
    if found is None:
        return False
    result.reachable += 1
    if dry_run:
        return True
    if await is_muted(store, person.aad_object_id):
        result.muted += 1
        return True
    for finding in person.findings:
        key = f"notify:{person.aad_object_id.lower()}:{finding.id}:{fingerprint(finding)}"
        notice = NotifyProblem(tenant=found[0], user=person.aad_object_id, finding=finding.to_dict())
        if await enqueue(store, key, notice):
            result.queued += 1
        else:
            result.already_told += 1
    return True


async def _tell_the_fixed(store: Store, affected: list[Affected], checked: list[str]) -> int:
    """People who asked to be told when it's fixed, whose causes are gone now: tell them, once."""
    still = {a.aad_object_id.lower(): set(a.causes) for a in affected}
    told = 0
    for user in checked:
        watch = await get_watch(store, user)
        if watch is None or set(watch.causes) & still.get(user.lower(), set()):
            continue
        found = await store.find_reference(user)
        if found is not None:
            news = NotifyUser(tenant=found[0], user=user, text=FIXED)
            if await enqueue(store, f"fixed:{user.lower()}:{watch.since}", news):
                told += 1
        await clear_watch(store, user)
    return told


async def _queue_digest(store: Store, unreachable: list[Affected]) -> None:
    counts = Counter(cause for person in unreachable for cause in person.causes)
    people = [f"{p.name or p.email or p.aad_object_id} ({', '.join(p.causes)})" for p in unreachable]
    key = "digest:" + hashlib.sha256("|".join(sorted(people)).encode()).hexdigest()[:16]
    await enqueue(store, key, Digest(counts=dict(counts), people=people, total=len(unreachable)))


async def sweep_forever(
    dataverse: DataverseClient, store: Store, *, every: float, then: Callable[[], None] | None = None
) -> None:
    """The proactive sweep every `every` seconds (SWEEP_INTERVAL_MINUTES); after each, `then()` (to start
    delivering what it queued at once)."""
    while True:
        try:
            result = await run_sweep(dataverse, store, dry_run=False)
            log.info("sweep: %d affected, %d queued", len(result.affected), result.queued)
            if then is not None:
                then()
        except RuntimeError as exc:  # another instance is sweeping
            log.info("sweep skipped: %s", exc)
        except Exception:
            log.exception("sweep failed; trying again next time")
        await asyncio.sleep(every)
