"""The bot process of tests/test_fuzz.py, as `serve` runs it (one event loop, no access log), with a watch
on its loop and test-only routes that report what it logged and how long its loop went without a turn."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler
from botframework.connector.auth import AuthenticationConstants, ChannelValidation

from bot.app import create_app
from bot.clients.auth import StaticTokenProvider
from bot.clients.factory import clients_for
from bot.config import Settings
from bot.store import SqliteStore
from tests.support.org import ALEX
from tests.support.timing import LoopWatch
from tests.support.tokens import APP_ID

# The answer to every request carries "first,last": the process's log line numbers from when it began to
# handle the request to when it answered (tests/test_fuzz.py reads the lines only when there are some).
LOG_HEADER = "X-Fuzz-Log-Lines"


def serve_for_fuzz(sandbox_url: str, token: str, openid_url: str, ready: str) -> None:
    """The child process: two instances of the bot on one event loop, without MicrosoftAppId (every
    activity reaches the envelope check and the turn) and with it (every token is checked, against the
    local keys). Test-only routes on the first report the process's log records and its loop's watch."""
    ChannelValidation.open_id_metadata_endpoint = openid_url
    AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL = openid_url
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logging.getLogger().addHandler(Keep(logging.INFO))
    logging.getLogger().setLevel(logging.INFO)  # what `serve` logs

    @web.middleware
    async def lines_logged(request: web.Request, handler: Handler) -> web.StreamResponse:
        first = len(records)
        try:
            response = await handler(request)
        except web.HTTPException as refused:
            refused.headers[LOG_HEADER] = f"{first},{len(records)}"
            raise
        response.headers[LOG_HEADER] = f"{first},{len(records)}"
        return response

    async def serve() -> None:
        watch = LoopWatch().start()
        stop = asyncio.Event()
        clients = clients_for(sandbox_url, sandbox_url, StaticTokenProvider(token))
        store = SqliteStore(":memory:")

        async def log(request: web.Request) -> web.Response:
            lines = [
                {
                    "logger": r.name,
                    "level": r.levelno,
                    "message": r.getMessage()[:300],
                    "traceback": r.exc_info is not None or "Traceback (most recent" in r.getMessage(),
                }
                for r in records[int(request.query["since"]) :]
            ]
            return web.json_response({"count": len(records), "lines": lines})

        async def watched(request: web.Request) -> web.Response:
            names = ("cpu_stall", "cpu_stall_with_gc", "gc_pause", "wall_stall", "ticks")
            return web.json_response({name: getattr(watch, name) for name in names})

        async def end(request: web.Request) -> web.Response:
            stop.set()
            return web.json_response({})

        runners, urls = [], []
        for app_id in ("", APP_ID):
            config = Settings(
                MicrosoftAppId=app_id,
                MicrosoftAppPassword="x" if app_id else None,
                HELPDESK_AGENTS=ALEX,  # the agents' paths (ticket buttons, "diagnose someone") too
                DIAGNOSIS_BUDGET_SECONDS=5,
            )
            app = create_app(config, clients=clients, store=store, deliver=False)
            app.middlewares.insert(0, lines_logged)
            if not app_id:
                app.router.add_get("/_fuzz/log", log)
                app.router.add_get("/_fuzz/watch", watched)
                app.router.add_post("/_fuzz/stop", end)
            runner = web.AppRunner(app, access_log=None)  # as `serve` runs it
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            runners.append(runner)
            urls.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
        _announce(ready, urls)
        await stop.wait()
        await watch.stop()
        for runner in runners:
            await runner.cleanup()
        await clients.aclose()
        await store.close()

    asyncio.run(serve())


def _announce(ready: str, urls: list[str]) -> None:
    Path(ready).write_text(json.dumps(urls))
