"""The proactive sweep at scale: a generated org of 10,000 mailboxes, 1,000 of them broken.

Runs `python -m bot sweep --fixture ORG` (the real CLI: sandbox in its process, real clients over
loopback HTTP) against a loopback Bot Connector that keeps Teams' limits (7/s per conversation, 50/s
per app per tenant, 429 + Retry-After beyond). Every broken user has chatted with the bot before (a
stored conversation reference). Prints (a) Dataverse requests vs pages (goal <= pages + 3), (b) the
delivery rate vs the 50/s the connector permits (goal >= 90%), (c) lost and duplicate messages (goal
0 and 0), (d) the sweep process's peak RSS (it holds the simulated org too).

    python bench/sweep.py [--users 10000] [--broken 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from bot.sandbox import SAMPLE_ORG
from bot.sandbox.connector import FakeConnector
from bot.store import SqliteStore

ROOT = Path(__file__).resolve().parents[1]


def generate(path: Path, users: int, broken: int) -> list[str]:
    data = json.loads(SAMPLE_ORG.read_text())
    template_user = next(u for u in data["systemusers"] if u["fullname"] == "Alex Wilber")
    template_mailbox = next(
        m for m in data["mailboxes"] if m["_regardingobjectid_value"] == template_user["systemuserid"]
    )
    data["systemusers"], data["mailboxes"] = [], []
    broken_ids = []
    for n in range(users):
        sid, aad, mid = (f"{p}-0000-4000-8000-{n:012d}" for p in ("a4000000", "0d000000", "b4000000"))
        data["systemusers"].append(
            {
                **template_user,
                "systemuserid": sid,
                "azureactivedirectoryobjectid": aad,
                "fullname": f"User {n}",
                "internalemailaddress": f"u{n}@example.com",
                "_defaultmailbox_value": mid,
            }
        )
        mailbox = {
            **template_mailbox,
            "mailboxid": mid,
            "_regardingobjectid_value": sid,
            "emailaddress": f"u{n}@example.com",
        }
        if n % (users // broken) == 0 and len(broken_ids) < broken:
            mailbox["actdeliverymethod"], mailbox["actstatus"] = 2, 0
            broken_ids.append(aad)
        data["mailboxes"].append(mailbox)
    for table in (
        "appointments",
        "recurringappointmentmasters",
        "activityparties",
        "userqueries",
        "tasks",
        "contacts",
        "teammemberships",
    ):
        data[table] = []
    data["graph"] = {"users": {}}
    path.write_text(json.dumps(data))
    return broken_ids


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--broken", type=int, default=1_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    org = folder / "org.json"
    broken = generate(org, args.users, args.broken)
    connector = FakeConnector()
    await connector.start()
    store = SqliteStore(str(folder / "store.sqlite3"))
    for n, aad in enumerate(broken):
        await store.save_reference("t1", aad, connector.reference(f"a:chat-{n}"))
    await store.close()
    env = {**os.environ, "STORE_URL": f"sqlite:///{folder / 'store.sqlite3'}"}
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "sweep",
        "--fixture",
        str(org),
        "--json",
        "--deliver-for",
        "600",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    first_delivery: float | None = None
    while process.returncode is None:
        if first_delivery is None and connector.total:
            first_delivery = time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), timeout=0.05)
    out, err = await process.communicate()
    finished = time.perf_counter()
    if process.returncode != 0:
        raise SystemExit(err.decode())
    result = json.loads(out)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    times = connector.accepted_at
    delivery_seconds = times[-1] - times[0] if len(times) > 1 else float("nan")
    rate = (len(times) - 1) / delivery_seconds  # first to last message the connector accepted
    counts = [len(connector.delivered.get(f"a:chat-{n}", [])) for n in range(len(broken))]
    await connector.close()
    print(
        f"org: {args.users} users with mailboxes, {len(broken)} broken; sweep took {finished - started:.1f} s"
    )
    print(
        f"(a) Dataverse requests {result['dataverse_requests']} for {result['pages']} pages (goal <= pages + 3)"
    )
    print(
        f"(b) delivered {connector.total} in {delivery_seconds:.1f} s = {rate:.1f}/s of the 50/s permitted "
        f"({rate / 50:.0%}, goal >= 90%); 429s from the connector: {connector.throttled}"
    )
    print(
        f"(c) lost {sum(1 for c in counts if c == 0)}, duplicates {sum(c - 1 for c in counts if c > 1)} (goal 0 and 0)"
    )
    print(f"(d) peak RSS of the sweep process (sandbox org included): {peak_mb:.0f} MB")


if __name__ == "__main__":
    asyncio.run(main())
