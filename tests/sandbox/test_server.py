"""The sandbox speaks the Dataverse Web API and Graph wire formats (checked at the HTTP level)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.errors import FixtureError
from bot.sandbox import Org, SandboxConfig, load_fixture, start_sandbox
from bot.sandbox.server import RunningSandbox
from tests.support.org import ALEX, PLAYGROUND

TOKEN = "test-token"
ALEX_ID = "a1000000-0000-4000-8000-000000000001"
MEGAN_ID = "a1000000-0000-4000-8000-000000000002"
DV = "/api/data/v9.2/"


@pytest.fixture
async def server(sample_data: dict[str, Any]) -> AsyncIterator[RunningSandbox]:
    running = await start_sandbox(Org.from_dict(sample_data), SandboxConfig(static_tokens={TOKEN}))
    yield running
    await running.close()


@pytest.fixture
async def http(server: RunningSandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


async def test_requests_without_a_valid_token_get_401(server: RunningSandbox) -> None:
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        response = await anonymous.get(DV + "systemusers")
        assert response.status_code == 401
        assert response.json()["error"]["message"]
        response = await anonymous.get(DV + "systemusers", headers={"Authorization": "Bearer forged"})
        assert response.status_code == 401


async def test_token_endpoint_issues_usable_tokens(server: RunningSandbox) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        issued = await client.post(
            "/tenant-1/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "x",
                "client_secret": "y",
                "scope": "s/.default",
            },
        )
        token = issued.json()["access_token"]
        ok = await client.get(DV + "systemusers", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        server.sandbox.revoke_tokens()
        assert (
            await client.get(DV + "systemusers", headers={"Authorization": f"Bearer {token}"})
        ).status_code == 401


async def test_filter_select_expand(http: httpx.AsyncClient) -> None:
    response = await http.get(
        DV + "systemusers",
        params={
            "$filter": f"azureactivedirectoryobjectid eq {ALEX}",
            "$select": "fullname,isdisabled",
            "$expand": "mailbox_regarding_systemuser($select=actstatus,actdeliverymethod)",
        },
    )
    body = response.json()
    assert response.status_code == 200
    [alex] = body["value"]
    assert alex["fullname"] == "Alex Wilber"
    assert "internalemailaddress" not in alex  # $select honoured
    [mailbox] = alex["mailbox_regarding_systemuser"]
    assert mailbox["actdeliverymethod"] == 1 and "emailaddress" not in mailbox


async def test_string_literals_cannot_break_out(http: httpx.AsyncClient) -> None:
    everyone = (await http.get(DV + "systemusers")).json()["value"]
    assert len(everyone) > 5
    for hostile in ("x' or 1 eq 1 or fullname eq 'x", "' or true or '"):
        quoted = "'" + hostile.replace("'", "''") + "'"
        response = await http.get(DV + "systemusers", params={"$filter": f"internalemailaddress eq {quoted}"})
        assert response.status_code == 200 and response.json()["value"] == []


async def test_lambda_any_over_activity_parties(http: httpx.AsyncClient) -> None:
    response = await http.get(
        DV + "appointments",
        params={
            "$filter": f"appointment_activity_parties/any(p:p/_partyid_value eq {MEGAN_ID} and p/participationtypemask eq 7)",
            "$select": "subject",
        },
    )
    subjects = sorted(r["subject"] for r in response.json()["value"])
    assert "Quarterly review with Contoso" in subjects and "Fabrikam kickoff" in subjects


async def test_paging_follows_next_link(http: httpx.AsyncClient) -> None:
    seen: list[str] = []
    url: str | None = DV + "appointments?$select=subject&$orderby=subject"
    pages = 0
    while url:
        body = (await http.get(url, headers={"Prefer": "odata.maxpagesize=5"})).json()
        assert len(body["value"]) <= 5
        seen += [r["subject"] for r in body["value"]]
        url = body.get("@odata.nextLink")
        pages += 1
        assert pages < 10
    everything = (await http.get(DV + "appointments?$select=subject")).json()["value"]
    assert sorted(seen) == sorted(r["subject"] for r in everything) and pages == -(-len(everything) // 5)
    assert seen == sorted(seen, key=str.casefold)


async def test_other_users_filters_only_with_the_exact_query(http: httpx.AsyncClient) -> None:
    exact = await http.get(
        DV + "userqueries", params={"$filter": f"querytype eq 256 and _ownerid_value eq {ALEX_ID}"}
    )
    assert {r["name"] for r in exact.json()["value"]} == {"My Appointments", "My Tasks"}
    extra = await http.get(
        DV + "userqueries",
        params={
            "$filter": f"querytype eq 256 and _ownerid_value eq {ALEX_ID} and returnedtypecode eq 'appointment'"
        },
    )
    assert extra.json()["value"] == []  # any other condition: only the caller's (the app user's) rows
    impersonated = await http.get(
        DV + "userqueries",
        params={"$filter": "returnedtypecode eq 'appointment'"},
        headers={"CallerObjectId": ALEX},
    )
    assert {r["name"] for r in impersonated.json()["value"]} == {
        "My Appointments",
        "Alex's open appointments view",
    }


async def test_fetchxml_runs_as_the_impersonated_user(http: httpx.AsyncClient) -> None:
    fetch = '<fetch><entity name="appointment"><attribute name="subject"/><filter><condition attribute="ownerid" operator="eq-userid"/></filter></entity></fetch>'
    as_alex = await http.get(
        DV + "appointments", params={"fetchXml": fetch}, headers={"CallerObjectId": ALEX}
    )
    assert {r["subject"] for r in as_alex.json()["value"]} == {
        "Quarterly review with Contoso",
        "Weekly pipeline sync",
        "Site inspection at Fourth Coffee",
    }
    as_app = await http.get(DV + "appointments", params={"fetchXml": fetch})
    assert as_app.json()["value"] == []
    unknown = await http.get(
        DV + "appointments", params={"fetchXml": fetch}, headers={"CallerObjectId": PLAYGROUND + "99"}
    )
    assert unknown.status_code == 404


async def test_unsupported_queries_get_a_clear_400(http: httpx.AsyncClient) -> None:
    bad = await http.get(DV + "appointments", params={"$filter": "subject has 'x'"})
    assert bad.status_code == 400 and "has" in bad.json()["error"]["message"]
    bad = await http.get(
        DV + "appointments",
        params={
            "fetchXml": '<fetch><entity name="appointment"><filter><condition attribute="x" operator="under" value="1"/></filter></entity></fetch>'
        },
    )
    assert bad.status_code == 400 and "under" in bad.json()["error"]["message"]
    missing = await http.get(DV + "queues")
    assert missing.status_code == 404


async def test_missing_record_is_404_with_dataverse_error(http: httpx.AsyncClient) -> None:
    response = await http.get(DV + "appointments(c3000000-0000-4000-8000-999999999999)")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "0x80040217"


async def test_calendar_view_window_and_paging(http: httpx.AsyncClient) -> None:
    base = f"/v1.0/users/{PLAYGROUND}22/calendarView"
    missing = await http.get(base)
    assert missing.status_code == 400
    window = {"startDateTime": "2000-01-01T00:00:00Z", "endDateTime": "2100-01-01T00:00:00Z", "$top": "1"}
    first = (await http.get(base, params=window)).json()
    assert len(first["value"]) == 1 and "@odata.nextLink" in first
    second = (await http.get(first["@odata.nextLink"])).json()
    assert second["value"][0]["id"] != first["value"][0]["id"]
    assert (await http.get(f"/v1.0/users/{PLAYGROUND}99/calendarView", params=window)).status_code == 404


async def test_faults_are_injected_per_route(sample_data: dict[str, Any]) -> None:
    config = SandboxConfig(static_tokens={TOKEN})
    data = {**sample_data, "$faults": [{"route": "graph", "status": 429, "retry_after": 3, "times": 1}]}
    running = await start_sandbox(Org.from_dict(data), config)
    try:
        async with httpx.AsyncClient(
            base_url=running.url, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as client:
            window = {"startDateTime": "2000-01-01T00:00:00Z", "endDateTime": "2100-01-01T00:00:00Z"}
            throttled = await client.get(f"/v1.0/users/{ALEX}/calendarView", params=window)
            assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
            assert (await client.get(f"/v1.0/users/{ALEX}/calendarView", params=window)).status_code == 200
            assert (await client.get(DV + "systemusers")).status_code == 200
    finally:
        await running.close()


def test_relative_dates_move_to_today(sample_data: dict[str, Any]) -> None:
    from datetime import date

    org = Org.from_dict(sample_data, today=date(2027, 1, 10))  # 46 days after the anchor
    quarterly = next(r for r in org.rows("appointments") if r["subject"].startswith("Quarterly"))
    assert quarterly["scheduledstart"] == "2027-01-12T15:00:00Z"
    events = org.events[ALEX.lower()]
    assert events[0]["start"]["dateTime"].startswith("2027-01-11T09:00:00")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON (line 1"),
        ("[]", "top level must be a JSON object"),
        ('{"systemusers": {}}', "table 'systemusers' must be a list"),
        ('{"systemusers": [{"fullname": "x"}]}', "systemusers[0]: systemuserid must be an id"),
        (
            '{"mailboxes": [{"mailboxid": "b2000000-0000-4000-8000-000000000001"}]}',
            "mailboxes[0]: _regardingobjectid_value is required",
        ),
        (
            '{"userqueries": [{"userqueryid": "e5000000-0000-4000-8000-000000000001"}]}',
            "userqueries[0]: fetchxml",
        ),
        ('{"graph": {"users": {"x": {"events": [{"start": {}}]}}}}', "graph.users['x'].events[0].start"),
        ('{"$faults": [{"latency": 1}]}', "$faults"),
    ],
)
def test_malformed_fixtures_name_the_file_and_the_problem(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "org.json"
    path.write_text(content)
    with pytest.raises(FixtureError) as caught:
        load_fixture(path)
    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_missing_fixture_file(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match="no such file"):
        load_fixture(tmp_path / "nope.json")


def test_partial_fixture_loads_missing_tables_as_empty() -> None:
    org = Org.from_dict(
        json.loads('{"systemusers": [{"systemuserid": "a1000000-0000-4000-8000-000000000001"}]}')
    )
    assert org.rows("appointments") == [] and len(org.rows("systemusers")) == 1
