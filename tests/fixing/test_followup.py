"""The checks after a fix: queued in the outbox, due after each of FIX_RECHECK_AFTER, each a fresh
diagnosis; the person hears in their 1:1 chat (a loopback Bot Connector) that it is in their Outlook, or,
at the last check, that it still waits for a sync or what is wrong now. The sandbox's sync cycle runs when
the test says; the follow-up's clock is the test's."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.config import Settings
from bot.diagnosis import Finding, RecordSummary, Report, UserSummary
from bot.fixing import Applied, Fixer, FixFollowups, followup_message, register_followups
from bot.investigation import Investigator
from bot.notify.outbox import Deliverer, deliverer_for
from bot.notify.outbox.kinds import FixFollowup
from bot.sandbox import LocalOrg, SandboxConfig
from bot.sandbox.connector import FakeConnector
from bot.store import SqliteStore
from tests.support.org import ALEX, MEGAN, QUARTERLY, make_local
from tests.support.teams import running_connector

TOLD_IN_OUTLOOK = "Fixed: Quarterly review with Contoso is in your Outlook now."
ISAIAH = "00000000-0000-0000-0000-0000000000023"  # his mailbox was never tested
MEGAN_USER = "a1000000-0000-4000-8000-000000000002"  # Megan's systemuserid


class Clock:
    """Wall-clock seconds the test moves: when the follow-up queues its next check."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def local(sample_data: dict[str, Any]) -> AsyncIterator[LocalOrg]:
    async with make_local(sample_data, SandboxConfig(sync_every=0)) as running:
        yield running


@pytest.fixture
async def connector(store: SqliteStore) -> AsyncIterator[FakeConnector]:
    async with running_connector() as running:
        await store.save_reference("tenant-1", ALEX, running.reference("a:alex"))
        yield running


def investigator(local: LocalOrg) -> Investigator:
    return Investigator(local.clients.dataverse, local.clients.graph)


def deliverer(local: LocalOrg, store: SqliteStore, clock: Clock) -> Deliverer:
    built = deliverer_for(Settings(), store)
    built.register(FixFollowup, FixFollowups(store, built.connector, investigator(local), now=clock).send)
    return built


def told(connector: FakeConnector) -> list[str | None]:
    return [activity.get("text") for activity in connector.sent]


async def apply_add_filter(local: LocalOrg, store: SqliteStore, recheck_after: tuple[float, ...]) -> Applied:
    fixer = Fixer(store, investigator(local), recheck_after=recheck_after)
    return await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=ALEX)


async def test_a_check_before_the_sync_queues_the_next_one_after_its_delay(
    local: LocalOrg, store: SqliteStore, connector: FakeConnector
) -> None:
    await apply_add_filter(local, store, (0, 900))  # the first check at once, the next 900 s after the fix
    assert await deliverer(local, store, Clock()).drain() == 1  # the filter is there; no sync has run
    assert told(connector) == []
    waiting, due_in = await store.pending()
    assert waiting == 1 and due_in is not None and 880 < due_in <= 900


async def test_alex_hears_it_is_in_his_outlook_after_the_next_sync(
    local: LocalOrg, store: SqliteStore, connector: FakeConnector
) -> None:
    applied = await apply_add_filter(local, store, (0, 900))
    clock = Clock()
    clock.now += 900  # the follow-up's clock: the next check, queued by the first, is due at once
    sender = deliverer(local, store, clock)
    assert await sender.drain() == 1 and told(connector) == []
    local.running.sandbox.sync.run()  # server-side sync: Alex's filter now brings the meeting to Outlook
    assert await sender.drain() == 1
    assert told(connector) == [TOLD_IN_OUTLOOK]
    assert connector.sent[0]["conversation_id"] == "a:alex"
    assert await store.pending() == (0, None)  # fixed: the follow-up ends
    [checked] = await Fixer(store, investigator(local)).history()
    assert checked.key == applied.key and checked.state == "applied"
    assert checked.result["checked"]["fixed"] is True and checked.result["checked"]["in_exchange"] is True


async def test_a_check_after_the_sync_says_so_at_once_and_ends(
    local: LocalOrg, store: SqliteStore, connector: FakeConnector
) -> None:
    await apply_add_filter(local, store, (0, 900, 2400))
    local.running.sandbox.sync.run()
    sender = deliverer_for(Settings(), store)
    register_followups(sender, investigator(local))  # as serve, sweep and deliver wire it
    assert await sender.drain() == 1
    assert told(connector) == [TOLD_IN_OUTLOOK] and await store.pending() == (0, None)


async def test_the_last_check_says_it_still_waits_for_the_sync(
    local: LocalOrg, store: SqliteStore, connector: FakeConnector
) -> None:
    await apply_add_filter(local, store, (0,))
    assert await deliverer(local, store, Clock()).drain() == 1
    [text] = told(connector)
    assert text is not None and "Quarterly review with Contoso is not in your Outlook yet" in text
    assert "still waiting for the next sync" in text


async def test_the_last_check_says_what_is_wrong_now(
    local: LocalOrg, store: SqliteStore, connector: FakeConnector
) -> None:
    await apply_add_filter(local, store, (0,))
    mailbox = local.running.sandbox.org.by_key("mailboxes", "b2000000-0000-4000-8000-000000000001")
    assert mailbox is not None
    mailbox["statecode"] = 1  # meanwhile someone deactivated Alex's mailbox
    assert await deliverer(local, store, Clock()).drain() == 1
    [text] = told(connector)
    assert text is not None and text.startswith(
        "The fix is in, but Quarterly review with Contoso still doesn't sync"
    )
    report = await investigator(local).run(ALEX, QUARTERLY)
    assert report.causes[0] == "mailbox-inactive" and report.verdict().findings[0].title in text


async def test_a_fix_undone_before_its_check_is_not_checked(
    local: LocalOrg, store: SqliteStore, connector: FakeConnector
) -> None:
    applied = await apply_add_filter(local, store, (0,))
    await Fixer(store, investigator(local)).undo(applied.key, by=ALEX)
    assert await deliverer(local, store, Clock()).drain() == 1  # done with, silently
    assert told(connector) == [] and await store.pending() == (0, None)


async def test_someone_the_bot_never_talked_to_is_not_retried(local: LocalOrg, store: SqliteStore) -> None:
    await apply_add_filter(local, store, (0,))
    local.running.sandbox.sync.run()
    assert await deliverer(local, store, Clock()).drain() == 0
    assert await store.outbox_status() == {"dead": 1}


async def test_undone_and_applied_again_the_person_is_told_once(
    local: LocalOrg, store: SqliteStore, connector: FakeConnector
) -> None:
    """Each application queues its checks; those of one undone, or of an earlier application of the same
    fix (undone, then applied again), are skipped: Alex hears once, from the last one's check."""
    now = [datetime.now(UTC) - timedelta(hours=1)]
    fixer = Fixer(store, investigator(local), recheck_after=(0,), now=lambda: now[0])
    added = await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=ALEX)
    await fixer.undo(added.key, by=ALEX)
    back = await fixer.apply(ALEX, QUARTERLY, "appointment", "activate-filter", by=ALEX)
    await fixer.undo(back.key, by=ALEX)
    now[0] += timedelta(minutes=5)  # Alex changes his mind again
    again = await fixer.apply(ALEX, QUARTERLY, "appointment", "activate-filter", by=ALEX)
    assert (again.key, again.state, again.first) == (back.key, "applied", True)
    local.running.sandbox.sync.run()
    assert await deliverer(local, store, Clock()).drain() == 3  # three checks done, one told
    assert told(connector) == [TOLD_IN_OUTLOOK]


async def test_a_fix_applied_again_later_is_checked_once(
    local: LocalOrg, store: SqliteStore, connector: FakeConnector
) -> None:
    """A filter turned back on by the fix, turned off by hand, and turned on by the fix again an hour
    later (the same application key, applied anew): only the new application's check tells Alex."""
    now = [datetime.now(UTC) - timedelta(hours=2)]
    fixer = Fixer(store, investigator(local), recheck_after=(0,), now=lambda: now[0])
    added = await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=ALEX)
    await fixer.undo(added.key, by=ALEX)
    first = await fixer.apply(ALEX, QUARTERLY, "appointment", "activate-filter", by=ALEX)
    row = first.fix.changes[0].row or ""
    await local.clients.dataverse.update_row(
        "userqueries", row, {"statecode": 1, "statuscode": 2}, caller=ALEX
    )
    now[0] += timedelta(hours=1)
    second = await fixer.apply(ALEX, QUARTERLY, "appointment", "activate-filter", by=ALEX)
    assert (second.key, second.first) == (first.key, True) and second.at > first.at
    local.running.sandbox.sync.run()
    assert await deliverer(local, store, Clock()).drain() == 3
    assert told(connector) == [TOLD_IN_OUTLOOK]


async def test_after_test_and_enable_the_check_waits_for_the_test(
    sample_data: dict[str, Any], store: SqliteStore
) -> None:
    """Scheduled is not fixed: until the sync cycle runs the test, the check waits (at the last check it
    says it still waits for the test); after the test, it says fixed."""
    granted = {**sample_data, "$privileges": {MEGAN_USER: ["prvWriteMailbox"]}}
    async with make_local(granted, SandboxConfig(sync_every=0)) as local, running_connector() as connector:
        await store.save_reference("tenant-1", ISAIAH, connector.reference("a:isaiah"))
        fixer = Fixer(store, investigator(local), recheck_after=(0, 900))
        await fixer.apply(ISAIAH, None, "appointment", "schedule-mailbox-test", by=MEGAN, is_agent=True)
        clock = Clock()
        clock.now += 900  # the follow-up's clock: the next check, queued by the first, is due at once
        sender = deliverer(local, store, clock)
        assert await sender.drain() == 1 and told(connector) == []  # not run yet: the next check is queued
        local.running.sandbox.sync.run()  # the test runs
        assert await sender.drain() == 1
        assert told(connector) == ["Fixed: nothing keeps your mailbox from syncing with Outlook any more."]
        assert await store.outbox_status() == {"sent": 2}


async def test_the_last_check_before_the_test_ran_says_it_still_waits_for_it(
    sample_data: dict[str, Any], store: SqliteStore
) -> None:
    granted = {**sample_data, "$privileges": {MEGAN_USER: ["prvWriteMailbox"]}}
    async with make_local(granted, SandboxConfig(sync_every=0)) as local, running_connector() as connector:
        await store.save_reference("tenant-1", ISAIAH, connector.reference("a:isaiah"))
        await Fixer(store, investigator(local), recheck_after=(0,)).apply(
            ISAIAH, None, "appointment", "schedule-mailbox-test", by=MEGAN, is_agent=True
        )
        assert await deliverer(local, store, Clock()).drain() == 1
        [text] = told(connector)
        assert text is not None and not text.startswith("Fixed")
        assert "has not run yet: still waiting for it" in text


def report(record: RecordSummary | None, in_exchange: bool | None, *failing: str) -> Report:
    findings = tuple(Finding(f, "fail", f"{f} title") for f in failing)
    user = UserSummary(ALEX, None, "Alex Wilber", "alexw@example.com")
    return Report(user=user, record=record, findings=findings, in_exchange=in_exchange)


MEETING = RecordSummary("appointment", QUARTERLY, "**Quarterly** [review](http://x)", None)
CONTACT = RecordSummary("contact", QUARTERLY, None, None)


@pytest.mark.parametrize(
    ("checked", "last", "said"),
    [
        (
            report(MEETING, True),
            False,
            r"Fixed: \*\*Quarterly\*\* \[review](http\://x) is in your Outlook now.",  # no markdown
        ),
        (report(MEETING, False), False, None),
        (report(MEETING, None), False, "Fixed: nothing keeps"),  # Graph can't say: the checks all pass
        (report(CONTACT, None), False, "Fixed: nothing keeps your contact from syncing"),
        (report(None, None), False, "Fixed: nothing keeps your mailbox from syncing"),
        (report(None, None, "act-sync-failing"), False, None),
        (
            report(None, None, "act-sync-failing"),
            True,
            "your mailbox still doesn't sync: act-sync-failing title.",
        ),
        (report(MEETING, False), True, "still waiting for the next sync"),
    ],
)
def test_what_the_person_is_told(checked: Report, last: bool, said: str | None) -> None:
    text = followup_message(checked, last=last)
    assert (text is None) if said is None else (text is not None and said in text)


SCHEDULED = Finding("mailbox-not-tested", "warn", "t", {"status": "Not Run", "test_scheduled": True})


@pytest.mark.parametrize(
    ("findings", "last", "said"),
    [
        ((SCHEDULED,), False, None),  # only a warning, yet not fixed before the test ran
        ((SCHEDULED,), True, "has not run yet: still waiting for it"),
        ((Finding("mailbox-not-tested", "pass", "t", {"test_scheduled": False}),), False, "Fixed: "),
        ((Finding("act-sync-failing", "fail", "failing"),), True, "still doesn't sync: failing."),
    ],
)
def test_after_scheduling_the_test(findings: tuple[Finding, ...], last: bool, said: str | None) -> None:
    checked = Report(UserSummary(ISAIAH, None, None, None), None, findings, None)
    text = followup_message(checked, last=last, fix_id="schedule-mailbox-test")
    assert (text is None) if said is None else (text is not None and said in text)
