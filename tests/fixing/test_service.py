"""Applying fixes end to end: the production clients against the sandbox org over HTTP, the store in
SQLite. Alex's owner-only "Quarterly review with Contoso" gets a sync filter made as Alex; a second press
writes nothing; undo deactivates it. Dataverse's privileges decide mailbox fixes: an ordinary user is
refused, an agent granted prvWriteMailbox is not; someone else's own filters are nobody else's to change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.fixing import Applied, Fixer, NotAllowed, NotApplicable, Refused
from bot.fixing.applied import application_key, setting_key
from bot.investigation import Investigator
from bot.sandbox import LocalOrg, SandboxConfig
from bot.store import SqliteStore
from tests.support.org import ALEX, MEGAN, QUARTERLY, make_local

ISAIAH = "00000000-0000-0000-0000-0000000000023"  # his mailbox was never tested
MEGAN_USER = "a1000000-0000-4000-8000-000000000002"  # Megan's systemuserid
ISAIAH_MAILBOX = "b2000000-0000-4000-8000-000000000004"


class Writes:
    """The writes the clients send (an httpx event hook): (method, path, CallerObjectId)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []

    async def __call__(self, request: httpx.Request) -> None:
        if request.method in ("POST", "PATCH", "DELETE"):
            self.seen.append((request.method, request.url.path, request.headers.get("CallerObjectId")))


@pytest.fixture
def writes() -> Writes:
    return Writes()


def org_with(data: dict[str, Any], writes: Writes) -> Any:
    return make_local(data, SandboxConfig(sync_every=0), event_hooks={"request": [writes]})


@pytest.fixture
async def local(sample_data: dict[str, Any], writes: Writes) -> AsyncIterator[LocalOrg]:
    async with org_with(sample_data, writes) as running:
        yield running


@pytest.fixture
async def store() -> AsyncIterator[SqliteStore]:
    s = SqliteStore(":memory:")
    yield s
    await s.close()


def fixer_for(local: LocalOrg, store: SqliteStore, **options: Any) -> Fixer:
    investigator = Investigator(local.clients.dataverse, local.clients.graph)
    return Fixer(store, investigator, recheck_after=(), **options)


def own_filter(local: LocalOrg, row_id: str) -> dict[str, Any]:
    row = local.running.sandbox.org.by_key("userqueries", row_id)
    assert row is not None
    return row


async def test_alex_adds_a_filter_once_and_undoes_it(
    local: LocalOrg, store: SqliteStore, writes: Writes
) -> None:
    fixer = fixer_for(local, store)
    report, fixes = await fixer.proposals(ALEX, QUARTERLY, "appointment")
    assert report.causes == ["outside-sync-filter"] and [f.id for f in fixes] == ["add-filter"]

    applied = await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=ALEX)
    assert (applied.state, applied.first, applied.user, applied.by) == ("applied", True, ALEX, ALEX)
    [made] = applied.result["written"]
    assert made["action"] == "created" and writes.seen == [("POST", "/api/data/v9.2/userqueries", ALEX)]
    row = own_filter(local, made["id"])
    assert row["_ownerid_value"] == "a1000000-0000-4000-8000-000000000001" and row["statecode"] == 0
    assert "outside-sync-filter" not in (await fixer.proposals(ALEX, QUARTERLY))[0].causes

    again = await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=ALEX)
    assert again.first is False and again.key == applied.key and len(writes.seen) == 1  # nothing written
    assert [a.key for a in await fixer.history()] == [applied.key]

    undone = await fixer.undo(applied.key, by=ALEX)
    assert undone.state == "undone" and undone.first and "undone_at" in undone.result
    assert writes.seen[-1] == ("PATCH", f"/api/data/v9.2/userqueries({made['id']})", ALEX)
    assert (own_filter(local, made["id"])["statecode"], own_filter(local, made["id"])["statuscode"]) == (1, 2)
    assert (await fixer.undo(applied.key, by=ALEX)).first is False and len(writes.seen) == 2
    assert (await fixer.get(applied.key)) == replace(undone, first=False)


async def test_a_filter_undone_is_offered_back_and_re_activated(local: LocalOrg, store: SqliteStore) -> None:
    fixer = fixer_for(local, store)
    added = await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=ALEX)
    await fixer.undo(added.key, by=ALEX)
    _, fixes = await fixer.proposals(ALEX, QUARTERLY)
    [activate] = fixes
    assert activate.id == "activate-filter" and activate.changes[0].row == added.result["written"][0]["id"]
    back = await fixer.apply(ALEX, QUARTERLY, "appointment", "activate-filter", by=ALEX)
    assert own_filter(local, activate.changes[0].row or "")["statecode"] == 0
    await fixer.undo(back.key, by=ALEX)  # deactivates again what it re-activated
    assert own_filter(local, activate.changes[0].row or "")["statecode"] == 1


async def test_two_presses_at_once_write_once(local: LocalOrg, store: SqliteStore, writes: Writes) -> None:
    fixer = fixer_for(local, store)
    both = await asyncio.gather(
        *(fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=ALEX) for _ in range(2))
    )
    assert sorted(a.first for a in both) == [False, True] and both[0].key == both[1].key
    assert [w[0] for w in writes.seen] == ["POST"]


async def test_a_claim_whose_writer_crashed_is_taken_over_later(
    local: LocalOrg, store: SqliteStore, writes: Writes
) -> None:
    now = [datetime(2026, 11, 30, 12, 0, tzinfo=UTC)]
    fixer = fixer_for(local, store, now=lambda: now[0])
    _, [fix] = await fixer.proposals(ALEX, QUARTERLY)
    key = application_key(fix, ALEX)
    crashed = Applied(key, fix, ALEX, ALEX, "applying", now[0] - timedelta(minutes=1), record=QUARTERLY)
    await store.add_setting(setting_key(key), crashed.to_dict())
    pending = await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=ALEX)
    assert (pending.state, pending.first, writes.seen) == ("applying", False, [])  # someone is on it
    now[0] += timedelta(minutes=10)  # ... or was: the claim is stale, the write is safe to repeat
    applied = await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=ALEX)
    assert (applied.state, applied.first) == ("applied", True) and len(writes.seen) == 1


async def test_someone_else_may_not_change_alexs_filters(
    local: LocalOrg, store: SqliteStore, writes: Writes
) -> None:
    fixer = fixer_for(local, store)
    with pytest.raises(NotAllowed, match="only Alex Wilber"):
        await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=MEGAN)
    applied = await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=ALEX)
    with pytest.raises(NotAllowed):  # not the applied one either
        await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=MEGAN)
    with pytest.raises(NotAllowed):
        await fixer.undo(applied.key, by=MEGAN)
    assert [w[0] for w in writes.seen] == ["POST"]


async def test_a_fix_that_does_not_apply_writes_nothing(
    local: LocalOrg, store: SqliteStore, writes: Writes
) -> None:
    fixer = fixer_for(local, store)
    with pytest.raises(NotApplicable, match="outside-sync-filter"):
        await fixer.apply(ALEX, QUARTERLY, "appointment", "approve-email", by=ALEX)
    with pytest.raises(NotApplicable, match="no fix called"):
        await fixer.apply(ALEX, QUARTERLY, "appointment", "reboot", by=ALEX)
    with pytest.raises(NotApplicable, match="no fix was applied"):
        await fixer.undo("0123", by=ALEX)
    assert writes.seen == [] and await fixer.history() == []


async def test_an_ordinary_user_is_refused_a_mailbox_fix(local: LocalOrg, store: SqliteStore) -> None:
    fixer = fixer_for(local, store)
    with pytest.raises(Refused) as caught:
        await fixer.apply(ISAIAH, None, "appointment", "schedule-mailbox-test", by=ISAIAH)
    assert caught.value.detail is not None and "is missing prvWriteMailbox privilege" in caught.value.detail
    assert "prvWriteMailbox" in str(caught.value)
    [refused] = await fixer.history(ISAIAH)
    assert refused.state == "refused" and refused.by == ISAIAH and "prvWriteMailbox" in (refused.error or "")
    with pytest.raises(Refused):  # an agent without the privilege neither: Dataverse decides
        await fixer.apply(ISAIAH, None, "appointment", "schedule-mailbox-test", by=MEGAN)
    mailbox = local.running.sandbox.org.by_key("mailboxes", ISAIAH_MAILBOX)
    assert mailbox is not None and mailbox["testemailconfigurationscheduled"] is False


async def test_an_agent_granted_prvwritemailbox_schedules_the_test(
    sample_data: dict[str, Any], store: SqliteStore, writes: Writes
) -> None:
    granted = {**sample_data, "$privileges": {MEGAN_USER: ["prvWriteMailbox"]}}
    async with org_with(granted, writes) as local:
        fixer = fixer_for(local, store)
        applied = await fixer.apply(ISAIAH, None, "appointment", "schedule-mailbox-test", by=MEGAN)
        assert (applied.state, applied.by, applied.user) == ("applied", MEGAN, ISAIAH)
        assert writes.seen == [("PATCH", f"/api/data/v9.2/mailboxes({ISAIAH_MAILBOX})", MEGAN)]
        with pytest.raises(NotApplicable, match="only sync filter fixes"):
            await fixer.undo(applied.key, by=ISAIAH)
        local.running.sandbox.sync.run()  # the scheduled test completes
        report, fixes = await fixer.proposals(ISAIAH, None)
        assert report.causes == [] and fixes == ()
        again = await fixer.apply(ISAIAH, None, "appointment", "schedule-mailbox-test", by=MEGAN)
        assert again.first is False and len(writes.seen) == 1  # done: the first one's record
