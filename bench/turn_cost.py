"""What a full diagnosis turn costs compared with an echo turn, and the bot's memory.

Both bots run as their own processes on loopback, with the same SDK (CloudAdapter on aiohttp), answering
through one loopback fake Bot Connector. Each Sync Doctor turn asks about a named appointment, so it is
a full diagnosis: mailbox, the user's recent appointments, the record's filters run as the user, Graph.
Sync Doctor is measured twice, with no injected latency: with the sandbox org in another process (as
Dataverse and Graph are remote in production), and as `serve --sandbox` runs it (the org in-process, so
the simulator's own work is counted too).

Prints throughput of both, their ratio (goal: a Sync Doctor turn costs at most 2x an echo turn), idle RSS
after start (goal <= 150 MB) and RSS growth over the soak (goal < 5%).

    python bench/turn_cost.py [--turns 1000] [--soak 10000] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
ALEX = "00000000-0000-0000-0000-0000000000020"
_ids = itertools.count()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def connector() -> tuple[web.AppRunner, str]:
    async def post(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"id": f"r{next(_ids)}"})

    app = web.Application()
    app.router.add_post("/v3/conversations/{c}/activities", post)
    app.router.add_post("/v3/conversations/{c}/activities/{a}", post)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def activity(service_url: str, text: str) -> dict[str, object]:
    return {
        "type": "message",
        "id": f"a{next(_ids)}",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "text": text,
        "from": {"id": "29:alex", "name": "Alex Wilber", "aadObjectId": ALEX},
        "recipient": {"id": "28:bot", "name": "Sync Doctor"},
        "conversation": {"id": "a:bench", "conversationType": "personal"},
        "channelData": {"tenant": {"id": "00000000-0000-0000-0000-0000000000001"}},
    }


def start(command: list[str], port: int) -> subprocess.Popen[bytes]:
    store = Path(tempfile.mkdtemp(prefix="turn-cost-")) / "store.sqlite3"  # each bot its own store
    env = {**os.environ, "STORE_URL": f"sqlite:///{store}"}
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{command} did not start")


async def drive(port: int, service_url: str, text: str, turns: int, concurrency: int) -> float:
    """Send `turns` message activities, `concurrency` at a time; return turns per second."""
    queue = iter(range(turns))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

        async def worker() -> None:
            for _ in queue:
                response = await client.post("/api/messages", json=activity(service_url, text))
                assert response.status_code in (200, 201), response.status_code

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return turns / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--soak", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    runner, service_url = await connector()
    echo_port, bot_port, remote_port, org_port = free_port(), free_port(), free_port(), free_port()
    org_url = f"http://127.0.0.1:{org_port}"
    echo = start([sys.executable, "bench/echo_bot.py", str(echo_port)], echo_port)
    org = start([sys.executable, "-m", "bot", "sandbox", "--port", str(org_port)], org_port)
    remote = start(
        [sys.executable, "bench/bot_with_remote_org.py", str(remote_port), org_url, "sandbox-token"],
        remote_port,
    )
    bot = start([sys.executable, "-m", "bot", "serve", "--sandbox", "--port", str(bot_port)], bot_port)
    try:
        idle = rss_mb(bot.pid)
        question = "Quarterly review isn't on my calendar"
        for port, text in ((echo_port, "hello"), (remote_port, question), (bot_port, question)):
            await drive(port, service_url, text, 50, args.concurrency)  # warm up
        echo_rate = await drive(echo_port, service_url, "hello", args.turns, args.concurrency)
        remote_rate = await drive(remote_port, service_url, question, args.turns, args.concurrency)
        bot_rate = await drive(bot_port, service_url, question, args.turns, args.concurrency)
        print(f"echo bot:                          {echo_rate:7.1f} turns/s")
        print(f"Sync Doctor, org in another process: {remote_rate:5.1f} full diagnosis turns/s")
        print(f"Sync Doctor, serve --sandbox:        {bot_rate:5.1f} full diagnosis turns/s")
        print(
            f"cost of a Sync Doctor turn / an echo turn: {echo_rate / remote_rate:.2f}x with the org remote, "
            f"{echo_rate / bot_rate:.2f}x with it in-process (goal <= 2x)"
        )
        print(f"idle RSS after start (serve --sandbox): {idle:.0f} MB (goal <= 150 MB)")
        before = rss_mb(bot.pid)
        await drive(bot_port, service_url, question, args.soak, args.concurrency)
        after = rss_mb(bot.pid)
        growth = (after - before) / before * 100
        print(
            f"RSS over {args.soak} more turns: {before:.0f} MB -> {after:.0f} MB ({growth:+.1f}%, goal < 5%)"
        )
    finally:
        for process in (bot, remote, org, echo):
            process.terminate()
            process.wait(timeout=20)
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
