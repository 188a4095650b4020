"""Stores the previous version wrote keep working: the same tables, columns and JSON bodies, read and
written byte for byte as before (the helpdesk's `Ticket` now converts; the store keeps documents)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.helpdesk import book as book_module
from bot.helpdesk.book import TicketBook
from bot.helpdesk.channels import HelpdeskChannel, TicketCard, get_helpdesk_channel, get_ticket_card
from bot.helpdesk.tickets import Ticket, assign
from bot.notify.preferences import Watch, muted_users, watches
from bot.sandbox.azurite import Azurite
from bot.store import SqliteStore, Store
from bot.store.azure import AzureStore

# What the previous version's SQLite store made of an empty file, and the bodies it wrote for one ticket:
# created at 03:04:05, then assigned to Megan at 04:00.
OLD_SCHEMA = """
CREATE TABLE refs (key TEXT PRIMARY KEY, reference TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE tickets (number INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL,
    user_aad TEXT NOT NULL, status TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, dedupe_key TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0, due REAL NOT NULL, last_error TEXT, result TEXT);
CREATE INDEX outbox_due ON outbox (status, due);
"""
CREATED = (
    '{"number": 1001, "tenant": "T1", "user_aad": "Alex-AAD", "user_name": "Alex Wilber", "record_type": '
    '"appointment", "record_id": "c3000000-0000-4000-8000-000000000001", "subject": "Quarterly review", '
    '"report": {"findings": [], "causes": ["x"]}, "comment": "not there", "status": "open", "assignee": null, '
    '"assignee_name": null, "resolution": null, "changed_by": "Alex Wilber", "changed_at": '
    '"2026-01-02T03:04:05Z", "created_at": "2026-01-02T03:04:05Z", "version": 1}'
)
ASSIGNED = (
    '{"number": 1001, "tenant": "T1", "user_aad": "Alex-AAD", "user_name": "Alex Wilber", "record_type": '
    '"appointment", "record_id": "c3000000-0000-4000-8000-000000000001", "subject": "Quarterly review", '
    '"report": {"findings": [], "causes": ["x"]}, "comment": "not there", "status": "assigned", "assignee": '
    '"agent-1", "assignee_name": "Megan", "resolution": null, "changed_by": "Megan", "changed_at": '
    '"2026-01-02T04:00:00Z", "created_at": "2026-01-02T03:04:05Z", "version": 2}'
)
DRAFT = Ticket(
    number=0,
    tenant="T1",
    user_aad="Alex-AAD",
    user_name="Alex Wilber",
    record_type="appointment",
    record_id="c3000000-0000-4000-8000-000000000001",
    subject="Quarterly review",
    report={"findings": [], "causes": ["x"]},
    comment="not there",
    changed_by="Alex Wilber",
)
CHANNEL = {"channel_id": "19:hd", "service_url": "https://smba.example/", "bot_id": "28:bot", "team": "g1"}
CARD = {"activity_id": "1", "conversation_id": "19:hd;messageid=1", "service_url": "https://smba.example/"}


def at(monkeypatch: pytest.MonkeyPatch, stamp: str) -> None:
    monkeypatch.setattr(book_module, "now", lambda: stamp)


def old_file(path: Path) -> None:
    """A store file as the previous version left it: one ticket, assigned; a channel, a card, a mute, a
    watch; and one entry of each kind in its outbox, still pending."""
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.execute(
        "INSERT INTO tickets (number, body, user_aad, status, version) VALUES (1001, ?, 'alex-aad', 'assigned', 2)",
        (ASSIGNED,),
    )
    settings = {
        "helpdesk_channel:t1": CHANNEL,
        "helpdesk_channel:default": CHANNEL,
        "ticket_card:1001": CARD,
        "mute:alex-aad": {"since": "2026-01-01T00:00:00Z"},
        "watch:megan-aad": {"causes": ["act-sync-failing"], "since": "2026-01-01T00:00:00Z"},
    }
    for key, value in settings.items():
        db.execute("INSERT INTO settings (key, value) VALUES (?, ?)", (key, json.dumps(value)))
    db.commit()
    db.close()


async def test_an_old_sqlite_file_reads_and_writes_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.sqlite3"
    old_file(path)
    store = SqliteStore(str(path))
    try:
        tickets = TicketBook(store)
        ticket = await tickets.get(1001)
        assert ticket is not None and ticket.key == "SD-1001" and ticket.version == 2
        assert (ticket.assignee_name, ticket.user_aad, ticket.report) == (
            "Megan",
            "Alex-AAD",
            {"findings": [], "causes": ["x"]},
        )
        assert [t.key for t in await tickets.find(user_aad="ALEX-aad", open_only=True)] == ["SD-1001"]
        assert await get_helpdesk_channel(store, "T1") == HelpdeskChannel(
            "19:hd", "https://smba.example/", "28:bot", "g1"
        )
        assert await get_ticket_card(store, 1001) == TicketCard(
            "1", "19:hd;messageid=1", "https://smba.example/"
        )
        assert await muted_users(store) == {"alex-aad"}
        assert await watches(store) == {"megan-aad": Watch(("act-sync-failing",), "2026-01-01T00:00:00Z")}
        # The next ticket is SD-1002: the numbering goes on where it was.
        at(monkeypatch, "2026-01-02T03:04:05Z")
        assert (await tickets.open(DRAFT)).key == "SD-1002"
    finally:
        await store.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT body FROM tickets WHERE number = 1002").fetchone()[0] == CREATED.replace(
        '"number": 1001', '"number": 1002'
    )
    db.close()


@pytest.fixture(params=["sqlite", "azure"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        opened: Store = SqliteStore(str(tmp_path / "new.sqlite3"))
    else:
        azurite: Azurite = request.getfixturevalue("azurite")
        opened = AzureStore(azurite.connection_string, prefix=f"compat{int(time.time() * 1000) % 10**8}")
    yield opened
    await opened.close()


async def raw_body(store: Store, number: int) -> str:
    """The ticket's body exactly as the store keeps it."""
    if isinstance(store, SqliteStore):
        row = await store._run(
            lambda: store._db.execute("SELECT body FROM tickets WHERE number = ?", (number,)).fetchone()
        )
        return str(row["body"])
    assert isinstance(store, AzureStore)
    entity = await store._get("tickets", "ticket", f"{10**12 - number:012d}")
    assert entity is not None
    assert (entity["number"], entity["user_aad"], entity["status"]) == (
        number,
        "alex-aad",
        json.loads(entity["body"])["status"],
    )
    return str(entity["body"])


async def test_bodies_are_written_byte_for_byte_as_before(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    tickets = TicketBook(store)
    at(monkeypatch, "2026-01-02T03:04:05Z")
    created = await tickets.open(DRAFT)
    assert await raw_body(store, created.number) == CREATED
    at(monkeypatch, "2026-01-02T04:00:00Z")
    saved = await tickets.save(assign(created, "agent-1", "Megan"), expected_version=created.version)
    assert saved.version == 2 and await raw_body(store, created.number) == ASSIGNED
    assert await tickets.get(1001) == saved
