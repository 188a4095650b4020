"""A loopback Bot Connector (the Bot Framework REST API Teams answers), for tests and benchmarks.

It records what the bot sends as Teams would receive it: messages posted to conversations, new
conversations (channel threads, 1:1 chats) and updated activities (cards updated in place). It can keep
Teams' documented limits (domain.md section 6): 429 with Retry-After when a conversation gets more than
`per_conversation` messages in a second or the app more than `per_tenant`. It can answer given statuses
first (`failures`), add latency, or hold requests open from the N-th on (to kill a sender mid-send).
Only what it answered 2xx counts as delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["FakeConnector"]

UNLIMITED = 10**9


@dataclass
class FakeConnector:
    per_conversation: int = 7  # messages per second per conversation
    per_tenant: int = 50  # messages per second per app per tenant
    latency: float = 0.0
    hang_from: int | None = None  # hold the N-th request and every later one open until `release` is set
    # What the held requests get when released: None accepts them; a status (e.g. 503) refuses them all,
    # so none is accepted around the moment its sender's own timeout gives up on it (the at-least-once
    # window a real connector has too, which a test of "exactly once" must not depend on).
    release_status: int | None = None
    failures: list[int] = field(default_factory=list)  # statuses to answer before succeeding, in order
    sent: list[dict[str, Any]] = field(default_factory=list)  # posted activities, with "conversation_id"
    created: list[dict[str, Any]] = field(default_factory=list)  # conversation parameters, as posted
    updated: list[dict[str, Any]] = field(default_factory=list)  # activities put in place of earlier ones
    throttled: int = 0
    abandoned: int = 0  # held requests whose sender went away before the answer (never accepted)
    accepted_at: list[float] = field(default_factory=list)  # monotonic time of each 2xx
    url: str = ""
    hanging: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    admitted: int = 0  # requests let through the limits (held ones included)
    # Admitted requests not answered yet, and how many of them are held: when the two are equal, nothing
    # can be accepted until the release (a test that kills a sender waits for that, not for a moment).
    in_flight: int = 0
    holding: int = 0
    _recent: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _all: deque[float] = field(default_factory=deque)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None

    @classmethod
    def unlimited(cls) -> FakeConnector:
        """No rate limits: for tests about what is sent rather than how fast."""
        return cls(per_conversation=UNLIMITED, per_tenant=UNLIMITED)

    @property
    def delivered(self) -> dict[str, list[dict[str, Any]]]:
        """Accepted messages and new conversations' first messages, per conversation."""
        by_conversation: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for activity in self.sent:
            by_conversation[activity["conversation_id"]].append(activity)
        for params in self.created:
            if params.get("activity"):
                by_conversation[params["conversation_id"]].append(params["activity"])
        return by_conversation

    @property
    def total(self) -> int:
        return len(self.sent) + sum(1 for p in self.created if p.get("activity"))

    def reference(
        self, conversation_id: str, *, tenant: str | None = None, user: str | None = None
    ) -> dict[str, Any]:
        """A stored conversation reference for a 1:1 chat served by this connector, as the bot saves one."""
        reference: dict[str, Any] = {
            "conversation": {"id": conversation_id, "conversationType": "personal"},
            "serviceUrl": self.url,
            "channelId": "msteams",
            "bot": {"id": "28:bot"},
        }
        if tenant is not None:
            reference["conversation"]["tenantId"] = tenant
        if user is not None:
            reference["user"] = {"id": f"29:{user}", "aadObjectId": user}
        return reference

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

    def _over_limit(self, conversation: str, now: float) -> bool:
        for window in (self._recent[conversation], self._all):
            while window and now - window[0] > 1.0:
                window.popleft()
        return len(self._recent[conversation]) >= self.per_conversation or len(self._all) >= self.per_tenant

    async def _admit(self, request: web.Request, conversation: str) -> web.Response | None:
        """Apply failures, limits, holds and latency; None when the request may be accepted."""
        if self.failures:
            return web.json_response(
                {"error": {"code": "Throttled"}}, status=self.failures.pop(0), headers={"Retry-After": "0"}
            )
        now = time.monotonic()
        if self._over_limit(conversation, now):
            self.throttled += 1
            return web.json_response(
                {"error": {"code": "Throttled"}}, status=429, headers={"Retry-After": "1"}
            )
        self._recent[conversation].append(now)
        self._all.append(now)
        self.admitted += 1
        self.in_flight += 1
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1  # the caller records an accepted request before its next await

    async def _answer(self, request: web.Request) -> web.Response | None:
        if self.hang_from is not None and self.admitted >= self.hang_from:
            self.hanging.set()
            self.holding += 1
            try:
                while not self.release.is_set():
                    if request.transport is None or request.transport.is_closing():
                        break  # the sender gave up or died
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.release.wait(), timeout=0.05)
            finally:
                self.holding -= 1
            # One more turn of the event loop: a sender that died before the release has its connection's
            # end (already queued by the kernel) noticed now, so a dead sender's request is never accepted.
            await asyncio.sleep(0)
            if request.transport is None or request.transport.is_closing():
                self.abandoned += 1
                return web.Response(status=499)  # the sender died waiting: Teams never accepted this one
            if self.release_status is not None:
                return web.json_response(
                    {"error": {"code": "ServiceUnavailable"}}, status=self.release_status
                )
        if self.latency:
            await asyncio.sleep(self.latency)
        if request.transport is None or request.transport.is_closing():
            # The sender died while its request was on the way (a SIGKILL in a test): nobody can record
            # an answer now. Teams would have accepted it: that is the crash's at-least-once window, which
            # the exactly-once tests keep out of their count, as they keep held requests.
            self.abandoned += 1
            return web.Response(status=499)
        return None

    async def _post(self, request: web.Request) -> web.Response:
        conversation = request.match_info["conversation"]
        body = await request.json()
        refused = await self._admit(request, conversation)
        if refused is not None:
            return refused
        self.sent.append({**body, "conversation_id": conversation})
        self.accepted_at.append(time.monotonic())
        return web.json_response({"id": f"m{next(self._ids)}"})

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        channel = ((body.get("channelData") or {}).get("channel") or {}).get("id")
        if channel is None:  # a 1:1 chat with the first member
            member = ((body.get("members") or [{}])[0]).get("id", "user")
            channel = f"a:chat-with-{member}"
        refused = await self._admit(request, channel)
        if refused is not None:
            return refused
        message = f"{next(self._ids)}"
        conversation = f"{channel};messageid={message}" if body.get("activity") else channel
        self.created.append({**body, "conversation_id": conversation})
        self.accepted_at.append(time.monotonic())
        return web.json_response({"id": conversation, "activityId": message})

    async def _put(self, request: web.Request) -> web.Response:
        conversation = request.match_info["conversation"]
        body = await request.json()
        refused = await self._admit(request, conversation)
        if refused is not None:
            return refused
        self.updated.append({**body, "conversation_id": conversation})
        return web.json_response({"id": request.match_info["activity"]})

    async def _member(self, request: web.Request) -> web.Response:
        member_id = request.match_info["member"]
        return web.json_response(
            {"id": member_id, "name": "Member", "aadObjectId": member_id.removeprefix("29:")}
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v3/conversations/{conversation}/members/{member}", self._member)
        app.router.add_post("/v3/conversations", self._create)
        app.router.add_post("/v3/conversations/{conversation}/activities", self._post)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._post)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._put)
        return app

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def close(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()
