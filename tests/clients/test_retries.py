"""Retries and the time budget, with a fake at the HTTP boundary (httpx.MockTransport)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from bot.clients.dataverse import DataverseClient
from bot.clients.http import RetryPolicy, deadline
from bot.errors import BackendRefused, BackendUnavailable, Throttled

FAST = RetryPolicy(budget=3.0, attempt_timeout=1.0, max_attempts=4, base_delay=0.01, max_delay=0.05)
EMPTY = {"value": []}


def scripted(
    *answers: httpx.Response | type[Exception],
) -> tuple[Callable[[httpx.Request], httpx.Response], list[float]]:
    """A transport handler that gives `answers` in order (the last one repeats) and records when."""
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        answer = answers[min(len(calls) - 1, len(answers) - 1)]
        if isinstance(answer, type):
            raise answer("simulated", request=request)  # type: ignore[call-arg]
        return answer

    return handler, calls


def client(handler: Callable[[httpx.Request], httpx.Response], policy: RetryPolicy = FAST) -> DataverseClient:
    return DataverseClient("https://org.example", transport=httpx.MockTransport(handler), policy=policy)


async def test_429_waits_for_retry_after_then_succeeds() -> None:
    handler, calls = scripted(
        httpx.Response(429, headers={"Retry-After": "0.3"}), httpx.Response(200, json=EMPTY)
    )
    async with client(handler) as dv:
        assert await dv.query("systemusers", {}) == []
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.29  # honoured Retry-After, not the (much shorter) backoff


async def test_429_beyond_the_budget_raises_throttled_without_waiting() -> None:
    handler, calls = scripted(httpx.Response(429, headers={"Retry-After": "120"}))
    started = time.monotonic()
    async with client(handler) as dv:
        with pytest.raises(Throttled) as caught:
            await dv.query("systemusers", {})
    assert time.monotonic() - started < 2.0  # no waiting for a Retry-After of 120 s
    assert caught.value.retry_after == 120 and "429" in str(caught.value)
    assert len(calls) == 1  # no point asking again before Retry-After


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_retried(status: int) -> None:
    handler, calls = scripted(httpx.Response(status), httpx.Response(200, json=EMPTY))
    async with client(handler) as dv:
        await dv.query("systemusers", {})
    assert len(calls) == 2


async def test_timeouts_and_connection_errors_are_retried_then_reported() -> None:
    handler, calls = scripted(httpx.ConnectTimeout, httpx.ConnectError, httpx.ReadTimeout)
    async with client(handler) as dv:
        with pytest.raises(BackendUnavailable) as caught:
            await dv.query("systemusers", {})
    assert len(calls) == FAST.max_attempts
    assert "4 attempt(s)" in str(caught.value) and caught.value.service == "Dataverse"


async def test_other_4xx_is_not_retried_and_carries_dataverse_error() -> None:
    body = {"error": {"code": "0x80040220", "message": "Principal user is missing prvReadMailbox privilege"}}
    handler, calls = scripted(httpx.Response(403, json=body))
    async with client(handler) as dv:
        with pytest.raises(BackendRefused) as caught:
            await dv.query("mailboxes", {})
    assert len(calls) == 1
    assert caught.value.status == 403 and caught.value.code == "0x80040220"
    assert "prvReadMailbox" in str(caught.value)


async def test_deadline_bounds_all_retries_together() -> None:
    handler, calls = scripted(httpx.Response(503))
    slow = RetryPolicy(budget=30, attempt_timeout=5, max_attempts=50, base_delay=0.2, max_delay=0.2)
    started = time.monotonic()
    async with client(handler, slow) as dv:
        with deadline(0.7), pytest.raises(BackendUnavailable):
            await dv.query("systemusers", {})
    assert time.monotonic() - started < 2.5  # bounded by the deadline, not by 50 attempts (10 s)
    assert 2 <= len(calls) < 10


async def test_unparseable_json_is_a_clear_error() -> None:
    handler, _ = scripted(httpx.Response(200, text="<html>proxy login</html>"))
    async with client(handler) as dv:
        with pytest.raises(BackendRefused, match="not JSON"):
            await dv.query("systemusers", {})
