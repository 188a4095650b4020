"""A token is fetched inside the deadline of the request that needs it: the provider sees how long is left,
and what the token took is taken off the request's own timeouts (httpx.MockTransport at the boundary)."""

from __future__ import annotations

import asyncio

import httpx

from bot.clients.auth import BearerAuth
from bot.clients.dataverse import DataverseClient
from bot.clients.http import RetryPolicy, deadline, time_left

ORG = "https://contoso.crm.example"


class SlowTokens:
    """A token provider that takes `seconds` and notes how long its caller said it had."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.time_left: list[float | None] = []

    async def token(self, scope: str, *, force_refresh: bool = False) -> str:
        self.time_left.append(time_left())
        await asyncio.sleep(self.seconds)
        return "token"

    async def aclose(self) -> None:
        return None


async def test_the_token_is_fetched_within_the_request_budget_and_shortens_its_timeouts() -> None:
    timeouts: list[dict[str, float]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        return httpx.Response(200, json={"value": []})

    tokens = SlowTokens(0.4)
    policy = RetryPolicy(budget=1.5, attempt_timeout=5.0)
    async with DataverseClient(
        ORG, auth=BearerAuth(tokens, f"{ORG}/.default"), transport=httpx.MockTransport(handler), policy=policy
    ) as dv:
        assert await dv.query("systemusers", {}) == []
    left = tokens.time_left[0]
    assert left is not None and 1.0 < left <= 1.5  # the request's budget, not "no limit"
    assert all(value <= 1.15 for value in timeouts[0].values())  # 1.5 s less the token's 0.4 s


async def test_an_outer_deadline_is_the_tokens_too() -> None:
    tokens = SlowTokens(0.0)
    handler = httpx.MockTransport(lambda _: httpx.Response(200, json={"value": []}))
    async with DataverseClient(
        ORG, auth=BearerAuth(tokens, f"{ORG}/.default"), transport=handler, policy=RetryPolicy(budget=10)
    ) as dv:
        with deadline(0.8):
            await dv.query("systemusers", {})
    left = tokens.time_left[0]
    assert left is not None and left <= 0.8
