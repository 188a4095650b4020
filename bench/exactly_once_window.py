"""The one at-least-once window, measured: Teams accepted a message, and its record is not written yet.

A sender that dies inside this window (SIGKILL, power loss) leaves an entry that another sender delivers
again once its lease ends. Everywhere else delivery is exactly once: a message is recorded before it is
sent and marked sent after Teams accepts it; a send still unanswered when its sender dies was never
accepted. This measures, per message, the time from the loopback Bot Connector's 2xx to the outbox
entry committed as sent (SQLite, one process), optionally with every core kept busy by other processes.
In production add the time the connector's answer takes to travel back (one network hop).

    python bench/exactly_once_window.py [--messages 300] [--busy 0]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.helpdesk.senders import register_senders
from bot.notify.outbox import deliverer_for
from bot.sandbox.connector import FakeConnector
from bot.store import OutboxEntry, SqliteStore

TENANT = "00000000-0000-0000-0000-0000000000001"


class StampingStore(SqliteStore):
    """Notes when each entry's "sent" is committed."""

    recorded: dict[str, float]

    async def mark_sent(self, entry: OutboxEntry, result: dict[str, Any] | None = None) -> None:
        await super().mark_sent(entry, result)
        self.recorded[entry.payload["user"]] = time.monotonic()


def burn(seconds: float) -> None:
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        pass


async def measure(messages: int) -> list[float]:
    connector = FakeConnector()  # Teams' limits: 50/s per tenant, 7/s per conversation
    await connector.start()
    with tempfile.TemporaryDirectory() as folder:
        store = StampingStore(str(Path(folder) / "store.sqlite3"))
        store.recorded = {}
        users = [f"0c000000-0000-4000-8000-{n:012d}" for n in range(messages)]
        for n, user in enumerate(users):
            await store.save_reference(TENANT, user, connector.reference(f"a:chat-{n}"))
            await store.enqueue(f"window:{n}", "notify_user", {"tenant": TENANT, "user": user, "text": "hi"})
        deliverer = deliverer_for(Settings(), store)
        register_senders(deliverer)  # notify_user is the helpdesk's kind
        ends = time.monotonic() + 120
        while len(store.recorded) < messages and time.monotonic() < ends:
            await deliverer.drain(limit=32)
        await store.close()
    await connector.close()
    accepted = {a["conversation_id"]: t for a, t in zip(connector.sent, connector.accepted_at, strict=True)}
    return [
        store.recorded[user] - accepted[f"a:chat-{n}"]
        for n, user in enumerate(users)
        if user in store.recorded
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes to run beside it")
    args = parser.parse_args()
    burners = [multiprocessing.Process(target=burn, args=(150.0,), daemon=True) for _ in range(args.busy)]
    for p in burners:
        p.start()
    try:
        windows = sorted(asyncio.run(measure(args.messages)))
    finally:
        for p in burners:
            p.terminate()
    ms = [w * 1000 for w in windows]
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"{len(ms)} messages, {args.busy} busy process(es) beside it")
    print(
        f"accepted -> recorded as sent: median {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
