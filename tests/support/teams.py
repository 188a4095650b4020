"""Drive whole Teams turns over HTTP: the bot's app on loopback and a fake Bot Connector that records replies."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from aiohttp import web

from bot.app import BOT, create_app
from bot.config import Settings
from bot.sandbox import LocalOrg
from bot.sandbox.connector import FakeConnector as Connector
from bot.store import SqliteStore, Store
from tests.support.org import ADELE, ALEX, MEGAN

TENANT = "00000000-0000-0000-0000-0000000000001"
BOT_ID = "00000000-0000-0000-0000-00000000000011"
_ids = itertools.count(1)
NAMES = {ALEX: "Alex Wilber", MEGAN: "Megan Bowen", ADELE: "Adele Vance"}


@dataclass
class Teams:
    """Sends activities to the bot the way Teams does."""

    http: httpx.AsyncClient
    connector: Connector
    app: web.Application | None = None
    store: Store | None = None
    conversation: str = "a:personal-chat-1"

    async def settle(self) -> None:
        """Wait until the bot's background deliveries are done."""
        assert self.app is not None
        await self.app[BOT].helpdesk.settle()

    def activity(
        self, kind: str = "message", *, user: str | None, display_name: str = "Alex Wilber", **extra: Any
    ) -> dict[str, Any]:
        sender: dict[str, Any] = {"id": f"29:{user or 'anonymous'}", "name": display_name}
        if user is not None:
            sender["aadObjectId"] = user
        return {
            "type": kind,
            "id": f"activity-{next(_ids)}",
            "channelId": "msteams",
            "serviceUrl": self.connector.url,
            "from": sender,
            "recipient": {"id": BOT_ID, "name": "Sync Doctor"},
            "conversation": {"id": self.conversation, "conversationType": "personal", "tenantId": TENANT},
            "channelData": {"tenant": {"id": TENANT}},
            **extra,
        }

    async def send(self, activity: dict[str, Any]) -> httpx.Response:
        return await self.http.post("/api/messages", json=activity)

    async def say(self, text: str, *, user: str | None, **extra: Any) -> httpx.Response:
        return await self.send(self.activity(user=user, text=text, **extra))

    async def press(
        self, verb: str, data: dict[str, Any], *, user: str | None, display_name: str | None = None
    ) -> httpx.Response:
        value = {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"}
        name = display_name or NAMES.get(user or "", "Alex Wilber")
        return await self.send(
            self.activity("invoke", user=user, display_name=name, name="adaptiveCard/action", value=value)
        )


@asynccontextmanager
async def running_connector() -> AsyncIterator[Connector]:
    connector = Connector.unlimited()
    await connector.start()
    try:
        yield connector
    finally:
        await connector.close()


@asynccontextmanager
async def running_bot(
    local: LocalOrg,
    settings: Settings | None = None,
    store: Store | None = None,
    connector: Connector | None = None,
) -> AsyncIterator[Teams]:
    """The bot's app on loopback, with a fake connector (a fresh one unless `connector` is given)."""
    async with AsyncExitStack() as stack:
        if connector is None:
            connector = await stack.enter_async_context(running_connector())
        store = store or SqliteStore(":memory:")
        app = create_app(settings or Settings(), clients=local.clients, store=store, delivery_interval=0.2)
        bot_runner = web.AppRunner(app)
        await bot_runner.setup()
        await web.TCPSite(bot_runner, "127.0.0.1", 0).start()
        stack.push_async_callback(bot_runner.cleanup)
        bot_url = f"http://127.0.0.1:{bot_runner.addresses[0][1]}"
        async with httpx.AsyncClient(base_url=bot_url, timeout=30) as http:
            yield Teams(http=http, connector=connector, app=app, store=store)
