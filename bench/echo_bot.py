"""A minimal echo bot on the same SDK (botbuilder CloudAdapter on aiohttp): the baseline for turn_cost.py."""

from __future__ import annotations

import sys

from aiohttp import web
from botbuilder.core import ActivityHandler, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity


class Config:
    APP_ID = ""
    APP_PASSWORD = ""
    APP_TYPE = "MultiTenant"
    APP_TENANTID = ""


class Echo(ActivityHandler):
    async def on_message_activity(self, turn_context: TurnContext) -> None:
        await turn_context.send_activity(f"echo: {turn_context.activity.text}")


adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(Config()))
bot = Echo()


async def messages(request: web.Request) -> web.Response:
    activity = Activity().deserialize(await request.json())
    await adapter.process_activity(request.headers.get("Authorization", ""), activity, bot.on_turn)
    return web.Response(status=201)


app = web.Application()
app.router.add_post("/api/messages", messages)
app.router.add_get("/healthz", lambda request: web.json_response({"status": "ok"}))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
