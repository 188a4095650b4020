"""Kill -9 the delivering sweep mid-run, run it again: every affected person got exactly one message."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from bot.sandbox.connector import FakeConnector
from bot.store import SqliteStore
from tests.support.people import broken_org
from tests.support.repo import ROOT
from tests.support.timing import until

PEOPLE = 40


async def sweep(fixture: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "sweep",
        "--fixture",
        str(fixture),
        "--json",
        "--deliver-for",
        "60",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _recorded(store_path: Path, connector: FakeConnector) -> None:
    """Return once the store marks as sent as many entries as the connector accepted."""
    reader = SqliteStore(str(store_path))

    async def caught_up() -> bool:
        return (await reader.outbox_status()).get("sent", 0) >= connector.total

    try:
        await until(caught_up, "the sender to record what the connector accepted", seconds=60, every=0.02)
    finally:
        await reader.close()


async def test_sigkill_mid_delivery_then_resume_exactly_once(tmp_path: Path) -> None:
    fixture = tmp_path / "org.json"
    people = broken_org(fixture, PEOPLE)
    connector = FakeConnector(latency=0.01, hang_from=15)
    await connector.start()
    store_path = tmp_path / "store.sqlite3"
    store = SqliteStore(str(store_path))
    for n, aad in enumerate(people):
        await store.save_reference("t1", aad, connector.reference(f"a:chat-{n}"))
    await store.close()
    # A sender gives up on a request after a third of the lease; if Teams had accepted it, the retry sends it
    # again (at least once, by design). With a 2 s lease that is 0.67 s, which a process starved of CPU
    # misses: 9 s leaves 3 s.
    env = {**os.environ, "STORE_URL": f"sqlite:///{store_path}", "OUTBOX_LEASE_SECONDS": "9"}
    try:
        first = await sweep(fixture, env)
        await asyncio.wait_for(connector.hanging.wait(), timeout=60)
        # Every later request stays unanswered. Kill once the sender has recorded all that the connector
        # did answer: a kill before that is the one at-least-once window (accepted, not yet recorded).
        await _recorded(store_path, connector)
        first.send_signal(signal.SIGKILL)  # mid-send: the 15th message and those sent beside it in flight
        await first.wait()
        assert first.returncode == -signal.SIGKILL
        before = connector.total
        assert 0 < before < PEOPLE

        connector.hang_from = None
        connector.release.set()
        second = await sweep(fixture, env)
        out, err = await asyncio.wait_for(second.communicate(), timeout=120)
        assert second.returncode == 0, err.decode()
        result = json.loads(out)
        assert result["queued"] == 0  # everything was queued by the first run; nothing queued twice
        counts = {conversation: len(messages) for conversation, messages in connector.delivered.items()}
        ours = {f"a:chat-{n}" for n in range(PEOPLE)}
        assert {c: counts.get(c, 0) for c in ours} == dict.fromkeys(ours, 1)  # none lost, none twice
    finally:
        await connector.close()
