"""Outbox retention, through the sweep on SQLite and on Azure Storage (Azurite): sent entries lose their
body after OUTBOX_RETENTION_DAYS, a bounded batch per sweep, and "told once" holds all the same: the
dedupe key outlives the body. Time is the sweep's injected clock: nothing waits a month."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.helpdesk.senders import register_senders
from bot.notify import sweep as sweep_module
from bot.notify.outbox import deliverer_for
from bot.notify.report import notice_rows
from bot.notify.sweep import run_sweep
from bot.sandbox import LocalOrg
from bot.sandbox.azurite import Azurite
from bot.store import SqliteStore, Store
from bot.store.azure import AzureStore
from tests.support.org import MEGAN
from tests.support.teams import running_connector

DAY = 86400.0


@pytest.fixture(params=["sqlite", "azure"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        opened: Store = SqliteStore(str(tmp_path / "retention.sqlite3"))
    else:
        azurite: Azurite = request.getfixturevalue("azurite")
        opened = AzureStore(azurite.connection_string, prefix=f"ret{int(time.time() * 1000) % 10**9}")
    yield opened
    await opened.close()


def days_on(days: float) -> float:
    return time.time() + days * DAY


async def test_told_once_outlives_the_notice(local: LocalOrg, store: Store) -> None:
    async with running_connector() as connector:
        await store.save_reference("t1", MEGAN, connector.reference("a:megan", tenant="t1", user=MEGAN))
        first = await run_sweep(local.clients.dataverse, store, dry_run=False)
        assert first.queued == 1
        deliverer = deliverer_for(Settings(), store)
        register_senders(deliverer)
        assert await deliverer.drain() >= 1
        assert len(connector.sent) == 1

        month = await run_sweep(local.clients.dataverse, store, dry_run=False, clock=lambda: days_on(29))
        assert month.expired == 0  # within the retention period: kept whole

        later = await run_sweep(local.clients.dataverse, store, dry_run=False, clock=lambda: days_on(31))
        assert later.expired >= 1  # Megan's notice (and the earlier sweeps' reports)
        # Megan is still broken a month on: the expired notice's key still says she was told.
        assert later.queued == 0 and later.already_told == 1
        await deliverer.drain()
        assert len(connector.sent) == 1
        rows = [row async for row in notice_rows(store, since=None)]
        [megan] = [row for row in rows if row.user == MEGAN]
        assert (megan.outcome, megan.cause, megan.sent is not None) == (
            "delivered",
            "act-not-server-side-sync",
            True,
        )


async def test_each_sweep_expires_a_bounded_batch(
    local: LocalOrg, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep_module, "EXPIRE_PER_SWEEP", 2)
    for i in range(5):
        await store.enqueue(f"notify:u{i}:c:f", "notify_problem", {"i": i})
    for entry in await store.claim_due(limit=10, lease_seconds=60):
        await store.mark_sent(entry)
    done = [
        (await run_sweep(local.clients.dataverse, store, dry_run=False, clock=lambda: days_on(31))).expired
        for _ in range(3)
    ]
    assert done[:2] == [2, 2] and sum(done) >= 5  # the rest go over later sweeps; the 3rd adds sweep reports


async def test_an_upgraded_file_starts_its_retention_at_the_upgrade(local: LocalOrg, tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, dedupe_key TEXT UNIQUE NOT NULL, "
        "kind TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'pending', "
        "attempts INTEGER NOT NULL DEFAULT 0, due REAL NOT NULL, last_error TEXT, result TEXT);"
    )
    a_year_ago = time.time() - 365 * DAY
    db.execute(
        "INSERT INTO outbox (dedupe_key, kind, payload, status, due) VALUES (?, 'notify_problem', '{}', 'sent', ?)",
        (f"notify:{MEGAN}:act-not-server-side-sync:f", a_year_ago),
    )
    db.commit()
    db.close()
    store = SqliteStore(str(path))
    try:
        assert (
            await store.expire_sent(before=days_on(29) - 30 * DAY, limit=10) == 0
        )  # no time: upgrade counts
        assert await store.expire_sent(before=days_on(31) - 30 * DAY, limit=10) == 1
        assert (
            await store.enqueue(f"notify:{MEGAN}:act-not-server-side-sync:f", "notify_problem", {}) is False
        )
        [row] = [row async for row in notice_rows(store, since=None)]
        assert row.queued == a_year_ago and (row.user, row.outcome) == (MEGAN, "delivered")
    finally:
        await store.close()
