"""Entra misbehaving, through the real MSAL path: the sandbox's token endpoint over HTTPS (trustme CA)
answers 503 or 429, or hangs. A token belongs to the request that needs it: same deadline, retries and
errors as a Dataverse call, so a turn still gets its checklist in time."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from bot.clients.auth import MsalTokenProvider, scope_for
from bot.clients.http import RetryPolicy, deadline
from bot.config import load_settings
from bot.errors import BackendUnavailable, Throttled
from bot.investigation import Investigator
from bot.sandbox import Fault
from bot.sandbox.server import RunningSandbox
from bot.setup import clients_from_settings
from tests.support.org import ALEX, CLIENT_ID, SECRET, env

QUICK = RetryPolicy(budget=2.0, attempt_timeout=1.0, max_attempts=4, base_delay=0.05, max_delay=0.2)
TOKEN_POST = "*/oauth2/v2.0/token"  # the token request only, not the tenant's discovery document


def provider(sandbox: RunningSandbox, policy: RetryPolicy | None = None) -> MsalTokenProvider:
    return MsalTokenProvider(
        tenant_id="contoso.example",
        client_id=CLIENT_ID,
        client_secret=SECRET,
        authority_host=sandbox.url,
        policy=policy,
    )


@pytest.mark.parametrize("route", ["token", TOKEN_POST])  # discovery and token, or the token POST only
async def test_token_endpoint_503_is_backend_unavailable_within_the_budget(
    https_sandbox: RunningSandbox, ca_bundle: str, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    https_sandbox.sandbox.config.faults.append(Fault(route=route, status=503))
    env(monkeypatch, https_sandbox.url)
    clients = clients_from_settings(load_settings(), policy=QUICK)
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable) as caught:  # the turn's checklist, not "something went wrong"
            await Investigator(clients.dataverse, clients.graph, budget=2.0).run(ALEX, "quarterly review")
        assert time.monotonic() - started < 10  # budget 2 s; generous for a busy machine
    finally:
        await clients.aclose()
    assert caught.value.service == "Entra"
    assert "503" in str(caught.value) and "attempt" in str(caught.value)
    assert https_sandbox.sandbox.counts["dataverse"] == 0  # no request went out without a token


async def test_hanging_token_endpoint_gives_up_at_the_deadline(
    faulty_https_sandbox: RunningSandbox, ca_bundle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    faulty_https_sandbox.sandbox.config.faults.append(Fault(route="token", hang=60))
    env(monkeypatch, faulty_https_sandbox.url)
    # the clients' default policy (5 s per attempt): the diagnosis budget of 2 s is what must hold
    clients = clients_from_settings(load_settings())
    try:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable) as caught:
            await Investigator(clients.dataverse, clients.graph, budget=2.0).run(ALEX)
        elapsed = time.monotonic() - started
    finally:
        await clients.aclose()
    assert elapsed < 10, f"gave up after {elapsed:.1f} s with a 2 s budget"
    assert caught.value.service == "Entra" and "no answer" in str(caught.value)


async def test_callers_share_one_acquisition_and_each_stops_at_its_own_deadline(
    https_sandbox: RunningSandbox, ca_bundle: str
) -> None:
    https_sandbox.sandbox.config.faults.append(Fault(route="token", hang=4, times=1))  # discovery hangs once
    tokens = provider(https_sandbox, RetryPolicy(budget=30, attempt_timeout=15))
    scope = scope_for(https_sandbox.url)

    async def impatient() -> float:
        started = time.monotonic()
        with deadline(0.5), pytest.raises(BackendUnavailable):
            await tokens.token(scope)
        return time.monotonic() - started

    async def patient() -> str:
        with deadline(25):
            return await tokens.token(scope)

    try:
        waited, *tokens_got = await asyncio.gather(impatient(), patient(), patient(), patient())
    finally:
        await tokens.aclose()
    assert waited < 3.0  # its own 0.5 s deadline, not the 4 s hang nor a lock held by another caller
    assert len(set(tokens_got)) == 1 and tokens_got[0]
    # one discovery (the hung one) and one token request served all four callers
    assert https_sandbox.sandbox.counts["token"] == 2


async def test_tokens_come_while_the_default_thread_pool_is_busy(
    https_sandbox: RunningSandbox, ca_bundle: str
) -> None:
    loop = asyncio.get_running_loop()
    release = threading.Event()
    busy = [loop.run_in_executor(None, release.wait, 30) for _ in range(40)]  # e.g. connector sends
    tokens = provider(https_sandbox)
    try:
        token = await asyncio.wait_for(tokens.token(scope_for(https_sandbox.url)), 10)
        assert token
    finally:
        release.set()
        await asyncio.gather(*busy)
        await tokens.aclose()


async def test_token_endpoint_429_is_throttled_and_remembered(
    https_sandbox: RunningSandbox, ca_bundle: str
) -> None:
    https_sandbox.sandbox.config.faults.append(Fault(route=TOKEN_POST, status=429, retry_after=30))
    tokens = provider(https_sandbox, QUICK)
    scope = scope_for(https_sandbox.url)
    try:
        with pytest.raises(Throttled) as first:
            await tokens.token(scope)
        asked = https_sandbox.sandbox.counts["token"]
        with pytest.raises(Throttled) as second:
            await tokens.token(scope)
    finally:
        await tokens.aclose()
    assert first.value.service == "Entra" and first.value.retry_after == 30
    assert second.value.attempts == 0 and second.value.retry_after is not None
    assert 0 < second.value.retry_after <= 30
    assert https_sandbox.sandbox.counts["token"] == asked  # not asked again before Retry-After


@pytest.mark.parametrize(
    "fault",
    [
        Fault(route="*/.well-known/*", status=503, times=1),  # discovery answers 503 once
        Fault(route="token", hang=1.5, times=1),  # the first request hangs past the 0.5 s attempt timeout
    ],
)
async def test_a_failure_then_recovery_is_retried_within_the_budget(
    faulty_https_sandbox: RunningSandbox, ca_bundle: str, fault: Fault
) -> None:
    faulty_https_sandbox.sandbox.config.faults.append(fault)
    tokens = provider(faulty_https_sandbox, RetryPolicy(budget=8, attempt_timeout=0.5, base_delay=0.05))
    try:
        assert await tokens.token(scope_for(faulty_https_sandbox.url))
    finally:
        await tokens.aclose()
    assert (
        fault.hits == 1 and faulty_https_sandbox.sandbox.counts["token"] == 3
    )  # failed, then discovery + token
