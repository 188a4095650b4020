"""The outbox's kinds and payloads: typed, read in one place, stored as the previous version stored them (so
what it queued still goes out, and dedupe keys still dedupe), and an entry nobody could send set aside."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from botbuilder.schema import Activity

from bot.config import Settings
from bot.helpdesk.book import TicketBook
from bot.helpdesk.channels import get_ticket_card
from bot.helpdesk.desk import Escalation, Helpdesk
from bot.helpdesk.senders import register_senders
from bot.helpdesk.tickets import Ticket
from bot.notify import sweep
from bot.notify.outbox import (
    Digest,
    NotifyProblem,
    NotifyUser,
    PostTicket,
    UpdateTicketCard,
    deliverer_for,
)
from bot.notify.outbox.kinds import InvalidEntry, parse
from bot.notify.preferences import set_watch
from bot.store import SqliteStore
from tests.support.teams import running_connector

USER, AGENT = "Alex-AAD", "megan-aad"
FINDING = {
    "id": "act-not-server-side-sync",
    "status": "fail",
    "title": "Appointments, Contacts, and Tasks are not set to synchronize",
    "evidence": {"appointments_contacts_tasks": "None", "nothing": None},
    "steps": ["Open the mailbox."],
    "source": "https://support.microsoft.com/help/4509420",
}
# (dedupe key, kind, payload JSON) as the previous version wrote them.
OLD_ENTRIES = [
    ("ticket:1001:post", "post_ticket", '{"number": 1001}'),
    ("ticket:1001:v2:card", "update_ticket_card", '{"number": 1001}'),
    (
        "ticket:1001:v2:notify",
        "notify_user",
        '{"tenant": "t1", "user": "Alex-AAD", "text": "Your ticket SD-1001 was assigned to Megan: they\'re on it.", "number": 1001}',
    ),
    ("fixed:alex-aad:t0", "notify_user", '{"tenant": "t1", "user": "Alex-AAD", "text": "Good news"}'),
    (
        "notify:alex-aad:act-not-server-side-sync:abc",
        "notify_problem",
        json.dumps({"tenant": "t1", "user": USER, "finding": FINDING}),
    ),
    (
        "digest:0123",
        "digest",
        '{"counts": {"mailbox-inactive": 2}, "people": ["Lee (mailbox-inactive)", "Pat (mailbox-inactive)"], "total": 2}',
    ),
]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "store.sqlite3"))
    yield s
    await s.close()


def outcomes(path: Path) -> dict[str, tuple[str, str | None]]:
    """Each entry's status and last error, read from the file."""
    db = sqlite3.connect(path)
    try:
        return {
            key: (status, error)
            for key, status, error in db.execute("SELECT dedupe_key, status, last_error FROM outbox")
        }
    finally:
        db.close()


async def queued(store: SqliteStore) -> list[tuple[str, str, str]]:
    return [
        (e.dedupe_key, e.kind, json.dumps(e.payload))
        for e in await store.claim_due(limit=50, lease_seconds=60)
    ]


def test_each_kind_reads_and_writes_its_stored_shape() -> None:
    types = [PostTicket, UpdateTicketCard, NotifyUser, NotifyUser, NotifyProblem, Digest]
    for (_, kind, stored), expected in zip(OLD_ENTRIES, types, strict=True):
        payload = parse(kind, json.loads(stored))
        assert type(payload) is expected and payload.kind == kind
        assert json.dumps(payload.to_dict()) == stored  # byte for byte, field order included
    assert [parse(kind, json.loads(p)).lane for _, kind, p in OLD_ENTRIES] == [
        "1001",
        "1001",
        "alex-aad",
        "alex-aad",
        "alex-aad",
        None,
    ]


@pytest.mark.parametrize(
    ("kind", "payload", "error"),
    [
        ("carrier_pigeon", {}, "unknown kind carrier_pigeon"),
        ("notify_user", {"user": "u"}, "a notify_user payload that doesn't fit: tenant, text"),
        ("post_ticket", {"number": "SD-1"}, "a post_ticket payload that doesn't fit: number"),
        (
            "digest",
            {"counts": {"x": "many"}, "people": [], "total": 1},
            "a digest payload that doesn't fit: counts.x",
        ),
    ],
)
def test_an_unreadable_payload_is_refused_with_its_reason(
    kind: str, payload: dict[str, Any], error: str
) -> None:
    with pytest.raises(InvalidEntry) as refused:
        parse(kind, payload)
    assert str(refused.value) == error


async def test_the_helpdesk_and_the_sweep_queue_what_they_did_before(store: SqliteStore) -> None:
    class Investigator:
        async def run(self, *args: Any, **kwargs: Any) -> Any:
            class Report:
                def to_dict(self) -> dict[str, Any]:
                    return {"findings": [], "record": {"subject": "Quarterly review"}}

            return Report()

    desk = Helpdesk(store, None, Investigator(), frozenset({AGENT}))  # type: ignore[arg-type]
    ticket, has_channel = await desk.escalate(
        Escalation(
            tenant="t1", user=USER, user_name="Alex", record_type="appointment", record=None, comment=" hi "
        )
    )
    assert (ticket.key, ticket.subject, ticket.comment, has_channel) == (
        "SD-1001",
        "Quarterly review",
        "hi",
        False,
    )
    await desk.set_channel(
        tenant="T1", channel_id="19:hd", service_url="https://smba.example/", bot_id="28:bot"
    )
    await desk.act(verb="ticket_assign", data={"ticket": 1001, "version": 1}, agent=AGENT, agent_name="Megan")
    assert (
        await queued(store)
        == [
            *OLD_ENTRIES[:1],
            (
                "ticket:1001:post:19:hd",
                "post_ticket",
                '{"number": 1001}',
            ),  # the ticket that waited for a channel
            *OLD_ENTRIES[1:3],
        ]
    )
    channel = {"channel_id": "19:hd", "service_url": "https://smba.example/", "bot_id": "28:bot", "team": ""}
    assert await store.get_setting("helpdesk_channel:t1") == channel
    assert await store.get_setting("helpdesk_channel:default") == channel
    await desk.mute(USER)
    await desk.watch(USER, ["act-sync-failing"])
    assert set(await store.get_setting("mute:alex-aad") or {}) == {"since"}
    watch = await store.get_setting("watch:alex-aad")
    assert (
        watch is not None and list(watch) == ["causes", "since"] and watch["causes"] == ["act-sync-failing"]
    )

    await store.save_reference("t1", USER, {"conversation": {"id": "a:chat"}})
    await set_watch(store, USER, ["act-sync-failing"], since="t0")
    assert await sweep._tell_the_fixed(store, [], [USER]) == 1
    [fixed] = await queued(store)
    assert fixed == (
        "fixed:alex-aad:t0",
        "notify_user",
        json.dumps({"tenant": "t1", "user": USER, "text": sweep.FIXED}),
    )
    # (The sweep no longer queues digests: its delivery report replaced them. Digests an older version
    # queued still read and deliver: see the tests above and below.)


async def test_entries_queued_by_the_previous_version_still_deliver(store: SqliteStore) -> None:
    async with running_connector() as connector:
        await TicketBook(store).open(
            Ticket(0, "t1", USER, "Alex", "appointment", None, "Quarterly review", {"findings": []}, "hi")
        )
        await store.save_reference("t1", USER, connector.reference("a:alex"))
        channel = {"channel_id": "19:hd", "service_url": connector.url, "bot_id": "28:bot", "team": "g"}
        await store.set_setting("helpdesk_channel:t1", channel)
        await store.set_setting("helpdesk_channel:default", channel)
        for key, kind, payload in OLD_ENTRIES:
            assert await store.enqueue(key, kind, json.loads(payload))
        deliverer = deliverer_for(Settings(), store)
        register_senders(deliverer)
        assert await deliverer.drain(limit=50) == len(OLD_ENTRIES)
        assert await store.outbox_status() == {"sent": len(OLD_ENTRIES)}
        assert len(connector.created) == 2 and len(connector.updated) == 1  # the ticket's post and the digest
        assert [a.get("text") for a in connector.sent] == [
            "Your ticket SD-1001 was assigned to Megan: they're on it.",
            "Good news",
            None,
        ]
        assert "SD-1001" in json.dumps(connector.sent[0]["attachments"]) and connector.sent[2]["attachments"]
        card = await get_ticket_card(store, 1001)
        [post] = [c for c in connector.created if "SD-1001" in json.dumps(c["activity"])]
        assert card is not None and card.conversation_id == post["conversation_id"]
        assert connector.updated[0]["conversation_id"] == post["conversation_id"]


async def test_an_entry_no_sender_could_read_is_set_aside_with_its_reason(
    store: SqliteStore, tmp_path: Path
) -> None:
    await store.enqueue("k1", "notify_user", {"user": "u"})  # from a bench, or a bug: no tenant, no text
    await store.enqueue("k2", "carrier_pigeon", {"user": "u"})
    deliverer = deliverer_for(Settings(), store)
    register_senders(deliverer)
    assert await deliverer.drain() == 0
    assert outcomes(tmp_path / "store.sqlite3") == {
        "k1": ("dead", "a notify_user payload that doesn't fit: tenant, text"),
        "k2": ("dead", "unknown kind carrier_pigeon"),
    }


async def test_a_kind_this_process_has_no_sender_for_waits_for_one_that_has(
    store: SqliteStore, tmp_path: Path
) -> None:
    await store.enqueue("ticket:1001:post", "post_ticket", {"number": 1001})
    deliverer = deliverer_for(Settings(), store)  # the helpdesk's senders were not registered
    assert await deliverer.drain() == 0
    waiting, due_in = await store.pending()
    assert waiting == 1 and due_in is not None and due_in > 30
    assert outcomes(tmp_path / "store.sqlite3") == {
        "ticket:1001:post": ("pending", "no sender for post_ticket")
    }


async def test_a_send_is_one_attempt_the_outbox_retries_not_the_connector_client(store: SqliteStore) -> None:
    """Teams accepts the notice but answers after the sender gave up: the HTTP client must not post it
    again by itself (msrest asks urllib3 to retry POSTs; urllib3 2 ignores that setting, 1.26 obeys it);
    the outbox records the failure and retries later."""
    async with running_connector() as connector:
        connector.latency = 2.0  # the answer comes after the send timeout (a third of a 1.5 s lease)
        await store.save_reference("t1", USER, connector.reference("a:alex"))
        payload = {"tenant": "t1", "user": USER, "text": "hi"}
        assert await store.enqueue("k1", "notify_user", payload)
        deliverer = deliverer_for(Settings(OUTBOX_LEASE_SECONDS=1.5), store)
        register_senders(deliverer)
        assert await deliverer.drain() == 0
        assert connector.admitted == 1  # one request for the one send
        assert await store.outbox_status() == {"pending": 1}  # left for the outbox's own retry


async def test_a_send_whose_turn_comes_after_its_start_deadline_is_not_made(store: SqliteStore) -> None:
    """The deadline is checked right before the request (after pacing and the sender's own store reads),
    so a send can't start so late in its lease that another worker may already be sending it again."""
    import asyncio

    from bot.notify.outbox.connector import Undeliverable, sending_by

    async with running_connector() as connector:
        await store.save_reference("t1", USER, connector.reference("a:alex"))
        deliverer = deliverer_for(Settings(), store)
        passed = asyncio.get_running_loop().time() - 0.001
        with sending_by(passed), pytest.raises(Undeliverable, match="too late"):
            await deliverer.connector.send(connector.reference("a:alex"), Activity(type="message", text="hi"))
        assert connector.admitted == 0


async def test_a_send_that_waits_for_a_free_slot_past_its_deadline_is_not_made(store: SqliteStore) -> None:
    """Sends the connector holds take every slot: a send checked "in time" before it got a thread would
    reach Teams long after its deadline (and its lease). It is checked once it has a slot, and refused."""
    import asyncio

    from bot.notify.outbox.connector import SEND_SLOTS, Undeliverable, sending_by
    from bot.notify.outbox.limits import SendLimiter
    from tests.support.timing import until

    async with running_connector() as connector:
        connector.hang_from = 1  # hold every request open
        deliverer = deliverer_for(Settings(), store)
        deliverer.connector.limiter = SendLimiter(per_tenant=10**6, per_conversation=10**6)
        send = deliverer.connector.send

        def message() -> Activity:
            return Activity(type="message", text="hi")

        held = [
            asyncio.ensure_future(send(connector.reference(f"a:{n}"), message())) for n in range(SEND_SLOTS)
        ]
        await until(lambda: connector.admitted == SEND_SLOTS, "every slot to hold a send")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 0.2
        with sending_by(deadline):
            late = asyncio.ensure_future(send(connector.reference("a:late"), message()))
        await until(lambda: loop.time() > deadline, "the deadline to pass")
        connector.release_status = 503
        connector.release.set()
        with pytest.raises(Undeliverable, match="too late"):
            await late
        await asyncio.gather(*held, return_exceptions=True)
        assert connector.admitted == SEND_SLOTS  # the late one never reached Teams
