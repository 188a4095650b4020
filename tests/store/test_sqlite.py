"""What the SQLite store promises beyond the contract: its calls never wait behind other threads' work,
a cancelled caller never abandons a statement, and a store that can't be used is named with its problem."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from bot.errors import StoreError
from bot.store import SqliteStore, open_store


async def test_calls_do_not_queue_behind_a_saturated_default_executor(tmp_path: Path) -> None:
    # botbuilder sends from the default executor; sends the connector holds open fill it. The store's
    # calls (mark_sent above all) must still run, or a crash then loses what was already delivered.
    store = SqliteStore(str(tmp_path / "s.sqlite3"))
    release = threading.Event()
    loop = asyncio.get_running_loop()
    held = [loop.run_in_executor(None, release.wait) for _ in range(64)]
    try:
        assert await asyncio.wait_for(store.enqueue("k1", "notify_user", {"user": "u"}), timeout=30)
        entries = await asyncio.wait_for(store.claim_due(limit=5, lease_seconds=30), timeout=30)
        await asyncio.wait_for(store.mark_sent(entries[0]), timeout=30)
        assert (await asyncio.wait_for(store.outbox_status(), timeout=30)) == {"sent": 1}
    finally:
        release.set()
        await asyncio.gather(*held)
        await store.close()


async def test_a_cancelled_caller_does_not_abandon_its_write(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "s.sqlite3"))
    await store.enqueue("k1", "notify_user", {"user": "u"})
    [entry] = await store.claim_due(limit=1, lease_seconds=30)
    marking = asyncio.ensure_future(store.mark_sent(entry))
    await asyncio.sleep(0)  # submitted to the store's thread
    marking.cancel()  # a lease or a turn's budget ran out
    with pytest.raises(asyncio.CancelledError):
        await marking
    # The next call runs after the cancelled one, on the same thread: it sees the write, never beside it.
    assert await store.outbox_status() == {"sent": 1}
    await store.close()


async def test_a_corrupt_file_is_named_with_its_problem(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.sqlite3"
    path.write_bytes(b"this is not a database, just junk that fills a page" * 100)
    with pytest.raises(StoreError, match=r"corrupt\.sqlite3.*not a SQLite database or it is corrupt"):
        open_store(f"sqlite:///{path}")


async def test_a_folder_that_cannot_exist_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StoreError, match=r"a-file.*can't be created"):
        open_store(f"sqlite:///{blocker}/store.sqlite3")


async def test_a_store_locked_by_another_process_is_unavailable_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    import bot.store.sqlite as sqlite_module

    monkeypatch.setattr(sqlite_module, "LOCK_WAIT", 0.2)
    path = tmp_path / "locked.sqlite3"
    store = SqliteStore(str(path))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        with pytest.raises(StoreError, match="locked"):
            await store.enqueue("k1", "notify_user", {"user": "u"})
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await store.enqueue("k1", "notify_user", {"user": "u"})  # usable again once released
    await store.close()
