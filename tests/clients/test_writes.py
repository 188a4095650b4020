"""The Dataverse client's writes for one-click fixes: always impersonated, a 403 with Dataverse's words, a
duplicate id as `AlreadyExists`, and retries only where a repeat can't make a second row. Against the
sandbox over HTTP, and with a fake at the HTTP boundary (httpx.MockTransport) for what it can't play."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bot.clients.dataverse import DataverseClient
from bot.clients.http import RetryPolicy
from bot.errors import (
    AlreadyExists,
    BackendRefused,
    BackendUnavailable,
    InputError,
    InvalidIdError,
    PermissionDenied,
)
from bot.sandbox import LocalOrg
from tests.support.org import ALEX, MEGAN, make_local

ALEX_USER = "a1000000-0000-4000-8000-000000000001"  # Alex's systemuserid
ALEX_MAILBOX = "b2000000-0000-4000-8000-000000000001"
FILTER_ID = "0f000000-0000-4000-8000-0000000000f1"
FILTER = {
    "userqueryid": FILTER_ID,
    "name": "Appointments I own",
    "fetchxml": '<fetch><entity name="appointment"><filter><condition attribute="ownerid" '
    'operator="eq-userid"/></filter></entity></fetch>',
    "querytype": 256,
    "returnedtypecode": "appointment",
}
FAST = RetryPolicy(budget=3.0, attempt_timeout=1.0, max_attempts=4, base_delay=0.01, max_delay=0.05)
MISSING_PRIVILEGE = {
    "error": {
        "code": "0x80040220",
        "message": "Principal user (Id=a1, type=8, roleCount=1, privilegeCount=4) is missing prvWriteMailbox "
        "privilege (Id=4e5) on OTC=9606 for entity 'mailbox'.",
    }
}
DUPLICATE = {"error": {"code": "0x80040237", "message": "Cannot insert duplicate key."}}
CREATED = httpx.Response(
    204, headers={"OData-EntityId": f"https://org.example/api/data/v9.2/userqueries({FILTER_ID})"}
)


# --- against the sandbox ------------------------------------------------------------------------------


def userquery(local: LocalOrg, row_id: str) -> dict[str, Any] | None:
    return local.running.sandbox.org.by_key("userqueries", row_id)


async def test_a_filter_made_as_the_person_is_theirs_and_a_repeat_is_already_there(local: LocalOrg) -> None:
    dv = local.clients.dataverse
    assert await dv.create_row("userqueries", FILTER, caller=ALEX) == FILTER_ID
    row = userquery(local, FILTER_ID)
    assert row is not None and row["_ownerid_value"] == ALEX_USER and row["statecode"] == 0
    with pytest.raises(AlreadyExists) as caught:
        await dv.create_row("userqueries", FILTER, caller=ALEX)
    assert caught.value.status == 412 and caught.value.code == "0x80040237"
    await dv.update_row("userqueries", FILTER_ID, {"statecode": 1, "statuscode": 2}, caller=ALEX)
    assert (row := userquery(local, FILTER_ID)) is not None and row["statecode"] == 1


async def test_an_ordinary_user_is_refused_a_mailbox_write_in_dataverse_words(local: LocalOrg) -> None:
    with pytest.raises(PermissionDenied) as caught:
        await local.clients.dataverse.update_row(
            "mailboxes", ALEX_MAILBOX, {"testemailconfigurationscheduled": True}, caller=ALEX
        )
    assert caught.value.status == 403 and caught.value.detail is not None
    assert "is missing prvWriteMailbox privilege" in caught.value.detail
    assert isinstance(caught.value, BackendRefused)  # a refusal, not an outage: nothing to retry


async def test_an_update_never_creates_a_missing_row(local: LocalOrg) -> None:
    missing = "0f000000-0000-4000-8000-00000000dead"
    with pytest.raises(BackendRefused) as caught:
        await local.clients.dataverse.update_row("userqueries", missing, {"statecode": 1}, caller=ALEX)
    assert caught.value.status == 404 and userquery(local, missing) is None


async def test_a_granted_privilege_lets_an_agent_write_the_mailbox(sample_data: dict[str, Any]) -> None:
    megan_user = "a1000000-0000-4000-8000-000000000002"
    async with make_local({**sample_data, "$privileges": {megan_user: ["prvWriteMailbox"]}}) as local:
        await local.clients.dataverse.update_row(
            "mailboxes", ALEX_MAILBOX, {"testemailconfigurationscheduled": True}, caller=MEGAN
        )
        mailbox = local.running.sandbox.org.by_key("mailboxes", ALEX_MAILBOX)
        assert mailbox is not None and mailbox["testemailconfigurationscheduled"] is True


# --- at the HTTP boundary ---------------------------------------------------------------------------


def scripted(
    *answers: httpx.Response | type[Exception],
) -> tuple[Callable[[httpx.Request], httpx.Response], list[httpx.Request]]:
    """A transport handler that gives `answers` in order (the last one repeats) and keeps the requests."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen) - 1, len(answers) - 1)]
        if isinstance(answer, type):
            raise answer("simulated", request=request)  # type: ignore[call-arg]
        return answer

    return handler, seen


def client(handler: Callable[[httpx.Request], httpx.Response]) -> DataverseClient:
    return DataverseClient("https://org.example", transport=httpx.MockTransport(handler), policy=FAST)


async def test_every_write_is_made_as_someone() -> None:
    handler, seen = scripted(CREATED, httpx.Response(204))
    async with client(handler) as dv:
        assert await dv.create_row("userqueries", FILTER, caller=ALEX.upper()) == FILTER_ID
        await dv.update_row("mailboxes", ALEX_MAILBOX, {"actdeliverymethod": 1}, caller=MEGAN)
        with pytest.raises(InvalidIdError):
            await dv.update_row("mailboxes", ALEX_MAILBOX, {"actdeliverymethod": 1}, caller="")
    create, update = seen
    assert (create.method, create.url.path) == ("POST", "/api/data/v9.2/userqueries")
    assert create.headers["CallerObjectId"] == ALEX and json.loads(create.content) == FILTER
    assert (update.method, update.url.path) == ("PATCH", f"/api/data/v9.2/mailboxes({ALEX_MAILBOX})")
    assert update.headers["CallerObjectId"] == MEGAN and update.headers["If-Match"] == "*"


async def test_403_and_412_become_their_own_errors() -> None:
    handler, _ = scripted(httpx.Response(403, json=MISSING_PRIVILEGE), httpx.Response(412, json=DUPLICATE))
    async with client(handler) as dv:
        with pytest.raises(PermissionDenied) as refused:
            await dv.update_row("mailboxes", ALEX_MAILBOX, {"actdeliverymethod": 1}, caller=ALEX)
        with pytest.raises(AlreadyExists):
            await dv.create_row("userqueries", FILTER, caller=ALEX)
    assert refused.value.detail == MISSING_PRIVILEGE["error"]["message"]
    assert refused.value.code == "0x80040220" and "prvWriteMailbox" in str(refused.value)


async def test_a_create_with_its_id_is_retried_and_a_lost_answer_shows_as_already_there() -> None:
    # The first attempt reached Dataverse (the row was made) but its answer was lost: the retry says 412.
    handler, seen = scripted(httpx.ReadTimeout, httpx.Response(412, json=DUPLICATE))
    async with client(handler) as dv:
        with pytest.raises(AlreadyExists):
            await dv.create_row("userqueries", FILTER, caller=ALEX)
    assert len(seen) == 2


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.Response(502), httpx.Response(504)],
    ids=["read timeout", "dropped connection", "502", "504"],
)
async def test_a_create_without_an_id_is_never_repeated_once_it_may_have_arrived(
    failure: httpx.Response | type[Exception],
) -> None:
    without_id = {k: v for k, v in FILTER.items() if k != "userqueryid"}
    handler, seen = scripted(failure, CREATED)
    async with client(handler) as dv:
        with pytest.raises(BackendUnavailable) as caught:
            await dv.create_row("userqueries", without_id, caller=ALEX)
    assert len(seen) == 1 and "not repeated" in str(caught.value)


async def test_a_create_without_an_id_is_retried_when_it_surely_did_nothing() -> None:
    without_id = {k: v for k, v in FILTER.items() if k != "userqueryid"}
    handler, seen = scripted(httpx.ConnectError, httpx.Response(429, headers={"Retry-After": "0"}), CREATED)
    async with client(handler) as dv:
        assert await dv.create_row("userqueries", without_id, caller=ALEX) == FILTER_ID
    assert len(seen) == 3


async def test_an_update_is_retried_like_a_read() -> None:
    handler, seen = scripted(httpx.ReadTimeout, httpx.Response(503), httpx.Response(204))
    started = time.monotonic()
    async with client(handler) as dv:
        await dv.update_row("mailboxes", ALEX_MAILBOX, {"actdeliverymethod": 1}, caller=ALEX)
    assert len(seen) == 3 and time.monotonic() - started < FAST.budget


async def test_an_entity_set_is_a_name_not_a_path() -> None:
    handler, seen = scripted(CREATED)
    async with client(handler) as dv:
        with pytest.raises(InputError, match="entity set"):
            await dv.create_row("userqueries/../systemusers", FILTER, caller=ALEX)
    assert seen == []
