"""How close a diagnosis gets to the floor its round trips set.

The sandbox adds a fixed latency L to every request; each diagnosis runs through the real clients over
loopback HTTP. Prints (a) sequential round trips on the critical path, (b) wall time / (round trips x L).
Goals (issue 2): round trips <= 3, ratio <= 1.15.

    python bench/diagnose_latency.py [--latency-ms 50] [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from bot.investigation import Investigator, UserCache
from bot.sandbox import Fault, SandboxConfig, local_org
from bot.sandbox.metrics import RequestTimeline

ALEX = "00000000-0000-0000-0000-0000000000020"
RECORD = "c3000000-0000-4000-8000-000000000001"  # owner-only appointment: every round trip is needed


async def measure(latency: float, runs: int, warm: bool) -> tuple[list[int], list[float], int]:
    timeline = RequestTimeline()
    config = SandboxConfig(faults=[Fault(route="*", latency=latency)])
    depths: list[int] = []
    ratios: list[float] = []
    async with local_org(config=config, event_hooks=timeline.hooks()) as local:
        cache = UserCache() if warm else None
        investigator = Investigator(local.clients.dataverse, local.clients.graph, user_cache=cache)
        await investigator.run(ALEX, RECORD)  # opens connections, warms the cache when asked
        requests = len(timeline.spans)
        for _ in range(runs):
            timeline.clear()
            started = time.perf_counter()
            report = await investigator.run(ALEX, RECORD)
            wall = time.perf_counter() - started
            assert report.causes == ["outside-sync-filter"], report.causes
            depth = timeline.depth()
            depths.append(depth)
            ratios.append(wall / (depth * latency))
    return depths, ratios, requests


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    print(f"latency L = {args.latency_ms:g} ms per request, {args.runs} diagnoses each")
    for warm in (False, True):
        depths, ratios, requests = await measure(latency, args.runs, warm)
        label = "warm user cache" if warm else "cold (no cache) "
        print(
            f"{label}: requests/diagnosis {requests}, round trips max {max(depths)}, "
            f"wall/(round trips x L) median {statistics.median(ratios):.3f} max {max(ratios):.3f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
