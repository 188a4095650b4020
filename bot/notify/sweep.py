"""The proactive sweep (design.md section 7): set-based, paged reads; one outbox entry per problem.

A person is affected when a mailbox-level finding fails for them: the same rules `diagnose` runs, on
the same facts, so the two never disagree. Each (person, cause, evidence) is told once: the outbox's
dedupe key remembers it across sweeps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bot.clients.dataverse import DataverseClient
from bot.diagnosis import MAILBOX_RULE_IDS, Facts, Finding, diagnose
from bot.store.base import Store

__all__ = ["Affected", "SweepResult", "find_affected", "run_sweep"]

log = logging.getLogger(__name__)
LEASE = "sweep"


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
    if await store.get_setting(f"mute:{person.aad_object_id.lower()}") is not None:
        result.muted += 1
        return True
    for finding in person.findings:
        key = f"notify:{person.aad_object_id.lower()}:{finding.id}:{fingerprint(finding)}"
        payload = {"tenant": found[0], "user": person.aad_object_id, "finding": finding.to_dict()}
        if await store.enqueue(key, "notify_problem", payload):
            result.queued += 1
        else:
            result.already_told += 1
    return True


async def _tell_the_fixed(store: Store, affected: list[Affected], checked: list[str]) -> int:
    """People who asked to be told when it's fixed, whose causes are gone now: tell them, once."""
    still = {a.aad_object_id.lower(): set(a.causes) for a in affected}
    told = 0
    for user in checked:
        watch = await store.get_setting(f"watch:{user.lower()}")
        if watch is None:
            continue
        if set(watch.get("causes") or []) & still.get(user.lower(), set()):
            continue
        found = await store.find_reference(user)
        if found is not None:
            text = "Good news: the sync problem with your Dynamics 365 mailbox is fixed. New appointments will reach Outlook again."
            payload = {"tenant": found[0], "user": user, "text": text}
            if await store.enqueue(f"fixed:{user.lower()}:{watch.get('since', '')}", "notify_user", payload):
                told += 1
        await store.delete_setting(f"watch:{user.lower()}")
    return told


async def _queue_digest(store: Store, unreachable: list[Affected]) -> None:
    counts = Counter(cause for person in unreachable for cause in person.causes)
    people = [f"{p.name or p.email or p.aad_object_id} ({', '.join(p.causes)})" for p in unreachable]
    key = "digest:" + hashlib.sha256("|".join(sorted(people)).encode()).hexdigest()[:16]
    await store.enqueue(key, "digest", {"counts": dict(counts), "people": people, "total": len(unreachable)})
