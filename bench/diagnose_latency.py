"""How close each diagnosis path gets to the floor its round trips set.

The sandbox adds a fixed latency L to every request; each diagnosis runs through the real clients over
loopback HTTP. Per path, prints (a) requests per diagnosis, (b) sequential round trips on the critical
path, (c) wall time / (round trips x L). Goals (issue 13): 2 round trips for a record given by id with
the person's Entra id known (every pick and Re-check in Teams), at most 3 on every other path; ratio <= 1.15.

    python bench/diagnose_latency.py [--latency-ms 150] [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.investigation import Choice, Investigator, UserCache
from bot.sandbox import Fault, SandboxConfig, local_org
from bot.sandbox.metrics import RequestTimeline

ALEX = "00000000-0000-0000-0000-0000000000020"
ALEX_EMAIL = "alexw@example.com"
RECORD = "c3000000-0000-4000-8000-000000000001"  # owner-only appointment: every round trip is needed


@dataclass(frozen=True)
class Path:
    name: str
    run: Callable[[Investigator], Awaitable[object]]
    fresh_cache: bool = False  # a new user cache before each run (the cold email path)


PATHS = (
    Path("record by id, Entra id (pick, Re-check)", lambda i: i.run(ALEX, RECORD, reader=ALEX)),
    Path("record by words, Entra id", lambda i: i.run(ALEX, "quarterly review")),
    Path("question naming a recent record", lambda i: i.answer(ALEX, subject_words=["quartely", "review"])),
    Path("mailbox check", lambda i: i.run(ALEX)),
    Path("record by id, email, cold", lambda i: i.run(ALEX_EMAIL, RECORD), fresh_cache=True),
    Path("record by id, email, cached", lambda i: i.run(ALEX_EMAIL, RECORD)),
)


async def measure(path: Path, latency: float, runs: int) -> tuple[int, list[int], list[float]]:
    timeline = RequestTimeline()
    config = SandboxConfig(faults=[Fault(route="*", latency=latency)])
    async with local_org(config=config, event_hooks=timeline.hooks()) as local:
        investigator = Investigator(local.clients.dataverse, local.clients.graph, user_cache=UserCache())
        await path.run(investigator)  # opens connections (and fills the cache where the path keeps it)
        depths: list[int] = []
        ratios: list[float] = []
        requests = 0
        for _ in range(runs):
            if path.fresh_cache:  # same clients (connections stay open), nothing remembered
                investigator = Investigator(
                    local.clients.dataverse, local.clients.graph, user_cache=UserCache()
                )
            timeline.clear()
            started = time.perf_counter()
            answer = await path.run(investigator)
            wall = time.perf_counter() - started
            assert not isinstance(answer, Choice), path.name
            requests = len(timeline.spans)
            depth = timeline.depth()
            depths.append(depth)
            ratios.append(wall / (depth * latency))
    return requests, depths, ratios


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    print(f"latency L = {args.latency_ms:g} ms per request, {args.runs} diagnoses per path")
    for path in PATHS:
        requests, depths, ratios = await measure(path, latency, args.runs)
        print(
            f"{path.name:42} requests {requests:2}, round trips max {max(depths)}, "
            f"wall/(round trips x L) median {statistics.median(ratios):.3f} max {max(ratios):.3f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
