"""The store contract: SQLite and Azure Tables + Queues (on Azurite) keep what the helpdesk and notifications
need the same way, and several instances sharing one store lose no update and send nothing twice.

Every test runs on both stores. `instances` gives independent store objects on the same backing data,
as separate bot processes would have.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from bot.sandbox.azurite import Azurite
from bot.store import Conflict, OutboxEntry, Store, StoredTicket
from bot.store.azure import AzureStore
from bot.store.base import OutboxQuery, OutboxRecord
from bot.store.sqlite import SqliteStore
from tests.support.timing import until

USER = "00000000-0000-0000-0000-0000000000020"
DRAFT = StoredTicket(
    number=0,
    version=1,
    user_aad=USER,
    status="open",
    body={"user_aad": USER, "subject": "Quarterly review", "comment": "still not there", "assignee": None},
)


def changed(ticket: StoredTicket, **body: object) -> StoredTicket:
    """`ticket` with some of its body's fields changed (`status` too, when one of them)."""
    status = str(body.get("status", ticket.status))
    return replace(ticket, status=status, body={**ticket.body, **body})


_names = itertools.count(1)

Instances = Callable[[], Store]


@pytest.fixture(params=["sqlite", "azure"])
async def instances(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Instances]:
    """A factory of store objects that share one backing store (a file, or an Azurite account + prefix)."""
    opened: list[Store] = []
    if request.param == "sqlite":
        path = str(tmp_path / "store.sqlite3")

        def make() -> Store:
            opened.append(SqliteStore(path))
            return opened[-1]
    else:
        azurite: Azurite = request.getfixturevalue("azurite")
        prefix = f"t{next(_names)}x{int(time.time() * 1000) % 10**8}"

        def make() -> Store:
            opened.append(AzureStore(azurite.connection_string, prefix=prefix))
            return opened[-1]

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
def store(instances: Instances) -> Store:
    return instances()


async def test_references_round_trip_update_and_delete(store: Store) -> None:
    assert await store.get_reference("T1", "AAD") is None
    await store.save_reference("T1", "AAD", {"conversation": {"id": "a"}})
    await store.save_reference("t1", "aad", {"conversation": {"id": "b"}})  # same key, any case
    assert await store.get_reference("T1", "AAD") == {"conversation": {"id": "b"}}
    await store.delete_reference("t1", "aad")
    assert await store.get_reference("t1", "aad") is None
    await store.delete_reference("t1", "aad")  # deleting twice is not an error


async def test_find_reference_takes_the_newest_tenant(store: Store) -> None:
    assert await store.find_reference("user-1") is None
    await store.save_reference("tenant-a", "User-1", {"conversation": {"id": "old"}})
    await asyncio.sleep(0.01)
    await store.save_reference("tenant-b", "user-1", {"conversation": {"id": "new"}})
    await store.save_reference("tenant-a", "user-2", {"conversation": {"id": "other user"}})
    assert await store.find_reference("USER-1") == ("tenant-b", {"conversation": {"id": "new"}})


async def test_settings_with_any_key(store: Store) -> None:
    keys = ["card:1001", "helpdesk_channel:default", "watch:a/b#c?d%e", "plain", "mute:", "x:y:z 'q'"]
    for i, key in enumerate(keys):
        await store.set_setting(key, {"n": i})
    assert [await store.get_setting(k) for k in keys] == [{"n": i} for i in range(len(keys))]
    await store.set_setting("card:1001", {"n": "replaced"})
    await store.delete_setting("watch:a/b#c?d%e")
    await store.delete_setting("never-set")
    assert await store.get_setting("card:1001") == {"n": "replaced"}
    assert await store.get_setting("watch:a/b#c?d%e") is None


async def test_adding_a_setting_never_replaces_one(instances: Instances) -> None:
    stores = [instances() for _ in range(3)]
    added = await asyncio.gather(*(s.add_setting("fix:k1", {"by": i}) for i, s in enumerate(stores * 3)))
    assert added.count(True) == 1  # several processes adding one key: exactly one wins
    assert await stores[0].get_setting("fix:k1") == {"by": added.index(True)}
    await stores[1].set_setting("fix:k1", {"by": "updated"})  # the winner updates it as any setting
    assert await stores[2].add_setting("fix:k1", {"by": "late"}) is False
    assert await stores[2].get_setting("fix:k1") == {"by": "updated"}
    await stores[0].delete_setting("fix:k1")
    assert await stores[0].add_setting("fix:k1", {"by": "again"}) is True


async def test_settings_are_listed_by_prefix(store: Store) -> None:
    keys = ["fix:b", "fix:a/b#c?d%e 'q'", "fix:", "fixes:x", "fi:x", "card:1001", "fix:x:y"]
    for i, key in enumerate(keys):
        await store.set_setting(key, {"n": i})
    assert await store.list_settings("fix") == [
        ("fix:", {"n": 2}),
        ("fix:a/b#c?d%e 'q'", {"n": 1}),
        ("fix:b", {"n": 0}),
        ("fix:x:y", {"n": 6}),
    ]
    assert await store.list_settings("nothing") == []


async def test_an_entry_queued_with_a_delay_is_due_after_it(store: Store) -> None:
    assert await store.enqueue("later", "notify_user", {"user": "u"}, delay=1)
    assert await store.enqueue("later", "notify_user", {"user": "u"}, delay=0) is False  # still "once"
    assert await store.claim_due(limit=1, lease_seconds=60) == []
    waiting, due_in = await store.pending()
    assert waiting == 1 and due_in is not None and 0 < due_in <= 1
    entry = await claimed_once_free(store)
    assert entry.dedupe_key == "later" and entry.attempts == 1


async def test_tickets_are_numbered_and_survive_a_restart(instances: Instances) -> None:
    first = instances()
    a = await first.create_ticket(DRAFT)
    b = await first.create_ticket(DRAFT)
    await first.close()
    assert (a.number, b.number) == (1001, 1002)
    assert a.version == 1 and a.body == {
        **DRAFT.body,
        "number": 1001,
        "version": 1,
    }  # the store's, written in
    again = instances()
    assert await again.get_ticket(1002) == b
    assert await again.get_ticket(999) is None
    assert (await again.create_ticket(DRAFT)).number == 1003


async def test_instances_creating_at_once_get_distinct_numbers(instances: Instances) -> None:
    one, two = instances(), instances()
    made = await asyncio.gather(*(s.create_ticket(DRAFT) for s in [one, two] * 6))
    assert sorted(t.number for t in made) == list(range(1001, 1013))


async def test_a_large_diagnosis_is_kept_whole(store: Store) -> None:
    report = {"findings": [{"id": f"f{i}", "evidence": "x" * 200} for i in range(400)]}  # ~90 KB of JSON
    ticket = await store.create_ticket(changed(DRAFT, report=report))
    stored = await store.get_ticket(ticket.number)
    assert stored is not None and stored.body["report"] == report


async def test_optimistic_concurrency_one_writer_wins(instances: Instances) -> None:
    one, two = instances(), instances()
    ticket = await one.create_ticket(DRAFT)
    mine = changed(ticket, status="assigned", assignee="agent-1")
    theirs = changed(ticket, status="assigned", assignee="agent-2")
    results = await asyncio.gather(
        one.update_ticket(mine, expected_version=ticket.version),
        two.update_ticket(theirs, expected_version=ticket.version),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, StoredTicket)]
    losers = [r for r in results if isinstance(r, Conflict)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert losers[0].current == winners[0] and winners[0].version == 2
    assert winners[0].body["version"] == 2 and winners[0].status == "assigned"
    stored = await two.get_ticket(ticket.number)
    assert stored == winners[0]
    with pytest.raises(Conflict):  # a stale version loses even when nobody writes at the same moment
        await one.update_ticket(changed(ticket, status="resolved"), expected_version=1)
    with pytest.raises(KeyError):
        await one.update_ticket(replace(ticket, number=4242), expected_version=1)


async def test_many_agents_on_one_ticket_lose_no_update(instances: Instances) -> None:
    """Each agent re-reads after a conflict and adds their note: every note is there at the end."""
    stores = [instances(), instances(), instances()]
    ticket = await stores[0].create_ticket(changed(DRAFT, comment=""))

    async def add_note(store: Store, note: str) -> None:
        for _ in range(50):
            current = await store.get_ticket(ticket.number)
            assert current is not None
            try:
                await store.update_ticket(
                    changed(current, comment=f"{current.body['comment']}{note};"),
                    expected_version=current.version,
                )
                return
            except Conflict:
                await asyncio.sleep(0.005)
        raise AssertionError(f"{note} never got in")

    notes = [f"n{i}" for i in range(9)]
    await asyncio.gather(*(add_note(stores[i % 3], note) for i, note in enumerate(notes)))
    final = await stores[1].get_ticket(ticket.number)
    assert final is not None
    assert sorted(final.body["comment"].rstrip(";").split(";")) == sorted(notes) and final.version == 10


async def test_listing_by_user_and_open_newest_first(store: Store) -> None:
    a = await store.create_ticket(DRAFT)
    await store.create_ticket(replace(DRAFT, user_aad="someone-else"))
    c = await store.create_ticket(replace(DRAFT, user_aad=DRAFT.user_aad.upper()))
    await store.update_ticket(changed(a, status="resolved"), expected_version=1)
    assert [t.number for t in await store.list_tickets(user_aad=DRAFT.user_aad)] == [c.number, 1001]
    assert [t.number for t in await store.list_tickets(exclude_status="resolved")] == [1003, 1002]
    assert [t.number for t in await store.list_tickets(limit=1)] == [1003]
    assert await store.list_tickets(user_aad="nobody") == []
    mixed = await store.create_ticket(changed(replace(DRAFT, user_aad="Alex.W"), user_aad="Alex.W"))
    assert mixed.user_aad == "alex.w" and mixed.body["user_aad"] == "Alex.W"  # listed by any case, kept as is
    assert await store.list_tickets(user_aad="ALEX.w", exclude_status="resolved") == [mixed]


async def test_outbox_dedupes_leases_retries_and_marks_sent(store: Store) -> None:
    assert await store.enqueue("ticket:1001:post", "post_ticket", {"number": 1001}) is True
    assert await store.enqueue("ticket:1001:post", "post_ticket", {"number": 1001}) is False
    [entry] = await store.claim_due(limit=10, lease_seconds=60)
    assert entry.kind == "post_ticket" and entry.payload == {"number": 1001} and entry.attempts == 1
    assert await store.claim_due(limit=10, lease_seconds=60) == []  # leased: invisible to others
    await store.mark_retry(entry, delay=0, error="429")
    [again] = await store.claim_due(limit=10, lease_seconds=60)
    assert again.attempts == 2 and again.last_error == "429"
    await store.mark_sent(again, {"activity_id": "a1"})
    await store.mark_retry(again, delay=0, error="late")  # a late retry can't resurrect a sent entry
    assert await store.claim_due(limit=10, lease_seconds=1) == []
    assert await store.outbox_status() == {"sent": 1}
    assert await store.enqueue("ticket:1001:post", "post_ticket", {}) is False  # sent keys stay taken


async def claimed_once_free(store: Store, lease_seconds: float = 60) -> OutboxEntry:
    """The one entry that becomes claimable again (a lease or a retry delay ends), as soon as it does."""
    got: list[OutboxEntry] = []

    async def claim() -> bool:
        got.extend(await store.claim_due(limit=2, lease_seconds=lease_seconds))
        return bool(got)

    await until(claim, "an entry to be claimable again", every=0.1)
    [entry] = got
    return entry


async def test_an_expired_lease_is_claimed_again(store: Store) -> None:
    await store.enqueue("k", "notify_user", {"user": "u"})
    [first] = await store.claim_due(limit=1, lease_seconds=1)
    assert await store.claim_due(limit=1, lease_seconds=60) == []
    second = await claimed_once_free(store)  # the first claimer died: not lost, once its lease ends
    assert first.id == second.id and second.attempts == 2


async def test_what_another_instance_recorded_is_not_sent_again_by_the_one_that_queued_it(
    instances: Instances,
) -> None:
    queuer, sender = instances(), instances()
    assert await queuer.enqueue("k", "notify_user", {"user": "u"})
    assert await queuer.enqueue("witness", "notify_user", {"user": "w"})
    entry, witness = await sender.claim_due(limit=2, lease_seconds=1)
    assert (entry.dedupe_key, witness.dedupe_key) == ("k", "witness")
    if isinstance(sender, AzureStore):
        # Recorded, then the sender died before taking the message off the queue: it comes back.
        await sender._merge_entry(entry, {"status": "sent", "done": time.time()})
    else:
        await sender.mark_sent(entry)
    # The witness, claimed in the same request, is claimable again once the lease ends; "k" is not, even
    # for the instance that queued it and remembers it.
    again = await claimed_once_free(queuer)
    assert again.dedupe_key == "witness" and again.attempts == 2
    assert await queuer.claim_due(limit=2, lease_seconds=60) == []


async def test_a_retry_waits_its_delay(store: Store) -> None:
    await store.enqueue("k", "notify_user", {})
    [entry] = await store.claim_due(limit=1, lease_seconds=60)
    await store.mark_retry(entry, delay=1, error="503")
    assert await store.claim_due(limit=1, lease_seconds=60) == []
    waiting, due_in = await store.pending()
    assert waiting == 1 and due_in is not None and 0 < due_in <= 1
    again = await claimed_once_free(store)
    assert again.id == entry.id


async def test_pending_counts_what_is_left_and_when_it_is_due(store: Store) -> None:
    assert await store.pending() == (0, None)
    for i in range(3):
        await store.enqueue(f"k{i}", "notify_user", {"i": i})
    assert await store.pending() == (3, 0.0)
    claimed = await store.claim_due(limit=3, lease_seconds=30)
    waiting, due_in = await store.pending()
    assert waiting == 3 and due_in is not None and 0 < due_in <= 30  # not due now: they are being sent
    for entry in claimed:
        await store.mark_sent(entry)
    assert await store.pending() == (0, None)


async def test_dead_entries_are_set_aside(store: Store) -> None:
    await store.enqueue("k", "notify_user", {})
    await store.enqueue("witness", "notify_user", {})
    claimed = await store.claim_due(limit=2, lease_seconds=1)
    entry = next(e for e in claimed if e.dedupe_key == "k")
    await store.mark_dead(entry, error="uninstalled")
    # The witness, claimed with the same lease and given no outcome, comes back when that lease ends:
    # by then the dead entry's lease has ended too, and it doesn't come back with it.
    witness = await claimed_once_free(store)
    assert witness.dedupe_key == "witness"
    await store.mark_sent(witness)
    assert await store.claim_due(limit=2, lease_seconds=1) == []
    assert await store.outbox_status() == {"dead": 1, "sent": 1}
    assert await store.pending() == (0, None)


async def test_an_entry_that_keeps_killing_its_worker_is_set_aside(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("bot.store.sqlite", "bot.store.azure.outbox"):
        monkeypatch.setattr(f"{module}.MAX_CLAIMS", 2)
    await store.enqueue("k", "notify_user", {})
    assert len(await store.claim_due(limit=1, lease_seconds=1)) == 1  # the worker dies before any outcome
    await claimed_once_free(store, lease_seconds=1)  # claimed again once its lease ends; dies again
    await store.enqueue("witness", "notify_user", {})
    await store.claim_due(limit=1, lease_seconds=1)  # the witness, claimed alongside, with the same lease
    witness = await claimed_once_free(store)
    assert witness.dedupe_key == "witness"  # ... comes back alone: the other was set aside
    await store.mark_sent(witness)
    assert await store.outbox_status() == {"dead": 1, "sent": 1}


async def test_instances_enqueueing_one_key_deliver_it_once(instances: Instances) -> None:
    stores = [instances() for _ in range(3)]
    results = await asyncio.gather(
        *(s.enqueue("notice:u1:abc", "notify_user", {"user": "u1"}) for s in stores * 3)
    )
    assert results.count(True) == 1
    claimed = [e for s in stores for e in await s.claim_due(limit=10, lease_seconds=60)]
    assert [e.dedupe_key for e in claimed] == ["notice:u1:abc"]


async def test_claimers_share_the_work_without_overlap(instances: Instances) -> None:
    one, two = instances(), instances()
    for i in range(30):
        await one.enqueue(f"k{i}", "notify_user", {"i": i})
    batches = await asyncio.gather(*(s.claim_due(limit=8, lease_seconds=60) for s in [one, two] * 3))
    ids = [e.payload["i"] for batch in batches for e in batch]
    assert len(ids) == len(set(ids)) == 30


async def test_one_lease_holder_at_a_time(instances: Instances) -> None:
    one, two = instances(), instances()
    results = await asyncio.gather(
        *(s.acquire_lease("sweep", f"owner-{i}", 60) for i, s in enumerate([one, two] * 3))
    )
    assert results.count(True) == 1
    winner = f"owner-{results.index(True)}"
    loser = "owner-1" if winner == "owner-0" else "owner-0"
    assert await one.acquire_lease("sweep", winner, 60) is True  # the holder may renew
    await two.release_lease("sweep", loser)  # not theirs to release
    assert await two.acquire_lease("sweep", loser, 60) is False
    await one.release_lease("sweep", winner)
    assert await two.acquire_lease("sweep", loser, 0.5) is True
    assert await one.acquire_lease("sweep", winner, 60) is False  # held until it expires ...
    await until(lambda: one.acquire_lease("sweep", winner, 60), "the loser's lease to expire")


async def test_open_store_picks_the_store_from_the_url(azurite: Azurite) -> None:
    from bot.errors import ConfigError
    from bot.store import open_store

    assert isinstance(open_store("sqlite://:memory:"), SqliteStore)
    azure = open_store(azurite.connection_string)
    assert isinstance(azure, AzureStore)
    await azure.set_setting("probe:x", {"ok": True})  # the default names work on a fresh account
    assert await azure.get_setting("probe:x") == {"ok": True}
    await azure.close()
    with pytest.raises(ConfigError, match="neither") as raised:
        open_store("postgres://user:secret@host/db")
    assert "secret" not in str(raised.value)


Run = Callable[[], Awaitable[None]]


async def all_records(store: Store, query: OutboxQuery, *, limit: int = 3) -> list[OutboxRecord]:
    """Every record `query` lists, read a page at a time as a report does."""
    records: list[OutboxRecord] = []
    cursor: str | None = None
    while True:
        page = await store.outbox_page(query, cursor=cursor, limit=limit)
        assert len(page.records) <= limit
        records += page.records
        if page.cursor is None:
            return records
        cursor = page.cursor


async def test_the_outbox_is_listed_in_pages_with_outcomes_times_and_groups(store: Store) -> None:
    before = time.time()
    for i in range(7):
        await store.enqueue(f"notify:u{i}:c", "notify_problem", {"i": i}, group="sweep-1" if i < 5 else None)
    claimed = {e.payload["i"]: e for e in await store.claim_due(limit=10, lease_seconds=60)}
    await store.mark_sent(claimed[0], {"activity_id": "a"})
    await store.mark_dead(claimed[1], error="HTTP 403")
    await store.mark_retry(claimed[2], delay=120, error="HTTP 429")
    listed = await all_records(store, OutboxQuery())
    assert sorted(r.payload["i"] for r in listed) == list(range(7))  # each once, across pages
    by_i = {r.payload["i"]: r for r in listed}
    assert (by_i[0].status, by_i[1].status, by_i[1].last_error) == ("sent", "dead", "HTTP 403")
    assert (
        by_i[0].done is not None and by_i[0].queued is not None and before <= by_i[0].queued <= by_i[0].done
    )
    assert by_i[2].status == "pending" and by_i[2].due is not None and by_i[2].due > time.time() + 100
    assert by_i[0].due is None and by_i[3].done is None
    group = await all_records(store, OutboxQuery(group="sweep-1"))
    assert sorted(r.payload["i"] for r in group) == [0, 1, 2, 3, 4]
    dead = await all_records(store, OutboxQuery(status="dead", done_since=before))
    assert [r.dedupe_key for r in dead] == ["notify:u1:c"]
    assert await all_records(store, OutboxQuery(since=time.time() + 60)) == []
    assert await store.outbox_record("notify:u0:c") == by_i[0]
    assert await store.outbox_record("never") is None


async def test_sent_entries_expire_to_their_key_and_the_key_still_dedupes(instances: Instances) -> None:
    one, two = instances(), instances()
    for key in ("notify:old", "notify:dead", "notify:waiting"):
        await one.enqueue(key, "notify_problem", {"finding": {"title": "x" * 500}})
    entries = {e.dedupe_key: e for e in await one.claim_due(limit=10, lease_seconds=60)}
    await one.mark_sent(entries["notify:old"], {"activity_id": "a"})
    await one.mark_dead(entries["notify:dead"], error="HTTP 404")
    assert await one.expire_sent(before=time.time() - 3600, limit=10) == 0  # sent just now: kept
    later = time.time() + 31 * 86400  # a month on (the store compares times; nothing waits)
    assert await two.expire_sent(before=later, limit=10) == 1
    assert await two.expire_sent(before=later, limit=10) == 0  # done once
    old = await one.outbox_record("notify:old")
    assert old is not None and (old.status, old.payload, old.kind) == ("expired", {}, "notify_problem")
    assert old.done is not None and old.queued is not None
    assert await two.enqueue("notify:old", "notify_problem", {"again": True}) is False  # told once, still
    assert {r.dedupe_key: r.status for r in await all_records(one, OutboxQuery())} == {
        "notify:old": "expired",
        "notify:dead": "dead",  # given up: kept whole for the report
        "notify:waiting": "pending",
    }
    assert await one.claim_due(limit=10, lease_seconds=60) == []  # expired is never sent again


async def test_expiry_is_bounded_per_call(store: Store) -> None:
    for i in range(5):
        await store.enqueue(f"k{i}", "notify_user", {"i": i})
    for entry in await store.claim_due(limit=10, lease_seconds=60):
        await store.mark_sent(entry)
    later = time.time() + 31 * 86400
    assert [await store.expire_sent(before=later, limit=2) for _ in range(4)] == [2, 2, 1, 0]
