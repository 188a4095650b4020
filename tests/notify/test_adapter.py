"""The adapter the bot sends through keeps what botbuilder would make anew for every send: with an app
password, the bot's token for the Bot Connector comes from MSAL's cache, so many sends ask Entra once (real
MSAL, against the sandbox's token endpoint over HTTPS), and every send still reaches Teams."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from botbuilder.core import MessageFactory

from bot.config import Settings
from bot.notify.outbox import Connector, SendLimiter, close_adapter, connector_adapter
from bot.sandbox.connector import FakeConnector
from bot.sandbox.server import RunningSandbox
from tests.support.bot_tokens import EntraForTheBot
from tests.support.identity import identity_endpoint
from tests.support.org import CLIENT_ID, SECRET

TENANT = "contoso.example"


@pytest.fixture
async def teams() -> AsyncIterator[FakeConnector]:
    connector = FakeConnector.unlimited()
    await connector.start()
    yield connector
    await connector.close()


@pytest.fixture
def senders() -> Iterator[list[Connector]]:
    made: list[Connector] = []
    yield made
    for connector in made:
        close_adapter(connector.adapter)


def sender(sandbox: RunningSandbox, made: list[Connector], secret: str = SECRET) -> Connector:
    settings = Settings(
        MicrosoftAppId=CLIENT_ID,
        MicrosoftAppPassword=secret,
        MicrosoftAppType="SingleTenant",
        MicrosoftAppTenantId=TENANT,
    )
    adapter = connector_adapter(settings, login_url=f"{sandbox.url}/{TENANT}")
    made.append(
        Connector(adapter, app_id=CLIENT_ID, limiter=SendLimiter(per_tenant=1000, per_conversation=1000))
    )
    return made[-1]


async def test_many_sends_ask_entra_for_one_token(
    https_sandbox: RunningSandbox, ca_bundle: str, teams: FakeConnector, senders: list[Connector]
) -> None:
    sends = sender(https_sandbox, senders)
    issued = set(https_sandbox.sandbox.tokens)
    for round_ in range(3):  # one after another, and several at once
        await asyncio.gather(
            *(
                sends.send(teams.reference(f"a:chat-{round_}-{i}", user=f"u{i}"), MessageFactory.text("hi"))
                for i in range(6)
            )
        )
    assert teams.total == 18
    assert len(https_sandbox.sandbox.tokens - issued) == 1  # one token, from Entra, for all 18


async def test_a_refused_token_fails_the_send_and_nothing_reaches_teams(
    https_sandbox: RunningSandbox, ca_bundle: str, teams: FakeConnector, senders: list[Connector]
) -> None:
    sends = sender(https_sandbox, senders, secret="wrong")
    with pytest.raises(PermissionError, match="invalid_client"):
        await sends.send(teams.reference("a:chat", user="u"), MessageFactory.text("hi"))
    assert teams.total == 0


async def test_the_managed_identity_is_asked_once_for_many_sends(
    monkeypatch: pytest.MonkeyPatch, teams: FakeConnector, senders: list[Connector]
) -> None:
    """The deployment's way (UserAssignedMSI): the identity endpoint, served on this same event loop,
    answers because the token is fetched off it, once for all the sends."""
    identity = "5e0c2b7a-93d4-4f61-8a2e-7c1d9b3f4a60"  # nobody else's: MSAL's identity cache is shared
    async with identity_endpoint(monkeypatch, identity) as endpoint:
        settings = Settings(
            MicrosoftAppId=identity, MicrosoftAppType="UserAssignedMSI", MicrosoftAppTenantId=TENANT
        )
        limits = SendLimiter(per_tenant=1000, per_conversation=1000)
        senders.append(Connector(connector_adapter(settings), app_id=identity, limiter=limits))
        for round_ in range(2):
            await asyncio.gather(
                *(
                    senders[-1].send(teams.reference(f"a:msi-{round_}-{i}"), MessageFactory.text("hi"))
                    for i in range(5)
                )
            )
    assert teams.total == 10
    assert endpoint.resources() == ["https://api.botframework.com"]


async def test_a_token_due_for_renewal_is_renewed_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch, teams: FakeConnector, senders: list[Connector]
) -> None:
    entra = EntraForTheBot(monkeypatch, expires_in=302)  # MSAL renews a token with under 300 s left
    settings = Settings(MicrosoftAppId=CLIENT_ID, MicrosoftAppPassword=SECRET, MicrosoftAppType="MultiTenant")
    limits = SendLimiter(per_tenant=1000, per_conversation=1000)
    senders.append(Connector(connector_adapter(settings), app_id=CLIENT_ID, limiter=limits))
    await senders[-1].send(teams.reference("a:renew-0"), MessageFactory.text("hi"))
    await asyncio.sleep(2.5)  # at least this long: MSAL now holds the token due for renewal (< 300 s left)
    await senders[-1].send(teams.reference("a:renew-1"), MessageFactory.text("hi"))
    assert teams.total == 2
    assert entra.token_threads and not entra.asked_on(threading.current_thread())
