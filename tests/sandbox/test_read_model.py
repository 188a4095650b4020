"""What an impersonated caller may read, over HTTP: team-owned records, FetchXML as a user, and the tables
the diagnosis reads (recurring series, the organization, teams)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.errors import FixtureError
from bot.sandbox import Org, SandboxConfig, load_fixture, start_sandbox

TOKEN = "test-token"
DV = "/api/data/v9.2/"
ME, MEMBER, OUTSIDER, READER = (f"a1000000-0000-4000-8000-00000000000{n}" for n in range(1, 5))
AAD = {user: "e" + user[1:] for user in (ME, MEMBER, OUTSIDER, READER)}  # Entra object ids
TEAM = "b1000000-0000-4000-8000-000000000001"
TEAM_APPOINTMENT, MY_APPOINTMENT, INSTANCE = (f"c3000000-0000-4000-8000-00000000000{n}" for n in range(1, 4))
SERIES = "c4000000-0000-4000-8000-000000000001"
ORGANIZATION = "b3000000-0000-4000-8000-000000000001"
ALL = '<fetch><entity name="{}"><attribute name="subject"/></entity></fetch>'


def org_data() -> dict[str, Any]:
    return {
        "systemusers": [
            {"systemuserid": user, "azureactivedirectoryobjectid": AAD[user]}
            for user in (ME, MEMBER, OUTSIDER, READER)
        ],
        "teams": [{"teamid": TEAM, "name": "Sales"}],
        "teammemberships": [
            {
                "teammembershipid": "b1100000-0000-4000-8000-000000000001",
                "teamid": TEAM,
                "systemuserid": MEMBER,
            }
        ],
        "appointments": [
            {"activityid": TEAM_APPOINTMENT, "subject": "Team review", "_ownerid_value": TEAM},
            {"activityid": MY_APPOINTMENT, "subject": "Mine", "_ownerid_value": ME, "instancetypecode": 0},
            {
                "activityid": INSTANCE,
                "subject": "Standup",
                "_ownerid_value": ME,
                "instancetypecode": 2,
                "seriesid": SERIES,
            },
        ],
        "recurringappointmentmasters": [
            {
                "activityid": SERIES,
                "subject": "Standup",
                "_ownerid_value": ME,
                "instancetypecode": 1,
                "patternstartdate": "2026-11-02T00:00:00Z",
                "statecode": 0,
                "globalobjectid": "040000008200E00074C5B7101A82E008",
            }
        ],
        "activityparties": [
            {"_activityid_value": SERIES, "_partyid_value": ME, "participationtypemask": 7},
            {"_activityid_value": SERIES, "_partyid_value": MEMBER, "participationtypemask": 5},
        ],
        "organizations": [
            {
                "organizationid": ORGANIZATION,
                "requireapprovalforuseremail": True,
                "requireapprovalforqueueemail": False,
            }
        ],
        "$privileges": {READER: ["prvReadActivity"]},
    }


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    running = await start_sandbox(Org.from_dict(org_data()), SandboxConfig(static_tokens={TOKEN}))
    try:
        async with httpx.AsyncClient(
            base_url=running.url, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as client:
            yield client
    finally:
        await running.close()


def as_user(user: str) -> dict[str, str]:
    return {"CallerObjectId": AAD[user]}


async def subjects(http: httpx.AsyncClient, entity_set: str, user: str | None, **params: str) -> list[str]:
    response = await http.get(DV + entity_set, params=params, headers=as_user(user) if user else None)
    assert response.status_code == 200, response.text
    return sorted(row["subject"] for row in response.json()["value"])


async def test_a_team_owned_record_is_readable_by_the_teams_members(http: httpx.AsyncClient) -> None:
    keyed = DV + f"appointments({TEAM_APPOINTMENT})"
    assert (await http.get(keyed, headers=as_user(MEMBER))).json()["subject"] == "Team review"
    refused = await http.get(keyed, headers=as_user(OUTSIDER))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "0x80040220"
    assert await subjects(http, "appointments", MEMBER, **{"$select": "subject"}) == ["Team review"]
    assert await subjects(http, "appointments", MEMBER, fetchXml=ALL.format("appointment")) == ["Team review"]
    assert await subjects(http, "appointments", OUTSIDER, **{"$select": "subject"}) == []


async def test_fetchxml_as_a_user_returns_only_what_they_may_read(http: httpx.AsyncClient) -> None:
    fetch = ALL.format("appointment")
    assert await subjects(http, "appointments", ME, fetchXml=fetch) == ["Mine", "Standup"]
    assert await subjects(http, "appointments", OUTSIDER, fetchXml=fetch) == []
    everything = ["Mine", "Standup", "Team review"]
    assert await subjects(http, "appointments", READER, fetchXml=fetch) == everything  # prvReadActivity
    assert await subjects(http, "appointments", None, fetchXml=fetch) == everything  # the app user


async def test_team_operators_in_fetchxml_mean_the_impersonated_user(http: httpx.AsyncClient) -> None:
    fetch = (
        '<fetch><entity name="appointment"><attribute name="subject"/><filter>'
        '<condition attribute="ownerid" operator="eq-useroruserteams"/></filter></entity></fetch>'
    )
    assert await subjects(http, "appointments", MEMBER, fetchXml=fetch) == ["Team review"]
    assert await subjects(http, "appointments", ME, fetchXml=fetch) == ["Mine", "Standup"]


async def test_recurring_series_read_like_appointments(http: httpx.AsyncClient) -> None:
    response = await http.get(
        DV + "recurringappointmentmasters",
        params={
            "$select": "subject,patternstartdate,globalobjectid",
            "$filter": "statecode eq 0",
            "$expand": "recurringappointmentmaster_activity_parties($select=_partyid_value,participationtypemask)",
        },
    )
    [series] = response.json()["value"]
    assert series["activityid"] == SERIES and series["patternstartdate"].startswith("2026-11-02")
    masks = {
        p["_partyid_value"]: p["participationtypemask"]
        for p in series["recurringappointmentmaster_activity_parties"]
    }
    assert masks == {ME: 7, MEMBER: 5}
    keyed = DV + f"recurringappointmentmasters({SERIES})"
    assert (await http.get(keyed, headers=as_user(MEMBER))).status_code == 200  # a party
    assert (await http.get(keyed, headers=as_user(OUTSIDER))).status_code == 403
    assert await subjects(http, "recurringappointmentmasters", OUTSIDER) == []
    series_fetch = ALL.format("recurringappointmentmaster")
    assert await subjects(http, "recurringappointmentmasters", MEMBER, fetchXml=series_fetch) == ["Standup"]


async def test_an_instance_names_its_series(http: httpx.AsyncClient) -> None:
    instances = await http.get(
        DV + "appointments",
        params={"$filter": f"seriesid eq {SERIES}", "$select": "subject,instancetypecode"},
    )
    [instance] = instances.json()["value"]
    assert instance["activityid"] == INSTANCE and instance["instancetypecode"] == 2


async def test_organization_settings(http: httpx.AsyncClient) -> None:
    response = await http.get(
        DV + "organizations",
        params={"$select": "requireapprovalforuseremail,requireapprovalforqueueemail"},
        headers=as_user(OUTSIDER),
    )
    [organization] = response.json()["value"]
    assert organization == {
        "organizationid": ORGANIZATION,
        "requireapprovalforuseremail": True,
        "requireapprovalforqueueemail": False,
        "@odata.etag": organization["@odata.etag"],
    }
    assert (await http.get(DV + f"organizations({ORGANIZATION})")).json()[
        "requireapprovalforuseremail"
    ] is True
    filtered = await http.get(
        DV + "organizations", params={"$filter": "requireapprovalforuseremail eq false"}
    )
    assert filtered.json()["value"] == []


async def test_teams_and_memberships_are_tables(http: httpx.AsyncClient) -> None:
    teams = (await http.get(DV + "teams", params={"$select": "name"})).json()["value"]
    assert [t["name"] for t in teams] == ["Sales"]
    memberships = await http.get(DV + "teammemberships", params={"$filter": f"systemuserid eq {MEMBER}"})
    assert [m["teamid"] for m in memberships.json()["value"]] == [TEAM]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"teammemberships": [{"teamid": TEAM}]}, "teammemberships[0]: systemuserid must be an id"),
        (
            {"teammemberships": [{"teamid": SERIES, "systemuserid": ME}]},
            f"teammemberships[0]: teamid {SERIES} names no row of teams",
        ),
        (
            {"systemusers": [{"systemuserid": ME, "_parentsystemuserid_value": MEMBER}]},
            "systemusers[0]: _parentsystemuserid_value",
        ),
        (
            {"systemusers": [{"systemuserid": ME, "_businessunitid_value": "sales"}]},
            "_businessunitid_value must be an id",
        ),
        (
            {"appointments": [{"activityid": INSTANCE, "seriesid": TEAM}]},
            f"appointments[0]: seriesid {TEAM} names no row of recurringappointmentmasters",
        ),
        ({"teams": [{"name": "Sales"}]}, "teams[0]: teamid must be an id"),
        (
            {"organizations": [{"organizationid": ORGANIZATION}, {"organizationid": SERIES}]},
            "organizations has 2 rows",
        ),
        (
            {"organizations": [{"organizationid": ORGANIZATION, "requireapprovalforuseremail": "yes"}]},
            "requireapprovalforuseremail must be bool",
        ),
        (
            {
                "organizations": [
                    {"organizationid": ORGANIZATION, "maxdepthforhierarchicalsecuritymodel": True}
                ]
            },
            "maxdepthforhierarchicalsecuritymodel must be int",
        ),
    ],
)
def test_malformed_new_tables_name_the_problem(tmp_path: Path, change: dict[str, Any], problem: str) -> None:
    path = tmp_path / "org.json"
    data = org_data()
    data.pop("teammemberships")
    path.write_text(json.dumps({**data, **change}))
    with pytest.raises(FixtureError) as caught:
        load_fixture(path)
    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_team_memberships_get_an_id_when_they_lack_one() -> None:
    data = org_data()
    data["teammemberships"] = [{"teamid": TEAM, "systemuserid": MEMBER}]
    [membership] = Org.from_dict(data).rows("teammemberships")
    assert membership["teammembershipid"]
