"""Applying fixes end to end: the production clients against the sandbox org over HTTP, the store in
SQLite. Alex's owner-only "Quarterly review with Contoso" gets a sync filter made as Alex; a second press
writes nothing; undo deactivates it. Dataverse's privileges decide mailbox fixes: an ordinary user is
refused, an agent granted prvWriteMailbox is not; someone else's own filters are nobody else's to change."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.diagnosis.fixes import Fix
from bot.errors import BackendError
from bot.fixing import Applied, Fixer, NotAllowed, NotApplicable, Refused, may_apply
from bot.fixing.applied import application_key, setting_key
from bot.investigation import Investigator
from bot.sandbox import LocalOrg, SandboxConfig
from bot.sandbox.config import Fault
from bot.store import SqliteStore
from tests.support.org import ALEX, MEGAN, QUARTERLY, make_local

ISAIAH = "00000000-0000-0000-0000-0000000000023"  # his mailbox was never tested
MEGAN_USER = "a1000000-0000-4000-8000-000000000002"  # Megan's systemuserid
ISAIAH_MAILBOX = "b2000000-0000-4000-8000-000000000004"
ISAIAH_EMAIL = "isaiahl@example.com"
ALEX_USER = "a1000000-0000-4000-8000-000000000001"  # Alex's systemuserid


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
        await fixer.apply(ISAIAH, None, "appointment", "schedule-mailbox-test", by=MEGAN, is_agent=True)
    mailbox = local.running.sandbox.org.by_key("mailboxes", ISAIAH_MAILBOX)
    assert mailbox is not None and mailbox["testemailconfigurationscheduled"] is False


async def test_an_agent_granted_prvwritemailbox_schedules_the_test(
    sample_data: dict[str, Any], store: SqliteStore, writes: Writes
) -> None:
    granted = {**sample_data, "$privileges": {MEGAN_USER: ["prvWriteMailbox"]}}
    async with org_with(granted, writes) as local:
        fixer = fixer_for(local, store)
        applied = await fixer.apply(
            ISAIAH, None, "appointment", "schedule-mailbox-test", by=MEGAN, is_agent=True
        )
        assert (applied.state, applied.by, applied.user) == ("applied", MEGAN, ISAIAH)
        assert writes.seen == [("PATCH", f"/api/data/v9.2/mailboxes({ISAIAH_MAILBOX})", MEGAN)]
        with pytest.raises(NotApplicable, match="only sync filter fixes"):
            await fixer.undo(applied.key, by=ISAIAH)
        again = await fixer.apply(
            ISAIAH, None, "appointment", "schedule-mailbox-test", by=MEGAN, is_agent=True
        )
        assert again.first is False and len(writes.seen) == 1  # scheduled still: the first one's record
        local.running.sandbox.sync.run()  # the scheduled test completes (the flag is cleared)
        report, fixes = await fixer.proposals(ISAIAH, None)
        assert report.causes == [] and fixes == ()
        with pytest.raises(NotApplicable, match="nothing blocks sync"):  # done: nothing to apply now
            await fixer.apply(ISAIAH, None, "appointment", "schedule-mailbox-test", by=MEGAN, is_agent=True)
        assert len(writes.seen) == 1


async def quarterly_fix(local: LocalOrg, store: SqliteStore) -> Fix:
    _, [fix] = await fixer_for(local, store).proposals(ALEX, QUARTERLY)
    return fix


async def test_a_filter_someone_else_made_under_the_fix_id_is_not_counted(
    local: LocalOrg, store: SqliteStore
) -> None:
    """Anyone can compute the id of the filter the bot adds for Alex. Megan makes one of her own under it
    first: Alex's add-filter meets 412, reads the row as Alex, and finds it is not his."""
    fix = await quarterly_fix(local, store)
    squat = {c.column: c.new for c in fix.changes}
    await local.clients.dataverse.create_row("userqueries", squat, caller=MEGAN)
    fixer = fixer_for(local, store)
    with pytest.raises(NotApplicable, match="exists and is not Alex Wilber's"):
        await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=ALEX)
    [failed] = await fixer.history(ALEX)
    assert failed.state == "failed" and "is not Alex Wilber's" in (failed.error or "")
    assert "outside-sync-filter" in (await fixer.proposals(ALEX, QUARTERLY))[0].causes


async def test_alexs_own_filter_under_the_fix_id_is_made_the_fix(local: LocalOrg, store: SqliteStore) -> None:
    """A filter of Alex's under the id (an earlier press whose answer was lost, turned off and changed
    since): the press turns it back on as the fix describes it."""
    fix = await quarterly_fix(local, store)
    columns = {c.column: c.new for c in fix.changes}
    row = str(columns["userqueryid"])
    dataverse = local.clients.dataverse
    other = str(columns["fetchxml"]).replace("eq-userid", "ne-userid")
    await dataverse.create_row("userqueries", {**columns, "fetchxml": other}, caller=ALEX)
    await dataverse.update_row("userqueries", row, {"statecode": 1, "statuscode": 2}, caller=ALEX)
    fixer = fixer_for(local, store)
    applied = await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=ALEX)
    assert applied.state == "applied" and applied.result["written"] == [
        {"table": "userqueries", "id": row, "action": "activated"}
    ]
    assert (own_filter(local, row)["statecode"], own_filter(local, row)["fetchxml"]) == (
        0,
        columns["fetchxml"],
    )
    assert "outside-sync-filter" not in (await fixer.proposals(ALEX, QUARTERLY))[0].causes


async def crashed_after_the_write(local: LocalOrg, store: SqliteStore, at: datetime) -> Applied:
    """What a writer killed between its write and its record leaves: the filter made (as Alex), the
    application still "applying"."""
    fix = await quarterly_fix(local, store)
    await local.clients.dataverse.create_row(
        "userqueries", {c.column: c.new for c in fix.changes}, caller=ALEX
    )
    crashed = Applied(application_key(fix, ALEX), fix, ALEX, ALEX, "applying", at, record=QUARTERLY)
    await store.add_setting(setting_key(crashed.key), crashed.to_dict())
    return crashed


async def test_a_fix_whose_writer_crashed_after_the_write_is_settled_by_the_next_press(
    local: LocalOrg, store: SqliteStore
) -> None:
    now = [datetime(2026, 11, 30, 12, 0, tzinfo=UTC)]
    crashed = await crashed_after_the_write(local, store, now[0])
    fixer = Fixer(store, Investigator(local.clients.dataverse), recheck_after=(900,), now=lambda: now[0])
    pending = await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=ALEX)
    assert (pending.state, pending.first) == ("applying", False)  # within the claim's window: being written
    now[0] += timedelta(hours=1)
    settled = await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=ALEX)
    assert (settled.key, settled.state, settled.first) == (crashed.key, "applied", False)
    [made] = settled.result["written"]
    assert made["table"] == "userqueries" and "settled_at" in settled.result
    waiting, _ = await store.pending()
    assert waiting == 1  # its check after the next sync is queued now
    undone = await fixer.undo(settled.key, by=ALEX)
    assert undone.state == "undone" and own_filter(local, made["id"])["statecode"] == 1


async def test_undo_settles_a_fix_whose_writer_crashed(local: LocalOrg, store: SqliteStore) -> None:
    now = [datetime(2026, 11, 30, 12, 0, tzinfo=UTC)]
    crashed = await crashed_after_the_write(local, store, now[0] - timedelta(hours=1))
    fixer = fixer_for(local, store, now=lambda: now[0])
    undone = await fixer.undo(crashed.key, by=ALEX)
    [made] = undone.result["written"]
    assert undone.state == "undone" and own_filter(local, made["id"])["statecode"] == 1


async def test_a_claim_whose_write_never_happened_fails_when_nothing_holds_it(
    local: LocalOrg, store: SqliteStore
) -> None:
    """A stale "applying" for a fix no longer proposed (Alex made a filter of his own meanwhile) whose
    change is not there: failed, and the press is told the fix doesn't apply."""
    now = [datetime(2026, 11, 30, 12, 0, tzinfo=UTC)]
    fix = await quarterly_fix(local, store)
    lost = Applied(application_key(fix, ALEX), fix, ALEX, ALEX, "applying", now[0], record=QUARTERLY)
    await store.add_setting(setting_key(lost.key), lost.to_dict())
    own = {c.column: c.new for c in fix.changes} | {"userqueryid": "e5100000-0000-4000-8000-0000000000aa"}
    await local.clients.dataverse.create_row("userqueries", own, caller=ALEX)  # Personal Options
    now[0] += timedelta(hours=1)
    fixer = fixer_for(local, store, now=lambda: now[0])
    with pytest.raises(NotApplicable, match="nothing blocks sync"):
        await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=ALEX)
    failed = await fixer.get(lost.key)
    assert failed is not None and failed.state == "failed"


async def test_undo_of_a_filter_the_person_deleted_meanwhile_is_done(
    local: LocalOrg, store: SqliteStore
) -> None:
    fixer = fixer_for(local, store)
    applied = await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=ALEX)
    [made] = applied.result["written"]
    token = next(iter(local.running.sandbox.tokens))
    async with httpx.AsyncClient(base_url=local.url) as http:  # Personal Options: Alex deletes it
        deleted = await http.delete(
            f"/api/data/v9.2/userqueries({made['id']})",
            headers={"CallerObjectId": ALEX, "Authorization": f"Bearer {token}"},
        )
    assert deleted.status_code == 204
    undone = await fixer.undo(applied.key, by=ALEX)
    assert undone.state == "undone" and undone.result["gone"] == [made["id"]]


async def test_other_refusals_of_an_undo_are_not_backend_failures(
    local: LocalOrg, store: SqliteStore
) -> None:
    fixer = fixer_for(local, store)
    applied = await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=ALEX)
    local.running.sandbox.config.faults.append(Fault("/api/data/v9.2/userqueries(*", status=409, times=1))
    with pytest.raises(NotApplicable, match="Dataverse would not undo it") as caught:
        await fixer.undo(applied.key, by=ALEX)
    assert not isinstance(caught.value, BackendError)
    kept = await fixer.get(applied.key)
    assert kept is not None and kept.state == "applied"


async def test_an_old_agent_fix_is_not_applied_already_when_something_else_blocks_now(
    sample_data: dict[str, Any], store: SqliteStore, writes: Writes
) -> None:
    granted = {**sample_data, "$privileges": {MEGAN_USER: ["prvWriteMailbox"]}}
    async with org_with(granted, writes) as local:
        fixer = fixer_for(local, store)
        await fixer.apply(ISAIAH, None, "appointment", "schedule-mailbox-test", by=MEGAN, is_agent=True)
        local.running.sandbox.sync.run()  # tested
        mailbox = local.running.sandbox.org.by_key("mailboxes", ISAIAH_MAILBOX)
        assert mailbox is not None
        mailbox["statecode"] = 1  # weeks later, deactivated
        report, fixes = await fixer.proposals(ISAIAH, None)
        assert report.causes == ["mailbox-inactive"] and fixes == ()
        with pytest.raises(NotApplicable, match="mailbox-inactive"):
            await fixer.apply(ISAIAH, None, "appointment", "schedule-mailbox-test", by=MEGAN, is_agent=True)


async def test_an_agents_fix_for_someone_without_an_entra_id(
    sample_data: dict[str, Any], store: SqliteStore, writes: Writes
) -> None:
    """Isaiah has no Entra object id: Megan's Test & Enable is written as her all the same; nobody can
    be told in Teams, so no check is queued, and the application says so."""
    data = copy.deepcopy(sample_data)
    isaiah = next(u for u in data["systemusers"] if u.get("internalemailaddress") == ISAIAH_EMAIL)
    isaiah.pop("azureactivedirectoryobjectid", None)
    data["$privileges"] = {MEGAN_USER: ["prvWriteMailbox"]}
    async with org_with(data, writes) as local:
        fixer = Fixer(store, Investigator(local.clients.dataverse), recheck_after=(900,))
        _, fixes = await fixer.proposals(ISAIAH_EMAIL, None)
        assert [f.id for f in fixes] == ["schedule-mailbox-test"]
        applied = await fixer.apply(
            ISAIAH_EMAIL, None, "appointment", "schedule-mailbox-test", by=MEGAN, is_agent=True
        )
        assert (applied.state, applied.user) == ("applied", isaiah["systemuserid"].lower())
        assert "no Entra object id" in applied.result["no_followup"]
        assert writes.seen == [("PATCH", f"/api/data/v9.2/mailboxes({ISAIAH_MAILBOX})", MEGAN)]
        assert await store.pending() == (0, None)
        again = await fixer.apply(
            ISAIAH_EMAIL, None, "appointment", "schedule-mailbox-test", by=MEGAN, is_agent=True
        )
        assert again.first is False and len(writes.seen) == 1


async def test_the_person_may_schedule_their_own_test_where_dataverse_lets_them(
    sample_data: dict[str, Any], store: SqliteStore, writes: Writes
) -> None:
    isaiah_user = "a1000000-0000-4000-8000-000000000004"
    data = {**sample_data, "$privileges": {isaiah_user: ["prvWriteMailbox"]}}
    async with org_with(data, writes) as local:
        fixer = fixer_for(local, store)
        with pytest.raises(NotAllowed, match="only a helpdesk agent"):  # not an agent: not another's fix
            await fixer.apply(ISAIAH, None, "appointment", "schedule-mailbox-test", by=MEGAN, is_agent=False)
        applied = await fixer.apply(
            ISAIAH, None, "appointment", "schedule-mailbox-test", by=ISAIAH, is_agent=False
        )
        assert (applied.state, applied.by) == ("applied", ISAIAH)
        assert writes.seen == [("PATCH", f"/api/data/v9.2/mailboxes({ISAIAH_MAILBOX})", ISAIAH)]


def test_who_may_apply_which_fix() -> None:
    fix = Fix.from_dict
    own = fix(
        {"id": "add-filter", "finding": "outside-sync-filter", "title": "t", "who": "self", "changes": []}
    )
    test = fix(
        {
            "id": "schedule-mailbox-test",
            "finding": "mailbox-not-tested",
            "title": "t",
            "who": "agent",
            "changes": [],
        }
    )
    approve = fix(
        {
            "id": "approve-email",
            "finding": "mailbox-not-approved",
            "title": "t",
            "who": "agent",
            "changes": [],
        }
    )
    assert may_apply(own, by=ALEX, person=ALEX.upper(), is_agent=False)
    assert not may_apply(
        own, by=MEGAN, person=ALEX, is_agent=True
    )  # an agent never changes someone's filters
    assert may_apply(test, by=ALEX, person=ALEX, is_agent=False)  # the person's own mailbox test
    assert not may_apply(approve, by=ALEX, person=ALEX, is_agent=False)
    assert may_apply(approve, by=MEGAN, person=ALEX, is_agent=True)
    assert may_apply(test, by=MEGAN, person=None, is_agent=True)  # someone without an Entra id
    assert not may_apply(test, by=MEGAN, person=ALEX, is_agent=False)
