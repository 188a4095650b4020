"""The sandbox: Dataverse Web API, Microsoft Graph and an Entra token endpoint, over loopback HTTP(S).

It speaks the documented wire formats closely enough that the production clients can't tell it from
the real services (design.md section 6), and it can misbehave on purpose: per-route latency, 429 with
Retry-After, 5xx, and hangs (see `Fault`).

This module holds the state and the middleware every request passes (counting, faults, authentication);
the routes are in `dataverse` (reads), `writes`, `graph` and `entra`. Server-side sync runs in cycles
(`sync`): every `"$sync_cycle_seconds"` when the fixture says so, and at once on `POST /$sandbox/sync` from
loopback (or `Sandbox.sync.run()` in-process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from bot.errors import FixtureError
from bot.sandbox.config import Fault, SandboxConfig, inject_faults
from bot.sandbox.dataverse import DataverseRoutes
from bot.sandbox.entra import EntraRoutes
from bot.sandbox.graph import GraphRoutes
from bot.sandbox.org import Org
from bot.sandbox.sync import SyncCycle
from bot.sandbox.wire import APP_USER_ID, area, error
from bot.sandbox.writes import DataverseWrites

__all__ = ["APP_USER_ID", "Fault", "RunningSandbox", "Sandbox", "SandboxConfig", "start_sandbox"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Sandbox:
    """The simulator's state: the org, issued tokens, and what was asked of it."""

    def __init__(self, org: Org, config: SandboxConfig | None = None) -> None:
        self.org = org
        self.config = config or SandboxConfig()
        self.tokens: set[str] = set(self.config.static_tokens)
        self.counts: Counter[str] = Counter()
        self.sync = SyncCycle(org, self.config.clock)

    @property
    def sync_every(self) -> float | None:
        """Seconds between timed sync cycles (None: none run by themselves)."""
        every = self.config.sync_every if self.config.sync_every is not None else self.org.sync_cycle_seconds
        return every or None

    def revoke_tokens(self) -> None:
        """Forget issued tokens (not static ones): the next call with an old token gets a 401."""
        self.tokens = set(self.config.static_tokens)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        DataverseRoutes(self).register(app.router)
        DataverseWrites(self).register(app.router)
        GraphRoutes(self).register(app.router)
        EntraRoutes(self).register(app.router)
        app.router.add_get("/healthz", self.health)
        app.router.add_post("/$sandbox/sync", self.run_sync)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count the request, inject faults, then check the bearer token on Dataverse and Graph."""
        where = area(request.path)
        self.counts[where] += 1
        answer = await inject_faults(self.config.faults, request.path)
        if answer is None:
            answer = self._unauthenticated(where, request)
        return answer if answer is not None else await handler(request)

    def _unauthenticated(self, where: str, request: web.Request) -> web.Response | None:
        """A 401 when a Dataverse or Graph request lacks a valid token (None: it may go on)."""
        if where not in ("dataverse", "graph") or not self.config.require_auth:
            return None
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        if token in self.tokens:
            return None
        code = "InvalidAuthenticationToken" if where == "graph" else "0x80072560"
        return error(
            401, code, "Access token is missing, expired or invalid.", {"WWW-Authenticate": "Bearer"}
        )

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "org": self.org.source})

    async def run_sync(self, request: web.Request) -> web.Response:
        """One sync cycle now, for a person or a test on this machine (no token: loopback only)."""
        if request.remote not in ("127.0.0.1", "::1"):
            return error(403, "Forbidden", "The sandbox runs a sync cycle on request from loopback only.")
        return web.json_response((await self.sync.run_now()).to_dict())


@dataclass
class RunningSandbox:
    """A started sandbox. `url` is its base URL (use it as DATAVERSE_URL, GRAPH_URL and authority host)."""

    sandbox: Sandbox
    runner: web.AppRunner
    url: str
    cycles: asyncio.Task[None] | None = field(default=None, repr=False)  # the timed sync cycles

    async def close(self) -> None:
        if self.cycles is not None:
            self.cycles.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.cycles
        await self.runner.cleanup()


async def start_sandbox(
    org: Org,
    config: SandboxConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
) -> RunningSandbox:
    """Start the sandbox on `host:port` (0: a free port) and return where it listens."""
    config = config or SandboxConfig()
    try:
        config.faults.extend(Fault.parse(spec) for spec in org.fault_specs)
    except (TypeError, ValueError) as exc:
        raise FixtureError(f"{org.source}: $faults: {exc}") from exc
    sandbox = Sandbox(org, config)
    # A short shutdown: a fault that hangs a handler must not hold up closing the sandbox.
    runner = web.AppRunner(sandbox.app(), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    bound_port = runner.addresses[0][1]
    scheme = "https" if ssl_context else "http"
    every = sandbox.sync_every
    cycles = asyncio.create_task(sandbox.sync.every(every), name="sandbox sync") if every else None
    return RunningSandbox(
        sandbox=sandbox, runner=runner, url=f"{scheme}://{host}:{bound_port}", cycles=cycles
    )
