"""Drive whole Teams turns over HTTP: the bot's app on loopback and a fake Bot Connector that records replies."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiohttp import web

from bot.app import BOT, create_app
from bot.config import Settings
from bot.sandbox import LocalOrg
from bot.store import SqliteStore, Store

TENANT = "00000000-0000-0000-0000-0000000000001"
BOT_ID = "00000000-0000-0000-0000-00000000000011"
_ids = itertools.count(1)
_PLAYGROUND = "00000000-0000-0000-0000-00000000000"
NAMES = {
    _PLAYGROUND + "20": "Alex Wilber",
    _PLAYGROUND + "21": "Megan Bowen",
    _PLAYGROUND + "22": "Adele Vance",
}


@dataclass
class Connector:
    """A loopback Bot Connector: records what the bot sends, as Teams would receive it."""

    url: str = ""
    sent: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)  # new conversations (channel threads)
    failures: list[int] = field(default_factory=list)  # statuses to answer before succeeding, in order

    def app(self) -> web.Application:
        async def post(request: web.Request) -> web.Response:
            if self.failures:
                status = self.failures.pop(0)
                return web.json_response(
                    {"error": {"code": "Throttled"}}, status=status, headers={"Retry-After": "0"}
                )
            body = await request.json()
            body["conversation_id"] = request.match_info["conversation"]
            self.sent.append(body)
            return web.json_response({"id": f"reply-{next(_ids)}"})

        async def create(request: web.Request) -> web.Response:
            if self.failures:
                status = self.failures.pop(0)
                return web.json_response(
                    {"error": {"code": "Throttled"}}, status=status, headers={"Retry-After": "0"}
                )
            body = await request.json()
            self.created.append(body)
            message = f"{next(_ids)}"
            channel = ((body.get("channelData") or {}).get("channel") or {}).get("id", "19:channel")
            return web.json_response({"id": f"{channel};messageid={message}", "activityId": message})

        async def put(request: web.Request) -> web.Response:
            self.updated.append(await request.json())
            return web.json_response({"id": request.match_info["activity"]})

        async def member(request: web.Request) -> web.Response:
            member_id = request.match_info["member"]
            return web.json_response(
                {"id": member_id, "name": "Member", "aadObjectId": member_id.removeprefix("29:")}
            )

        app = web.Application()
        app.router.add_get("/v3/conversations/{conversation}/members/{member}", member)
        app.router.add_post("/v3/conversations", create)
        app.router.add_post("/v3/conversations/{conversation}/activities", post)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", post)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", put)
        return app

    def cards(self) -> list[dict[str, Any]]:
        return [
            a["content"]
            for activity in self.sent
            for a in activity.get("attachments") or []
            if a.get("contentType") == "application/vnd.microsoft.card.adaptive"
        ]

    def texts(self) -> list[str]:
        return [a["text"] for a in self.sent if a.get("type") == "message" and a.get("text")]

    def types(self) -> list[str]:
        return [a.get("type", "") for a in self.sent]


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
    connector = Connector()
    runner = web.AppRunner(connector.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    connector.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield connector
    finally:
        await runner.cleanup()


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
