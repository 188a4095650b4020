"""A loopback Bot Connector that keeps Teams' documented limits (domain.md section 6), for tests and benchmarks.

It answers 429 with Retry-After when a conversation gets more than 7 messages in a second or the app
more than `per_tenant` in a second, records what it accepted per conversation, and can add latency or
hold requests open from the N-th on (to kill a sender mid-send). Only what it answered 2xx counts as delivered.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["FakeConnector"]


@dataclass
class FakeConnector:
    per_conversation: int = 7  # messages per second per conversation
    per_tenant: int = 50  # messages per second per app per tenant
    latency: float = 0.0
    hang_from: int | None = None  # hold the N-th request and every later one open until `release` is set
    delivered: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    throttled: int = 0
    accepted_at: list[float] = field(default_factory=list)  # monotonic time of each 2xx
    url: str = ""
    hanging: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    _seen: int = 0
    _recent: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _all: deque[float] = field(default_factory=deque)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.delivered.values())

    def _over_limit(self, conversation: str, now: float) -> bool:
        for window in (self._recent[conversation], self._all):
            while window and now - window[0] > 1.0:
                window.popleft()
        return len(self._recent[conversation]) >= self.per_conversation or len(self._all) >= self.per_tenant

    async def _post(self, request: web.Request) -> web.Response:
        conversation = request.match_info["conversation"]
        body = await request.json()
        now = time.monotonic()
        if self._over_limit(conversation, now):
            self.throttled += 1
            return web.json_response(
                {"error": {"code": "Throttled"}}, status=429, headers={"Retry-After": "1"}
            )
        self._recent[conversation].append(now)
        self._all.append(now)
        self._seen += 1
        if self.hang_from is not None and self._seen >= self.hang_from:
            self.hanging.set()
            await self.release.wait()
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499)  # the sender died waiting: Teams never accepted this one
        if self.latency:
            await asyncio.sleep(self.latency)
        self.delivered[conversation].append(body)
        self.accepted_at.append(time.monotonic())
        return web.json_response({"id": f"m{next(self._ids)}"})

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation}/activities", self._post)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._post)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def close(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()
