"""The sweep's delivery report in the helpdesk channel: what was found and how telling them went, posted
once its notices are settled (or with "still sending N"), once, also after a crash; given-up messages in
it, never silently; nothing posted when nothing is new."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.helpdesk.reports import LOOKS, DeliveryReports
from bot.helpdesk.senders import register_senders
from bot.notify.outbox import DeliveryReport, Undeliverable, deliverer_for
from bot.notify.outbox.deliverer import MAX_ATTEMPTS
from bot.notify.sweep import run_sweep
from bot.sandbox import LocalOrg
from bot.store import SqliteStore
from bot.store.base import MAX_CLAIMS
from tests.support.org import MEGAN, PLAYGROUND
from tests.support.teams import Connector, running_connector

ISAIAH = PLAYGROUND + "23"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "store.sqlite3"))
    yield s
    await s.close()


async def deliver(store: SqliteStore, within: float = 60.0) -> int:
    """Deliver until nothing is left to send soon, as `sweep` does (the report waits for its notices and
    is tried again a few seconds later)."""
    deliverer = deliverer_for(Settings(), store)
    register_senders(deliverer)
    loop = asyncio.get_running_loop()
    sent, ends = 0, loop.time() + within
    try:
        while loop.time() < ends:
            sent += await deliverer.drain()
            waiting, due_in = await store.pending()
            if waiting == 0 or (due_in is not None and due_in > 30):
                return sent
            await asyncio.sleep(min(due_in or 0.05, 0.5))  # poll until it is due, not a fixed wait
    finally:
        await deliverer.resign()  # as `sweep` does: the next process leads at once
    raise AssertionError(f"still {waiting} to deliver after {within} s")


async def set_up(store: SqliteStore, connector: Connector, *people: str) -> None:
    channel = {"channel_id": "19:helpdesk", "service_url": connector.url, "bot_id": "28:bot"}
    await store.set_setting("helpdesk_channel:default", channel)
    for user in people:
        await store.save_reference("t1", user, connector.reference(f"a:{user[-2:]}", tenant="t1", user=user))


def summary(posted: dict[str, Any]) -> dict[str, str]:
    """The report card's outcome counts, as the channel shows them."""
    card = posted["activity"]["attachments"][0]["content"]
    facts = next(e for e in card["body"] if e["type"] == "FactSet")["facts"]
    return {f["title"]: f["value"] for f in facts}


def text_of(posted: dict[str, Any]) -> str:
    return json.dumps(posted["activity"])


async def test_the_report_counts_found_told_unreachable_and_causes(
    local: LocalOrg, store: SqliteStore
) -> None:
    async with running_connector() as connector:
        await set_up(store, connector, MEGAN, ISAIAH)
        result = await run_sweep(local.clients.dataverse, store, dry_run=False)
        await deliver(store)
        [report] = connector.created
        counts = summary(report)
        assert counts["Found with a broken mailbox"] == str(len(result.affected))
        assert counts["Told now"] == "2" and counts["Already told"] == "0" and counts["Failed"] == "0"
        assert counts["Can't reach yet"] == str(result.unreachable) and result.unreachable > 0
        assert "Still sending" not in counts  # posted once both notices were delivered
        assert len(connector.sent) == 2  # the notices went before the report
        text = text_of(report)
        assert "Causes (people):" in text and "act-not-server-side-sync" in text
        assert "Megan Bowen" not in text.split("can't tell them")[1]  # reached, so not listed as unreachable

        await run_sweep(local.clients.dataverse, store, dry_run=False)  # the same again: nothing to say
        await deliver(store)
        assert len(connector.created) == 1


async def test_a_notice_given_up_is_in_the_report_with_its_reason(
    local: LocalOrg, store: SqliteStore
) -> None:
    async with running_connector() as connector:
        await set_up(store, connector, MEGAN)
        connector.failures = [403]  # Megan blocked the bot
        await run_sweep(local.clients.dataverse, store, dry_run=False)
        await deliver(store)
        [report] = connector.created
        assert summary(report)["Failed"] == "1" and summary(report)["Told now"] == "0"
        text = text_of(report)
        assert "I gave up on these notices:" in text and "HTTP 403" in text and "Megan Bowen" in text


async def test_messages_given_up_after_their_report_are_in_the_next_one(
    local: LocalOrg, store: SqliteStore
) -> None:
    async with running_connector() as connector:
        await set_up(store, connector)
        await run_sweep(local.clients.dataverse, store, dry_run=False)
        await deliver(store)
        assert len(connector.created) == 1
        # A ticket's card given up later (its ticket is gone): not a notice of any sweep.
        await store.enqueue("ticket:4242:post", "post_ticket", {"number": 4242})
        await deliver(store)
        await store.save_reference("t1", MEGAN, connector.reference("a:21", tenant="t1", user=MEGAN))
        await run_sweep(local.clients.dataverse, store, dry_run=False)  # Megan is news: a report goes
        await deliver(store)
        [_, second] = connector.created
        text = text_of(second)
        assert (
            "Given up since the last report" in text and "SD-4242" in text and "ticket 4242 is gone" in text
        )
        assert summary(second)["Told now"] == "1"


async def test_the_report_waits_for_its_notices_then_goes_with_what_is_known(
    local: LocalOrg, store: SqliteStore
) -> None:
    async with running_connector() as connector:
        await set_up(store, connector, MEGAN)
        result = await run_sweep(local.clients.dataverse, store, dry_run=False)
        [notice] = [
            e for e in await store.claim_due(limit=10, lease_seconds=60) if e.kind == "notify_problem"
        ]
        record = await store.outbox_record(str(result.report_key))
        assert record is not None
        report = DeliveryReport.model_validate(record.payload)
        deliverer = deliverer_for(Settings(), store)
        now = report.at
        sender = DeliveryReports(store, deliverer.connector, clock=lambda: now)
        with pytest.raises(Undeliverable, match="1 notice\\(s\\) still being sent") as waiting:
            await sender.send(report)  # Megan's notice is being sent: wait
        assert not waiting.value.permanent
        # Each look is a claim: spaced so the report is looked at no more than LOOKS times before it
        # goes anyway, far from the claims after which the store sets an entry aside.
        assert waiting.value.retry_after is not None and not waiting.value.backoff
        assert waiting.value.retry_after >= (report.settle_by - report.at) / LOOKS
        assert min(MAX_CLAIMS, MAX_ATTEMPTS) > LOOKS + 2
        assert connector.created == []
        now = report.settle_by + 1  # it never settled: the report goes with what is known
        assert (await sender.send(report) or {}).get("posted") is True
        [posted] = connector.created
        assert summary(posted)[
            "Still sending"
        ] == "1" and "failures among them will be in the next report" in (text_of(posted))
        await store.mark_sent(notice)


async def test_the_report_survives_a_crash_and_is_posted_once(local: LocalOrg, tmp_path: Path) -> None:
    path = str(tmp_path / "crash.sqlite3")
    async with running_connector() as connector:
        first = SqliteStore(path)
        await set_up(first, connector, MEGAN)
        await run_sweep(local.clients.dataverse, first, dry_run=False)
        await first.close()  # the sweep process dies before delivering anything
        second = SqliteStore(path)
        try:
            await deliver(second)
            await deliver(second)
            assert len(connector.created) == 1 and summary(connector.created[0])["Told now"] == "1"
            assert (await second.outbox_status()).get("pending", 0) == 0
        finally:
            await second.close()
