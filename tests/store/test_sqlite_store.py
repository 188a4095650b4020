"""The SQLite store keeps what the helpdesk needs, across restarts, without lost updates or duplicates."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from bot.store import Conflict, SqliteStore, Ticket, open_store

DRAFT = Ticket(
    number=0,
    tenant="t1",
    user_aad="00000000-0000-0000-0000-0000000000020",
    user_name="Alex Wilber",
    record_type="appointment",
    record_id=None,
    subject="Quarterly review",
    report={"causes": ["outside-sync-filter"]},
    comment="still not there",
)


@pytest.fixture
async def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(str(tmp_path / "store.sqlite3"))
    yield s  # type: ignore[misc]
    await s.close()


async def test_references_round_trip_update_and_delete(store: SqliteStore) -> None:
    assert await store.get_reference("T1", "AAD") is None
    await store.save_reference("T1", "AAD", {"conversation": {"id": "a"}})
    await store.save_reference("t1", "aad", {"conversation": {"id": "b"}})  # same key, any case
    assert await store.get_reference("T1", "AAD") == {"conversation": {"id": "b"}}
    await store.delete_reference("t1", "aad")
    assert await store.get_reference("t1", "aad") is None


async def test_tickets_are_numbered_and_survive_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite3")
    first = SqliteStore(path)
    a = await first.create_ticket(DRAFT)
    b = await first.create_ticket(DRAFT)
    await first.close()
    assert (a.key, b.key) == ("SD-1001", "SD-1002")
    again = SqliteStore(path)
    assert await again.get_ticket(1002) == b
    assert (await again.create_ticket(DRAFT)).key == "SD-1003"
    await again.close()


async def test_optimistic_concurrency_one_writer_wins(store: SqliteStore) -> None:
    ticket = await store.create_ticket(DRAFT)
    mine = replace(ticket, status="assigned", assignee="agent-1", assignee_name="Megan")
    theirs = replace(ticket, status="assigned", assignee="agent-2", assignee_name="Adele")
    results = await asyncio.gather(
        store.update_ticket(mine, expected_version=ticket.version),
        store.update_ticket(theirs, expected_version=ticket.version),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, Ticket)]
    losers = [r for r in results if isinstance(r, Conflict)]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0].current.assignee == winners[0].assignee and losers[0].current.version == 2
    stored = await store.get_ticket(ticket.number)
    assert stored is not None and stored.assignee == winners[0].assignee


async def test_listing_by_user_and_open(store: SqliteStore) -> None:
    a = await store.create_ticket(DRAFT)
    await store.create_ticket(replace(DRAFT, user_aad="someone-else"))
    await store.update_ticket(replace(a, status="resolved"), expected_version=1)
    assert [t.key for t in await store.list_tickets(user_aad=DRAFT.user_aad)] == ["SD-1001"]
    assert [t.key for t in await store.list_tickets(open_only=True)] == ["SD-1002"]


async def test_outbox_dedupes_leases_retries_and_marks_sent(store: SqliteStore) -> None:
    assert await store.enqueue("ticket:1001:post", "post_ticket", {"number": 1001}) is True
    assert await store.enqueue("ticket:1001:post", "post_ticket", {"number": 1001}) is False
    [entry] = await store.claim_due(limit=10, lease_seconds=60)
    assert entry.kind == "post_ticket" and entry.attempts == 1
    assert await store.claim_due(limit=10, lease_seconds=60) == []  # leased: invisible to others
    await store.mark_retry(entry.id, delay=0, error="429")
    [again] = await store.claim_due(limit=10, lease_seconds=60)
    assert again.attempts == 2 and again.last_error == "429"
    await store.mark_sent(again.id)
    await store.mark_retry(again.id, delay=0, error="late")  # a late retry can't resurrect a sent entry
    assert await store.claim_due(limit=10, lease_seconds=0) == []
    assert await store.outbox_status() == {"sent": 1}


async def test_an_expired_lease_is_claimed_again(store: SqliteStore) -> None:
    await store.enqueue("k", "notify", {})
    [first] = await store.claim_due(limit=1, lease_seconds=0)
    [second] = await store.claim_due(limit=1, lease_seconds=60)  # the first claimer died: not lost
    assert first.id == second.id and second.attempts == 2


def test_store_url() -> None:
    from bot.errors import ConfigError

    assert isinstance(open_store("sqlite://:memory:"), SqliteStore)
    with pytest.raises(ConfigError, match="not supported"):
        open_store("DefaultEndpointsProtocol=https;AccountName=x;AccountKey=secret")
