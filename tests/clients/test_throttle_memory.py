"""A 429's Retry-After is remembered process-wide, per service and host: later turns don't ask again
until it has passed, and say how long that is (httpx.MockTransport at the HTTP boundary, a test clock)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from bot.clients.dataverse import DataverseClient
from bot.clients.graph import GraphClient
from bot.clients.http import THROTTLES, RetryPolicy, throttle_key
from bot.errors import Throttled
from bot.investigation import Investigator
from tests.support.org import ALEX
from tests.support.timing import FakeClock

FAST = RetryPolicy(budget=3.0, attempt_timeout=1.0, max_attempts=4, base_delay=0.01, max_delay=0.05)
ORG = "https://contoso.crm.example"


def counting(
    answer: Callable[[httpx.Request], httpx.Response],
) -> tuple[Callable[[httpx.Request], httpx.Response], list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    return handler, seen


def throttled_for(seconds: str) -> Callable[[httpx.Request], httpx.Response]:
    body = {"error": {"code": "0x80072322", "message": "Number of requests exceeded the limit"}}
    return lambda _: httpx.Response(429, headers={"Retry-After": seconds}, json=body)


async def test_thirty_turns_make_one_request_then_resume_after_retry_after(clock: FakeClock) -> None:
    state = {"answer": throttled_for("30")}
    handler, seen = counting(lambda request: state["answer"](request))
    async with DataverseClient(ORG, transport=httpx.MockTransport(handler), policy=FAST) as dv:
        investigator = Investigator(dv, budget=5.0)
        started = time.monotonic()
        for turn in range(30):
            with pytest.raises(Throttled) as caught:
                await investigator.run(ALEX)
            clock.advance(1.3 / 30)  # 30 turns within 1.3 s
            assert caught.value.service == "Dataverse"
            assert caught.value.retry_after is not None and 28 < caught.value.retry_after <= 30
            assert caught.value.retry_at is not None and caught.value.retry_at > datetime.now(UTC)
            if turn:
                assert caught.value.attempts == 0 and "not sent" in str(caught.value)
        assert len(seen) == 1  # only the first turn asked; the other 29 answered from memory
        assert time.monotonic() - started < 2.5  # at once: nobody waited for the Retry-After

        # the last turn says how long is left
        assert caught.value.retry_after == pytest.approx(30 - 1.3 * 29 / 30, abs=0.01)

        clock.advance(30)  # Retry-After has passed: ask again
        state["answer"] = lambda _: httpx.Response(200, json={"value": []})
        report = await investigator.run(ALEX)
        assert report.causes == ["teams-user-unknown"]
        assert len(seen) >= 2


async def test_memory_is_per_service_and_host(clock: FakeClock) -> None:
    handler, seen = counting(throttled_for("30"))
    ok, seen_ok = counting(lambda _: httpx.Response(200, json={"value": []}))
    async with (
        DataverseClient(ORG, transport=httpx.MockTransport(handler), policy=FAST) as throttled,
        DataverseClient(
            "https://fabrikam.crm.example", transport=httpx.MockTransport(ok), policy=FAST
        ) as other_org,
    ):
        with pytest.raises(Throttled):
            await throttled.query("systemusers", {})
        assert await other_org.query("systemusers", {}) == []  # another org is not throttled
    assert len(seen) == 1 and len(seen_ok) == 1
    assert THROTTLES.remaining(throttle_key("Dataverse", ORG)) == pytest.approx(30)
    assert THROTTLES.remaining(throttle_key("Graph", ORG)) is None


async def test_graph_429_is_remembered_too(clock: FakeClock) -> None:
    handler, seen = counting(throttled_for("20"))
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC)
    graph = GraphClient("https://graph.example", transport=httpx.MockTransport(handler), policy=FAST)
    try:
        for _ in range(5):
            with pytest.raises(Throttled) as caught:
                await graph.calendar_view(ALEX, start, end)
            assert caught.value.service == "Graph" and caught.value.retry_after is not None
        assert len(seen) == 1
        clock.advance(21)
        state_ok, seen_ok = counting(lambda _: httpx.Response(200, json={"value": []}))
        graph_after = GraphClient(
            "https://graph.example", transport=httpx.MockTransport(state_ok), policy=FAST
        )
        try:
            assert await graph_after.calendar_view(ALEX, start, end) == []
        finally:
            await graph_after.aclose()
        assert len(seen_ok) == 1
    finally:
        await graph.aclose()


async def test_a_hold_shorter_than_the_budget_is_waited_out_not_reported() -> None:
    handler, seen = counting(lambda _: httpx.Response(200, json={"value": []}))
    THROTTLES.hold(throttle_key("Dataverse", ORG), 0.3)
    started = time.monotonic()
    async with DataverseClient(ORG, transport=httpx.MockTransport(handler), policy=FAST) as dv:
        assert await dv.query("systemusers", {}) == []
    assert time.monotonic() - started >= 0.25  # it waited for the rest of the Retry-After
    assert len(seen) == 1


async def test_a_short_retry_after_within_one_request_is_remembered_and_ridden_out() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "0.2"})])
    handler, seen = counting(lambda _: next(answers, httpx.Response(200, json={"value": []})))
    async with DataverseClient(ORG, transport=httpx.MockTransport(handler), policy=FAST) as dv:
        assert await dv.query("systemusers", {}) == []
    assert len(seen) == 2 and seen  # one 429, one success after the wait


def test_hold_keeps_the_later_end_and_caps_at_an_hour(clock: FakeClock) -> None:
    key = throttle_key("Dataverse", ORG)
    THROTTLES.hold(key, 30)
    THROTTLES.hold(key, 5)  # a shorter Retry-After from a parallel request does not shorten it
    assert THROTTLES.remaining(key) == pytest.approx(30)
    THROTTLES.hold(key, 10**9)
    assert THROTTLES.remaining(key) == pytest.approx(3600)
    clock.advance(3600)
    assert THROTTLES.remaining(key) is None
