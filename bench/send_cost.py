"""The CPU one proactive send costs, through botbuilder's own adapter and through the one the bot uses.

Both are the real CloudAdapter sending a sweep's notice card (`Connector.send`) to a loopback Bot Connector
in the same process, its own CPU counted too, several sends at once. botbuilder's
`ConfigurationBotFrameworkAuthentication` makes new credentials, a new connector client and a new
user-token client for every send; `connector_adapter` keeps them (`bot/notify/outbox/adapter.py`). Without
an app id no token is fetched: with an app password, botbuilder's would also ask Entra for a new token for
every send (`tests/notify/test_adapter.py` counts them), which this doesn't measure.

    python bench/send_cost.py [--sends 600] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from botbuilder.core import CardFactory, MessageFactory
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication

from bot.config import Settings
from bot.notify.outbox import Connector, SendLimiter, connector_adapter
from bot.sandbox.connector import FakeConnector
from cards.common import to_dict
from cards.notice import build_problem_card

FINDING = {
    "id": "act-not-server-side-sync",
    "status": "fail",
    "title": "Appointments, Contacts, and Tasks don't synchronize through Server-Side Synchronization",
    "detail": "The mailbox's Appointments, Contacts, and Tasks setting is not Server-Side Synchronization.",
    "steps": ["Open the mailbox record.", "Set Appointments, Contacts, and Tasks to Server-Side Sync."],
}
AT_ONCE = 8


def cpu() -> float:
    times = os.times()
    return times.user + times.system


async def cost(adapter: CloudAdapter, sends: int) -> tuple[float, float]:
    """(ms of this process's CPU per send, sends a second), the loopback connector's work included."""
    teams = FakeConnector.unlimited()
    await teams.start()
    connector = Connector(adapter, limiter=SendLimiter(per_tenant=1e6, per_conversation=1e6))
    slots = asyncio.Semaphore(AT_ONCE)

    async def send(i: int) -> None:
        async with slots:
            card = CardFactory.adaptive_card(to_dict(build_problem_card(FINDING, user=f"user-{i}")))
            await connector.send(
                teams.reference(f"a:chat-{i}", user=f"user-{i}"), MessageFactory.attachment(card)
            )

    try:
        await send(0)  # first-send work (imports, the thread pool) out of the count
        started, wall = cpu(), time.monotonic()
        await asyncio.gather(*(send(i) for i in range(1, sends + 1)))
        spent, took = cpu() - started, time.monotonic() - wall
        assert teams.total == sends + 1
        return 1000 * spent / sends, sends / took
    finally:
        await teams.close()


def botbuilders() -> CloudAdapter:
    class Config:
        APP_ID = ""
        APP_PASSWORD = ""
        APP_TYPE = "MultiTenant"
        APP_TENANTID = ""

    return CloudAdapter(ConfigurationBotFrameworkAuthentication(Config()))


async def main(sends: int, repeat: int) -> None:
    for name, make in (
        ("botbuilder's adapter", botbuilders),
        ("connector_adapter", lambda: connector_adapter(Settings())),
    ):
        runs = [await cost(make(), sends) for _ in range(repeat)]
        ms = statistics.median(r[0] for r in runs)
        rate = statistics.median(r[1] for r in runs)
        print(f"  {name:22s} {ms:5.2f} ms CPU a send (median of {repeat}), {rate:4.0f} sends/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"== {args.sends} proactive sends, {AT_ONCE} at once, loopback connector in-process")
    asyncio.run(main(args.sends, args.repeat))
