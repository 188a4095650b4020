"""The writes one-click fixes make, over HTTP in Dataverse's wire format: sync filters created, changed and
deleted as a person, mailboxes changed, and what the privilege model refuses."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bot.clients.dataverse import DataverseClient
from bot.errors import AlreadyExists, BackendRefused, PermissionDenied
from bot.sandbox import LocalOrg, Org, SandboxConfig
from bot.sandbox.privileges import OWN_FILTERS
from bot.sandbox.wire import APP_USER_ID
from tests.support.org import ALEX, MEGAN, PLAYGROUND, make_local

TOKEN = "test-token"
DV = "/api/data/v9.2/"
NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)
ALEX_ID, MEGAN_ID = "a1000000-0000-4000-8000-000000000001", "a1000000-0000-4000-8000-000000000002"
ALEX_FILTER, MEGAN_FILTER = "e5000000-0000-4000-8000-000000000001", "e5000000-0000-4000-8000-000000000003"
ALEX_MAILBOX = "b2000000-0000-4000-8000-000000000001"
MIRIAM = "0e000000-0000-4000-8000-000000000013"  # disabled
NEW_FILTER = "e5100000-0000-4000-8000-000000000001"
I_OWN = (
    '<fetch><entity name="appointment"><attribute name="subject"/>'
    '<filter><condition attribute="ownerid" operator="eq-userid"/></filter></entity></fetch>'
)
FILTER = {
    "name": "Appointments I own",
    "fetchxml": I_OWN,
    "querytype": 256,
    "returnedtypecode": "appointment",
}


def as_(user: str) -> dict[str, str]:
    return {"CallerObjectId": user}


def with_privileges(sample_data: dict[str, Any], privileges: dict[str, list[str]] | None) -> Org:
    data = copy.deepcopy(sample_data)
    if privileges is not None:
        data["$privileges"] = privileges
    return Org.from_dict(data)


def config() -> SandboxConfig:
    return SandboxConfig(static_tokens={TOKEN}, clock=lambda: NOW, sync_every=0)


@pytest.fixture
async def local(sample_data: dict[str, Any]) -> AsyncIterator[LocalOrg]:
    async with make_local(with_privileges(sample_data, None), config()) as running:
        yield running


@pytest.fixture
async def http(local: LocalOrg) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=local.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


def dataverse(local: LocalOrg) -> DataverseClient:
    return local.clients.dataverse


async def test_a_filter_created_as_a_person_is_theirs(local: LocalOrg, http: httpx.AsyncClient) -> None:
    created = await dataverse(local).create_row(
        "userqueries", {"userqueryid": NEW_FILTER, **FILTER}, caller=ALEX
    )
    assert created == NEW_FILTER
    row = (await http.get(DV + f"userqueries({NEW_FILTER})", headers=as_(ALEX))).json()
    assert row["_ownerid_value"] == row["_createdby_value"] == row["_modifiedby_value"] == ALEX_ID
    assert row["_createdonbehalfby_value"] == APP_USER_ID
    assert (row["statecode"], row["statuscode"]) == (0, 1)
    assert row["createdon"] == row["modifiedon"] == "2026-11-25T12:30:00Z"
    assert row["@odata.etag"].startswith('W/"')
    mine = await dataverse(local).own_filters(ALEX)  # the bot's own read finds it among Alex's filters
    assert "Appointments I own" in {f.name for f in mine}


async def test_post_answers_204_with_the_address_or_201_with_the_row(
    local: LocalOrg, http: httpx.AsyncClient
) -> None:
    plain = await http.post(DV + "userqueries", json=FILTER, headers=as_(ALEX))
    assert plain.status_code == 204 and plain.content == b""
    address = plain.headers["OData-EntityId"]
    assert address.startswith(f"{local.url}{DV}userqueries(")
    assert (await http.get(address)).status_code == 200  # an id the sandbox made
    shown = await http.post(
        DV + "userqueries?$select=name,statecode",
        json={**FILTER, "userqueryid": NEW_FILTER, "statecode": 1},
        headers={**as_(ALEX), "Prefer": "return=representation"},
    )
    assert shown.status_code == 201 and shown.headers["Preference-Applied"] == "return=representation"
    body = shown.json()
    assert body["userqueryid"] == NEW_FILTER and body["name"] == FILTER["name"]
    assert body["statecode"] == 1 and "@odata.etag" in body and "fetchxml" not in body


async def test_a_second_create_with_the_same_id_is_412(local: LocalOrg, http: httpx.AsyncClient) -> None:
    await dataverse(local).create_row("userqueries", {"userqueryid": NEW_FILTER, **FILTER}, caller=ALEX)
    again = await http.post(DV + "userqueries", json={"userqueryid": NEW_FILTER, **FILTER}, headers=as_(ALEX))
    assert again.status_code == 412
    assert again.json()["error"] == {"code": "0x80040237", "message": "Cannot insert duplicate key."}
    with pytest.raises(AlreadyExists):
        await dataverse(local).create_row("userqueries", {"userqueryid": NEW_FILTER, **FILTER}, caller=ALEX)


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({k: v for k, v in FILTER.items() if k != "fetchxml"}, 400, "fetchxml"),
        ({k: v for k, v in FILTER.items() if k != "returnedtypecode"}, 400, "returnedtypecode"),
        ({**FILTER, "fetchxml": "<fetch><entity"}, 400, "does not parse"),
        ({**FILTER, "fetchxml": I_OWN.replace("eq-userid", "under")}, 400, "under"),
        ({**FILTER, "returnedtypecode": "task"}, 400, "queries appointment"),
        ({**FILTER, "colour": "red"}, 400, "Could not find a property named 'colour'"),
        ({**FILTER, "_ownerid_value": MEGAN_ID}, 400, "Could not find a property named '_ownerid_value'"),
        ({**FILTER, "querytype": "256"}, 400, "Edm.Int32"),
        ({**FILTER, "statecode": 0, "statuscode": 2}, 400, "not a valid status code"),
        ({**FILTER, "userqueryid": "not-an-id"}, 400, "not a GUID"),
    ],
)
async def test_bad_creates_are_400(
    http: httpx.AsyncClient, body: dict[str, Any], status: int, says: str
) -> None:
    response = await http.post(DV + "userqueries", json=body, headers=as_(ALEX))
    assert response.status_code == status
    assert says in response.json()["error"]["message"]


async def test_deactivating_and_reactivating_a_filter(local: LocalOrg, http: httpx.AsyncClient) -> None:
    await dataverse(local).update_row(
        "userqueries", ALEX_FILTER, {"statecode": 1, "statuscode": 2}, caller=ALEX
    )
    row = (await http.get(DV + f"userqueries({ALEX_FILTER})")).json()
    assert (row["statecode"], row["statuscode"]) == (1, 2)
    assert row["modifiedon"] == "2026-11-25T12:30:00Z" and row["_modifiedby_value"] == ALEX_ID
    # A statecode alone gets its state's status, as in Dataverse.
    await dataverse(local).update_row("userqueries", ALEX_FILTER, {"statecode": 0}, caller=ALEX)
    row = (await http.get(DV + f"userqueries({ALEX_FILTER})")).json()
    assert (row["statecode"], row["statuscode"]) == (0, 1)
    mismatched = await http.patch(
        DV + f"userqueries({ALEX_FILTER})", json={"statecode": 1, "statuscode": 1}, headers=as_(ALEX)
    )
    assert mismatched.status_code == 400


async def test_patch_is_an_upsert_unless_if_match(local: LocalOrg, http: httpx.AsyncClient) -> None:
    with pytest.raises(BackendRefused) as caught:  # the bot's update_row sends If-Match: *
        await dataverse(local).update_row("userqueries", NEW_FILTER, {"statecode": 1}, caller=ALEX)
    assert caught.value.status == 404
    assert (await http.get(DV + f"userqueries({NEW_FILTER})")).status_code == 404
    upsert = await http.patch(DV + f"userqueries({NEW_FILTER})", json=FILTER, headers=as_(ALEX))
    assert upsert.status_code == 204 and upsert.headers["OData-EntityId"].endswith(
        f"userqueries({NEW_FILTER})"
    )
    row = (await http.get(DV + f"userqueries({NEW_FILTER})")).json()
    assert row["_ownerid_value"] == ALEX_ID and row["name"] == FILTER["name"]
    no_mailbox = await http.patch(DV + f"mailboxes({NEW_FILTER})", json={"actdeliverymethod": 1})
    assert no_mailbox.status_code == 404
    create_only = await http.patch(
        DV + f"userqueries({NEW_FILTER})", json=FILTER, headers={**as_(ALEX), "If-None-Match": "*"}
    )
    assert create_only.status_code == 412


async def test_if_match_with_a_stale_etag_is_412(http: httpx.AsyncClient) -> None:
    read = (await http.get(DV + f"userqueries({ALEX_FILTER})", headers=as_(ALEX))).json()
    first = await http.patch(
        DV + f"userqueries({ALEX_FILTER})",
        json={"name": "Mine"},
        headers={**as_(ALEX), "If-Match": read["@odata.etag"]},
    )
    assert first.status_code == 204
    stale = await http.patch(
        DV + f"userqueries({ALEX_FILTER})",
        json={"name": "Mine again"},
        headers={**as_(ALEX), "If-Match": read["@odata.etag"]},
    )
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "0x80060882"


async def test_delete_own_filter(http: httpx.AsyncClient) -> None:
    assert (await http.delete(DV + f"userqueries({ALEX_FILTER})", headers=as_(ALEX))).status_code == 204
    assert (await http.get(DV + f"userqueries({ALEX_FILTER})")).status_code == 404
    again = await http.delete(DV + f"userqueries({ALEX_FILTER})", headers=as_(ALEX))
    assert again.status_code == 404 and again.json()["error"]["code"] == "0x80040217"


async def test_ordinary_users_may_not_touch_others_filters_or_mailboxes(
    local: LocalOrg, http: httpx.AsyncClient
) -> None:
    with pytest.raises(PermissionDenied) as caught:
        await dataverse(local).update_row("userqueries", MEGAN_FILTER, {"statecode": 1}, caller=ALEX)
    assert caught.value.status == 403 and "is missing prvAdminFilter privilege" in str(caught.value.detail)
    deleting = await http.delete(DV + f"userqueries({MEGAN_FILTER})", headers=as_(ALEX))
    assert deleting.status_code == 403
    mailbox = await http.patch(
        DV + f"mailboxes({ALEX_MAILBOX})", json={"actdeliverymethod": 2}, headers=as_(ALEX)
    )
    assert mailbox.status_code == 403
    refused = mailbox.json()["error"]
    assert refused["code"] == "0x80040220"
    assert refused["message"].startswith(f"Principal user (Id={ALEX_ID}, type=8, ")
    assert "is missing prvWriteMailbox privilege (Id=" in refused["message"]
    assert "on OTC=9606 for entity 'mailbox'" in refused["message"]
    row = (await http.get(DV + f"mailboxes({ALEX_MAILBOX})")).json()
    assert row["actdeliverymethod"] == 1  # nothing was written
    # The application user itself (no CallerObjectId) has every privilege.
    assert (await http.patch(DV + f"mailboxes({ALEX_MAILBOX})", json={"actstatus": 0})).status_code == 204


async def test_listed_privileges_are_exactly_what_a_user_may_do(sample_data: dict[str, Any]) -> None:
    org = with_privileges(
        sample_data, {ALEX_ID: ["prvWriteMailbox"], MEGAN_ID: ["prvWriteMailbox", "prvAdminFilter"]}
    )
    async with make_local(org, config()) as local:
        dv = local.clients.dataverse
        await dv.update_row("mailboxes", ALEX_MAILBOX, {"testemailconfigurationscheduled": True}, caller=ALEX)
        with pytest.raises(PermissionDenied) as caught:  # approval needs its own privilege
            await dv.update_row("mailboxes", ALEX_MAILBOX, {"emailrouteraccessapproval": 1}, caller=ALEX)
        assert "is missing prvApproveRejectEmailAddress privilege" in str(caught.value.detail)
        with pytest.raises(PermissionDenied):  # listed, but without prvAdminFilter
            await dv.update_row("userqueries", MEGAN_FILTER, {"statecode": 1}, caller=ALEX)
        await dv.update_row("userqueries", ALEX_FILTER, {"statecode": 1}, caller=MEGAN)  # an admin of filters
        with pytest.raises(PermissionDenied) as caught:  # listed without the UserQuery privileges
            await dv.create_row("userqueries", {"userqueryid": NEW_FILTER, **FILTER}, caller=ALEX)
        assert "is missing prvCreateUserQuery privilege" in str(caught.value.detail)
        await dv.create_row(  # unlisted: their own filters, as every user's role allows
            "userqueries", {**FILTER, "userqueryid": NEW_FILTER}, caller=PLAYGROUND + "22"
        )
        with pytest.raises(PermissionDenied):  # unlisted: their own filters only
            await dv.update_row("mailboxes", ALEX_MAILBOX, {"actdeliverymethod": 1}, caller=PLAYGROUND + "22")
        rows = {r["mailboxid"]: r for r in local.running.sandbox.org.rows("mailboxes")}
        assert rows[ALEX_MAILBOX]["testemailconfigurationscheduled"] is True
        assert rows[ALEX_MAILBOX]["emailrouteraccessapproval"] == 1
    both = with_privileges(sample_data, {ALEX_ID: ["prvWriteMailbox", "prvApproveRejectEmailAddress"]})
    async with make_local(both, config()) as local:
        await local.clients.dataverse.update_row(
            "mailboxes", ALEX_MAILBOX, {"emailrouteraccessapproval": 2}, caller=ALEX
        )


async def test_impersonation_only_narrows_what_the_app_may_do(sample_data: dict[str, Any]) -> None:
    """Effective privileges are the intersection of the application user's and the caller's (domain.md
    6b): Megan holds prvWriteMailbox, but an app that lacks it can't write a mailbox as her."""
    org = with_privileges(
        sample_data,
        {
            APP_USER_ID: ["prvCreateUserQuery", "prvReadUserQuery"],
            MEGAN_ID: ["prvWriteMailbox", *OWN_FILTERS],
        },
    )
    async with make_local(org, config()) as local:
        dv = local.clients.dataverse
        with pytest.raises(PermissionDenied) as caught:
            await dv.update_row("mailboxes", ALEX_MAILBOX, {"actdeliverymethod": 2}, caller=MEGAN)
        assert "is missing prvWriteMailbox privilege" in str(caught.value.detail)
        await dv.create_row("userqueries", {**FILTER, "userqueryid": NEW_FILTER}, caller=ALEX)  # both hold it
        with pytest.raises(PermissionDenied) as caught:  # Alex may change his filters; the app may not
            await dv.update_row("userqueries", NEW_FILTER, {"statecode": 1}, caller=ALEX)
        assert "is missing prvWriteUserQuery privilege" in str(caught.value.detail)
        row = local.running.sandbox.org.by_key("mailboxes", ALEX_MAILBOX)
        assert row is not None and row["actdeliverymethod"] == 1  # nothing was written


@pytest.mark.parametrize(
    ("column", "value", "says"),
    [
        ("actdeliverymethod", 3, "outside the valid range"),
        ("emailrouteraccessapproval", 4, "outside the valid range"),
        ("testemailconfigurationscheduled", "yes", "Edm.Boolean"),
        ("testmailboxaccesscompletedon", "soon", "Edm.DateTimeOffset"),
        ("statuscode", 2, "not a valid status code"),
        (
            "mailboxcolour",
            1,
            "Could not find a property named 'mailboxcolour' on type 'Microsoft.Dynamics.CRM.mailbox'",
        ),
    ],
)
async def test_mailbox_values_are_checked(
    http: httpx.AsyncClient, column: str, value: Any, says: str
) -> None:
    response = await http.patch(DV + f"mailboxes({ALEX_MAILBOX})", json={column: value})
    assert response.status_code == 400 and says in response.json()["error"]["message"]


async def test_unknown_and_disabled_callers_are_refused(http: httpx.AsyncClient) -> None:
    unknown = await http.post(DV + "userqueries", json=FILTER, headers=as_(PLAYGROUND + "99"))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "0x80040217"
    disabled = await http.post(DV + "userqueries", json=FILTER, headers=as_(MIRIAM))
    assert disabled.status_code == 403 and disabled.json()["error"]["code"] == "0x8004d24b"


async def test_only_the_writes_fixes_make_are_modelled(http: httpx.AsyncClient) -> None:
    assert (await http.post(DV + "appointments", json={"subject": "x"})).status_code == 405
    assert (await http.delete(DV + f"mailboxes({ALEX_MAILBOX})")).status_code == 405
    assert (await http.post(DV + "queues", json={})).status_code == 404
    assert (await http.post(DV + "userqueries", content=b"[1]")).status_code == 400
