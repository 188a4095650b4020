"""Proactive delivery in the production topologies: how close to Teams' limit, and what a SIGKILL costs.

Each run is the real CLI in processes of their own, sharing one store (SQLite file or Azurite), against a
loopback Bot Connector that answers 429 beyond Teams' 50 messages a second per tenant and 7 per
conversation:

    alone   one `sweep` (find, queue, deliver)
    serve   `serve --sandbox ORG` (delivering), then one `sweep` beside it
    full    two `serve` and one `deliver` worker, then two `sweep`s at once (one gets the sweep lease)

Every person in the org is affected and has a stored conversation. Printed per run: the delivery rate
from the first to the last accepted notice (goal >= 90% of 50/s, >= 80% with every core busy), the 429s
drawn, notices lost and sent twice (goal 0 and 0), and the time from the sweeps' start to the first notice.
With `--kill`, the process leading delivery is killed with SIGKILL once a third is delivered: the time
until the others deliver at 90% of the limit again over one second (goal: within one outbox lease, 30 s;
it takes the dead leader's own lease, 5 s, and a follower's next look).
`--first-notice` measures the time from a sweep's start to its first notice for a large org instead.

    python bench/topology.py [--people 500] [--stores sqlite azure] [--topologies alone serve full]
                             [--busy] [--kill] [--first-notice 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.notify.outbox.leader import LEASE, leader_seconds
from bot.sandbox.azurite import start_azurite
from bot.sandbox.connector import FakeConnector
from bot.store import SqliteStore, Store
from bot.store.azure import AzureStore
from bot.store.azure.keyed import _setting_keys
from bot.store.base import lease_key

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep import generate

ROOT = Path(__file__).resolve().parents[1]
TENANT = "t1"
LIMIT = 50.0  # Teams: messages a second per app per tenant
OUTBOX_LEASE = 30.0
BUSY_SECONDS = 900  # a burner stops by itself after this, should the benchmark die without stopping it


@dataclass
class Run:
    rate: float
    throttled: int
    lost: int
    twice: int
    first_notice: float
    recovered: float | None = None  # seconds from the kill to the limit again


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def busy_cores(on: bool) -> Iterator[None]:
    """Every core kept busy by another process (a bounded spin), while the block runs."""
    spin = f"import time\nend = time.monotonic() + {BUSY_SECONDS}\nwhile time.monotonic() < end:\n    pass\n"
    burners = (
        [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(os.cpu_count() or 1)] if on else []
    )
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


class Processes:
    """The bot's processes of one run, their logs in `folder`; all stopped at the end."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.running: list[asyncio.subprocess.Process] = []

    async def start(self, name: str, *args: str) -> asyncio.subprocess.Process:
        with (self.folder / f"{name}.log").open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", *args, cwd=ROOT, env=self.env, stdout=log, stderr=log
            )
        self.running.append(process)
        return process

    async def serve(self, name: str, org: Path) -> None:
        port = free_port()
        process = await self.start(name, "serve", "--sandbox", str(org), "--port", str(port))
        for _ in range(600):  # bounded: 60 s for the bot to answer
            if process.returncode is not None:
                raise SystemExit(f"{name} exited: see {self.folder / (name + '.log')}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return
            await asyncio.sleep(0.1)
        raise SystemExit(f"{name} did not start")

    async def stop(self) -> None:
        for process in self.running:
            if process.returncode is None:
                process.terminate()
        for process in self.running:
            try:
                await asyncio.wait_for(process.wait(), timeout=30)
            except TimeoutError:
                process.kill()
                await process.wait()


async def leader_pid(store: Store) -> int | None:
    """The pid in the delivery lease's owner ("host:pid:id"), if a process of this host holds it."""
    if isinstance(store, AzureStore):  # a lease is an entity of its own there, not a JSON setting
        held: Any = await store._get("settings", *_setting_keys(lease_key(LEASE)))
    else:
        held = await store.get_setting(lease_key(LEASE))
    owner = str((held or {}).get("owner", ""))
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    return int(pid) if host == socket.gethostname() and pid.isdigit() else None


def recovery(accepted: list[float], killed: float) -> float | None:
    """Seconds from the kill until some one-second window holds 90% of the limit again."""
    after = [t for t in accepted if t >= killed]
    need = int(LIMIT * 0.9)
    for i in range(len(after) - need + 1):
        if after[i + need - 1] - after[i] <= 1.0:
            return after[i + need - 1] - killed
    return None


async def watch(
    connector: FakeConnector, people: int, store: Store, processes: Processes, *, kill: bool
) -> float | None:
    """Wait (bounded) until every person is told; with `kill`, SIGKILL the leader a third of the way in."""
    killed: float | None = None
    bound = OUTBOX_LEASE * 2 + people / 10  # a stuck run ends the benchmark
    for _ in range(int(bound / 0.05)):
        if connector.total >= people:
            break
        if kill and killed is None and connector.total >= people // 3:
            pid = await leader_pid(store)
            ours = {p.pid for p in processes.running if p.returncode is None}
            if pid in ours:
                os.kill(pid, signal.SIGKILL)
                killed = time.monotonic()
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # anything sent twice would arrive now
    return recovery(connector.accepted_at, killed) if killed is not None else None


async def run(topology: str, store_url: str, store: Store, people: int, folder: Path, *, kill: bool) -> Run:
    org = folder / "org.json"
    broken = generate(org, people, people)  # every person affected
    connector = FakeConnector()
    await connector.start()
    for n, aad in enumerate(broken):
        await store.save_reference(TENANT, aad, connector.reference(f"a:chat-{n}"))
    # The figures in the README are the delivery leader's (OUTBOX_LEADER, the app's default):
    # `OUTBOX_LEADER=false python bench/topology.py` measures the processes pacing themselves instead.
    env = {
        **os.environ,
        "STORE_URL": store_url,
        "OUTBOX_LEASE_SECONDS": str(OUTBOX_LEASE),
        "OUTBOX_LEADER": os.environ.get("OUTBOX_LEADER", "true"),
    }
    for name in ("MicrosoftAppId", "SWEEP_INTERVAL_MINUTES"):
        env.pop(name, None)
    processes = Processes(folder, env)
    sweep = ("sweep", "--fixture", str(org), "--json", "--deliver-for", "600")
    try:
        if topology in ("serve", "full"):
            await processes.serve("serve-1", org)
        if topology == "full":
            await processes.serve("serve-2", org)
            await processes.start("deliver", "deliver", "--sandbox", str(org), "--every", "1")
        started = time.monotonic()
        await processes.start("sweep-1", *sweep)
        if topology == "full":
            await processes.start("sweep-2", *sweep)
        recovered = await watch(connector, people, store, processes, kill=kill)
    finally:
        await processes.stop()
        await connector.close()
    times = connector.accepted_at
    counts = [len(connector.delivered.get(f"a:chat-{n}", [])) for n in range(people)]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return Run(
        rate=(len(times) - 1) / span if span else 0.0,
        throttled=connector.throttled,
        lost=sum(1 for c in counts if c == 0),
        twice=sum(1 for c in counts if c > 1),
        first_notice=times[0] - started if times else float("nan"),
        recovered=recovered,
    )


async def first_notice(users: int, folder: Path, kind: str) -> None:
    """A sweep alone over `users` users with mailboxes, a tenth of them affected: its first notice."""
    org = folder / f"big-{kind}.json"
    broken = generate(org, users, max(1, users // 10))
    connector = FakeConnector()
    await connector.start()
    with contextlib.ExitStack() as stack:
        if kind == "sqlite":
            url = f"sqlite:///{folder / 'big.sqlite3'}"
            store: Store = SqliteStore(str(folder / "big.sqlite3"))
        else:
            azurite = stack.enter_context(start_azurite())
            url = azurite.connection_string
            store = AzureStore(url)
        for n, aad in enumerate(broken):
            await store.save_reference(TENANT, aad, connector.reference(f"a:chat-{n}"))
        await store.close()
        processes = Processes(folder, {**os.environ, "STORE_URL": url})
        started = time.monotonic()
        try:
            await processes.start(f"big-sweep-{kind}", "sweep", "--fixture", str(org), "--deliver-for", "5")
            for _ in range(1200):  # bounded: 60 s
                if connector.accepted_at:
                    break
                await asyncio.sleep(0.05)
        finally:
            await processes.stop()
            await connector.close()
    seconds = connector.accepted_at[0] - started if connector.accepted_at else float("nan")
    print(f"== first notice: {users} users with mailboxes, {len(broken)} affected, {kind}")
    print(f"  from the sweep's start to the first notice: {seconds:.2f} s (goal < 2 s)", flush=True)


def report(topology: str, result: Run, kill: bool) -> None:
    line = (
        f"  {topology:6} {result.rate:5.1f}/s ({result.rate / LIMIT:4.0%}), {result.throttled} 429s, "
        f"{result.lost} lost, {result.twice} twice, first notice {result.first_notice:4.2f} s"
    )
    if kill:
        lease = leader_seconds(OUTBOX_LEASE)
        back = f"{result.recovered:.1f} s" if result.recovered is not None else "not reached"
        line += (
            f"; after SIGKILL of the leader: at the limit again in {back} "
            f"(leader lease {lease:.0f} s, outbox lease {OUTBOX_LEASE:.0f} s)"
        )
    print(line, flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--stores", nargs="+", choices=["sqlite", "azure"], default=["sqlite", "azure"])
    parser.add_argument("--topologies", nargs="+", choices=["alone", "serve", "full"], default=None)
    parser.add_argument("--busy", action="store_true", help="keep every core busy with another process")
    parser.add_argument("--kill", action="store_true", help="SIGKILL the delivery leader a third of the way")
    parser.add_argument("--first-notice", type=int, default=0, metavar="USERS")
    args = parser.parse_args()
    topologies = args.topologies or (["serve", "full"] if args.kill else ["alone", "serve", "full"])
    with tempfile.TemporaryDirectory(prefix="topology-") as tmp, busy_cores(args.busy):
        folder = Path(tmp)
        if args.first_notice:
            for kind in args.stores:
                await first_notice(args.first_notice, folder, kind)
            return
        for kind in args.stores:
            busy = f", every core busy ({os.cpu_count()} spinning processes)" if args.busy else ""
            print(f"== {kind}: {args.people} notices, Teams limit {LIMIT:.0f}/s{busy}", flush=True)
            for topology in topologies:
                run_folder = folder / f"{kind}-{topology}"
                run_folder.mkdir()
                if kind == "sqlite":
                    path = run_folder / "store.sqlite3"
                    store: Store = SqliteStore(str(path))
                    result = await run(
                        topology, f"sqlite:///{path}", store, args.people, run_folder, kill=args.kill
                    )
                    await store.close()
                else:
                    # The CLI uses the default table and queue names: a fresh Azurite per run.
                    with start_azurite() as azurite:
                        store = AzureStore(azurite.connection_string)
                        url = azurite.connection_string
                        result = await run(topology, url, store, args.people, run_folder, kill=args.kill)
                        await store.close()
                report(topology, result, args.kill)


if __name__ == "__main__":
    asyncio.run(main())
