"""One delivery leader per store: one process sends, the others wait their turn and take over within a lease
when it dies; a leader that lost its lease hands its claimed entries back unsent. Clocks are injected (the
lease table below runs on the test's clock), so nothing here waits for real time to pass."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from msrest.universal_http.requests import ClientRetryPolicy

from bot.config import Settings
from bot.helpdesk.senders import register_senders
from bot.notify.outbox import NotifyUser, deliverer_for, enqueue
from bot.notify.outbox.deliverer import Deliverer
from bot.notify.outbox.leader import LEASE, Leadership, leader_seconds
from bot.sandbox.connector import FakeConnector
from bot.store import SqliteStore
from bot.store.base import lease_key
from tests.support.timing import FakeClock

SECONDS = 6.0


class Leases:
    """The store's named leases (acquire, renew by the same owner, release), on the test's clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.held: dict[str, tuple[str, float]] = {}
        self.down = False
        self.asked = 0

    async def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        self.asked += 1
        await asyncio.sleep(0)  # a round trip: others may ask meanwhile
        if self.down:
            raise ConnectionError("the store is down")
        holder = self.held.get(name)
        if holder and holder[0] != owner and holder[1] > self.clock():
            return False
        self.held[name] = (owner, self.clock() + seconds)
        return True

    async def release_lease(self, name: str, owner: str) -> None:
        if self.held.get(name, ("", 0.0))[0] == owner:
            del self.held[name]


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


def pair(leases: Leases, clock: FakeClock) -> tuple[Leadership, Leadership]:
    def one(owner: str) -> Leadership:
        return Leadership(leases, seconds=SECONDS, owner=owner, clock=clock, sleep=no_wait)  # type: ignore[arg-type]

    return one("a"), one("b")


async def settled(leadership: Leadership) -> None:
    """Let a background renewal `hold()` started finish."""
    renewal = leadership._renewal
    if renewal is not None:
        await renewal


async def test_one_leads_and_the_other_takes_over_when_its_lease_ends() -> None:
    clock = FakeClock()
    leases = Leases(clock)
    a, b = pair(leases, clock)
    assert await a.hold()
    assert not await b.hold()
    assert a.leading and not b.leading
    clock.advance(SECONDS + 0.1)  # a died without renewing
    assert await b.hold()
    assert not await a.hold()  # a, back from the dead, sees b's lease and stops sending


async def test_the_leader_renews_while_it_sends_and_keeps_the_lead() -> None:
    clock = FakeClock()
    leases = Leases(clock)
    a, b = pair(leases, clock)
    assert await a.hold()
    for _ in range(10):  # sends every half lease, for five leases
        clock.advance(SECONDS / 2)
        assert await a.hold()
        await settled(a)
        assert not await b.hold()
    assert leases.held[LEASE][0] == "a"


async def test_a_renewal_that_fails_keeps_what_is_held_until_it_ends_and_no_longer() -> None:
    clock = FakeClock()
    leases = Leases(clock)
    a, _ = pair(leases, clock)
    assert await a.hold()
    leases.down = True
    clock.advance(SECONDS / 2)
    assert await a.hold()  # still within what it holds (the renewal fails in the background)
    await settled(a)
    clock.advance(SECONDS / 2)  # past the lease, less the margin kept for skewed clocks
    assert not await a.hold()


class TickingClock(FakeClock):
    """Moves a microsecond each time it is read, as a real clock does between two reads."""

    def __call__(self) -> float:
        self.now += 1e-6
        return self.now


async def test_concurrent_holds_ask_the_store_once() -> None:
    clock = TickingClock()
    leases = Leases(clock)
    a, b = pair(leases, clock)
    assert await b.hold()
    clock.advance(0.01)
    asked = leases.asked
    assert not any(await asyncio.gather(*(a.hold() for _ in range(20))))
    assert leases.asked - asked < 20


async def test_resigning_hands_the_lead_over_at_once() -> None:
    clock = FakeClock()
    leases = Leases(clock)
    a, b = pair(leases, clock)
    assert await a.hold()
    await a.resign()
    assert await b.hold()


def test_the_leader_lease_is_a_sixth_of_the_outbox_lease_within_bounds() -> None:
    assert leader_seconds(30) == 5
    assert leader_seconds(3) == 2
    assert leader_seconds(3600) == 10


# --- two deliverers on one store -----------------------------------------------------------------


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = FakeConnector.unlimited()
    await fake.start()
    yield fake
    await fake.close()


async def queue_notices(store: SqliteStore, connector: FakeConnector, people: int) -> None:
    for n in range(people):
        await store.save_reference("t1", f"u{n}", connector.reference(f"a:chat-{n}"))
        await enqueue(store, f"n:{n}", NotifyUser(tenant="t1", user=f"u{n}", text=f"notice {n}"))


def deliverer(store: SqliteStore, leadership: Leadership) -> Deliverer:
    built = deliverer_for(Settings(), store)
    register_senders(built)
    built.leadership = leadership
    return built


async def test_only_the_leader_delivers_and_a_follower_takes_over_when_it_resigns(
    tmp_path: Path, connector: FakeConnector
) -> None:
    store = SqliteStore(str(tmp_path / "store.sqlite3"))
    try:
        await queue_notices(store, connector, 30)
        first = deliverer(store, Leadership(store, seconds=SECONDS, sleep=no_wait))
        second = deliverer(store, Leadership(store, seconds=SECONDS, sleep=no_wait))
        assert await first.drain(limit=10) == 10
        assert await second.drain(limit=10) == 0  # a follower claims nothing
        assert (await store.outbox_status()).get("pending") == 20
        await first.resign()
        assert await second.drain(limit=30) == 20
        assert await first.drain(limit=30) == 0
        stored = await store.get_setting(lease_key(LEASE))
        assert stored is not None and stored["owner"] == second.leadership.owner  # type: ignore[union-attr]
    finally:
        await store.close()
    assert sorted(len(v) for v in connector.delivered.values()) == [1] * 30  # each once


class LosesTheLead(Leadership):
    """Leads for the claim, then finds another process has taken over (it was starved past its lease)."""

    def __init__(self, store: Any, *, after: int) -> None:
        super().__init__(store, seconds=SECONDS, sleep=no_wait)
        self.after = after
        self.asked = 0

    async def hold(self) -> bool:
        self.asked += 1
        return self.asked <= self.after


async def test_a_leader_that_lost_the_lead_hands_its_claimed_entries_back_unsent(
    tmp_path: Path, connector: FakeConnector
) -> None:
    store = SqliteStore(str(tmp_path / "store.sqlite3"))
    try:
        await queue_notices(store, connector, 5)
        sending = deliverer(store, LosesTheLead(store, after=3))  # the drain's look, then two sends
        assert await sending.drain(limit=5) == 2
        status = await store.outbox_status()
        assert status.get("sent") == 2 and status.get("pending") == 3
        waiting, due_in = await store.pending()
        assert waiting == 3 and due_in == 0  # handed back due now, for the new leader, not after 30 s
    finally:
        await store.close()
    assert connector.total == 2


def test_msrest_builds_the_same_retry_table_cheaply() -> None:
    """Each send builds two msrest clients, and each a retry table from `safe_codes`: as a list that cost
    3 ms of CPU apiece (6 of a proactive send's 11 ms). The frozenset gives the same table."""
    policy = ClientRetryPolicy()
    assert isinstance(ClientRetryPolicy.safe_codes, frozenset)
    expected = [i for i in range(999) if not (i < 500 and i != 408) and i not in (501, 505)]
    assert policy.policy.status_forcelist == expected
