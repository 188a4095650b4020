"""The store's hot paths and delivery throughput, on SQLite and on Azure Storage (Azurite, npm, in memory).

(a) Operations per second, 8 at a time, for what every turn and every delivery does: save a conversation
    reference, update a ticket (read, then write with its version), and the outbox (enqueue; claim in
    batches of 20 and mark each sent).
(b) Delivery throughput with 1, 2 and 4 `python -m bot deliver` workers sharing the store, against a
    loopback Bot Connector that keeps Teams' limits (50 messages a second per app per tenant, 7 per
    conversation; 429 + Retry-After beyond): the rate from first to last accepted message, 429s drawn,
    and lost or duplicate messages (goal: the Teams limit, 0 lost, 0 twice).

Azurite is an emulator on this machine: its figures say nothing about Azure Storage's own performance.

    python bench/store.py [--ops 400] [--messages 400] [--workers 1 2 4] [--stores sqlite azure]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from bot.sandbox.azurite import Azurite, start_azurite
from bot.sandbox.connector import FakeConnector
from bot.store import SqliteStore, Store, StoredTicket
from bot.store.azure import AzureStore

ROOT = Path(__file__).resolve().parents[1]
TENANT = "00000000-0000-0000-0000-0000000000001"
CONCURRENCY = 8
USER = "0e000000-0000-4000-8000-000000000001"
DRAFT = StoredTicket(  # a ticket document of the helpdesk's shape and size
    number=0,
    version=1,
    user_aad=USER,
    status="open",
    body={
        "tenant": TENANT,
        "user_aad": USER,
        "user_name": "Bench User",
        "record_type": "appointment",
        "record_id": None,
        "subject": "Weekly sync",
        "report": {"findings": [{"id": "act-not-server-side-sync", "evidence": "x" * 400}]},
        "comment": "not in Outlook",
        "status": "open",
    },
)


async def rate(count: int, work: Callable[[int], Awaitable[object]]) -> float:
    """Operations per second for `count` calls of `work`, CONCURRENCY at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            await work(i)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - started)


async def hot_paths(store: Store, ops: int) -> dict[str, float]:
    reference = {
        "conversation": {"id": "a:chat"},
        "serviceUrl": "https://smba.example/",
        "channelId": "msteams",
    }
    results = {
        "save reference": await rate(ops, lambda i: store.save_reference(TENANT, f"user-{i}", reference))
    }
    tickets = [await store.create_ticket(DRAFT) for _ in range(min(ops, 100))]

    async def update(i: int) -> None:
        ticket = await store.get_ticket(tickets[i % len(tickets)].number)
        assert ticket is not None
        try:
            await store.update_ticket(
                replace(ticket, body={**ticket.body, "comment": f"note {i}"}), expected_version=ticket.version
            )
        except Exception as exc:  # a concurrent update of the same ticket: also what agents see
            if type(exc).__name__ != "Conflict":
                raise

    results["ticket update (read + write)"] = await rate(ops, update)
    results["outbox enqueue"] = await rate(
        ops, lambda i: store.enqueue(f"bench:{i}", "notify_user", {"i": i})
    )
    started, acked = time.perf_counter(), 0
    for _ in range(ops):  # bounded: at most one round per entry
        batch = await store.claim_due(limit=20, lease_seconds=60)
        if not batch:
            break
        await asyncio.gather(*(store.mark_sent(entry) for entry in batch))
        acked += len(batch)
    results["outbox claim + ack"] = acked / (time.perf_counter() - started)
    return results


async def delivery(
    store_url: str, store: Store, messages: int, workers: int, folder: Path
) -> dict[str, float]:
    connector = FakeConnector()  # Teams' limits: 50/s per tenant, 7/s per conversation
    await connector.start()
    run = f"w{workers}-{time.monotonic_ns()}"
    for n in range(messages):
        user = f"{run}-{n}"
        await store.save_reference(TENANT, user, connector.reference(f"a:{user}", tenant=TENANT))
        await store.enqueue(
            f"{run}:{n}", "notify_user", {"tenant": TENANT, "user": user, "text": f"notice {n}"}
        )
    env = {**os.environ, "STORE_URL": store_url, "OUTBOX_LEASE_SECONDS": "30"}
    env.pop("MicrosoftAppId", None)
    processes = []
    for w in range(workers):
        with (folder / f"{run}-{w}.log").open("wb") as log:
            processes.append(
                await asyncio.create_subprocess_exec(
                    *(sys.executable, "-m", "bot", "deliver", "--sandbox", "--every", "0.2"),
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=log,
                )
            )
    try:
        for _ in range(int(max(60.0, messages / 10) / 0.1)):  # bounded: a stuck run ends the bench
            if connector.total >= messages:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # anything sent twice would arrive now
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            await asyncio.wait_for(process.wait(), timeout=30)
        await connector.close()
    counts = [len(v) for v in connector.delivered.values()]
    span = connector.accepted_at[-1] - connector.accepted_at[0] if len(connector.accepted_at) > 1 else 0
    return {
        "per second": (len(connector.accepted_at) - 1) / span if span else 0.0,
        "429s": connector.throttled,
        "lost": messages - len(counts),
        "twice": sum(1 for c in counts if c > 1),
    }


def open_bench_store(kind: str, folder: Path, azurite: Azurite | None, name: str) -> tuple[str, Store]:
    if kind == "sqlite":
        path = folder / f"{name}.sqlite3"
        return f"sqlite:///{path}", SqliteStore(str(path))
    assert azurite is not None
    return azurite.connection_string, AzureStore(azurite.connection_string, prefix=f"b{name}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=400)
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--stores", nargs="+", choices=["sqlite", "azure"], default=["sqlite", "azure"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        azurite = start_azurite() if "azure" in args.stores else None
        try:
            for kind in args.stores:
                _, store = open_bench_store(kind, folder, azurite, "hot")
                print(
                    f"== {kind}: operations per second ({CONCURRENCY} at a time, {args.ops} each)", flush=True
                )
                for name, value in (await hot_paths(store, args.ops)).items():
                    print(f"  {name:30} {value:8.0f}", flush=True)
                await store.close()
            for kind in args.stores:
                print(f"== {kind}: delivery of {args.messages} notices, Teams limit 50/s", flush=True)
                for workers in args.workers:
                    # The deliver CLI uses the default table and queue names: one fresh store per run.
                    if kind == "azure":
                        assert azurite is not None
                        azurite.stop()
                        azurite = start_azurite()
                        url, store = azurite.connection_string, AzureStore(azurite.connection_string)
                    else:
                        url, store = open_bench_store(kind, folder, azurite, f"deliver{workers}")
                    result = await delivery(url, store, args.messages, workers, folder)
                    await store.close()
                    print(
                        f"  {workers} worker(s): {result['per second']:5.1f}/s, {result['429s']:.0f} 429s, "
                        f"{result['lost']:.0f} lost, {result['twice']:.0f} twice",
                        flush=True,
                    )
        finally:
            if azurite is not None:
                azurite.stop()


if __name__ == "__main__":
    asyncio.run(main())
