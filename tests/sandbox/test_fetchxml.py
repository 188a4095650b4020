"""The sandbox's FetchXML evaluation follows Dataverse's semantics, and refuses what it doesn't know."""

from __future__ import annotations

from typing import Any

import pytest

from bot.sandbox.fetch import run_fetch, sql_like
from bot.sandbox.odata import QueryError
from bot.sandbox.org import Org

ME = "a1000000-0000-4000-8000-000000000001"
OTHER = "a1000000-0000-4000-8000-000000000002"


def appt(n: int, subject: str, owner: str = ME, **extra: Any) -> dict[str, Any]:
    return {
        "activityid": f"c3000000-0000-4000-8000-{n:012d}",
        "subject": subject,
        "_ownerid_value": owner,
        **extra,
    }


def party(n: int, activity: int, who: str, mask: int) -> dict[str, Any]:
    return {
        "activitypartyid": f"d4000000-0000-4000-8000-{n:012d}",
        "_activityid_value": f"c3000000-0000-4000-8000-{activity:012d}",
        "_partyid_value": who,
        "participationtypemask": mask,
    }


@pytest.fixture
def org() -> Org:
    return Org.from_dict(
        {
            "systemusers": [{"systemuserid": ME}, {"systemuserid": OTHER}],
            "appointments": [
                appt(1, "SYNC review", statecode=0, scheduledstart="2026-11-27T15:00:00Z"),
                appt(2, "Customer visit", owner=OTHER, statecode=3, scheduledstart="2026-11-20T15:00:00Z"),
                appt(3, "Planning", statecode=2),
                appt(4, "100% done"),
            ],
            "activityparties": [
                party(1, 1, ME, 7),
                party(2, 2, ME, 9),
                party(3, 2, OTHER, 7),
                party(4, 3, ME, 6),
            ],
        }
    )


def subjects(org: Org, body: str, user: str = ME, fetch_attrs: str = "") -> list[str]:
    _, rows = run_fetch(
        f'<fetch {fetch_attrs}><entity name="appointment"><attribute name="subject"/>{body}</entity></fetch>',
        org,
        user,
    )
    return sorted(r.get("subject", "") for r in rows)


def test_like_is_sql_server_like() -> None:
    assert sql_like("%[SYNC]%").fullmatch("a y b")  # a class: any of S, Y, N, C, case-insensitive
    assert not sql_like("%[SYNC]%").fullmatch("bob")
    assert sql_like("Cust_mer%").fullmatch("customer visit")
    assert sql_like("[^a]%").fullmatch("bcd") and not sql_like("[^a]%").fullmatch("abc")
    assert sql_like("100.%").fullmatch("100.5") and not sql_like("100.%").fullmatch("10025")


def test_conditions(org: Org) -> None:
    assert subjects(org, '<filter><condition attribute="ownerid" operator="eq-userid"/></filter>') == [
        "100% done",
        "Planning",
        "SYNC review",
    ]
    assert subjects(org, '<filter><condition attribute="ownerid" operator="ne-userid"/></filter>') == [
        "Customer visit"
    ]
    assert subjects(
        org, '<filter><condition attribute="subject" operator="like" value="cust%"/></filter>'
    ) == ["Customer visit"]
    assert subjects(
        org, '<filter><condition attribute="subject" operator="not-like" value="%e%"/></filter>'
    ) == ["Planning"]
    assert subjects(
        org,
        '<filter><condition attribute="statecode" operator="in"><value>0</value><value>2</value></condition></filter>',
    ) == ["Planning", "SYNC review"]
    assert subjects(
        org,
        '<filter><condition attribute="statecode" operator="not-in"><value>0</value><value>2</value></condition></filter>',
    ) == ["Customer visit"]
    assert subjects(org, '<filter><condition attribute="statecode" operator="null"/></filter>') == [
        "100% done"
    ]
    assert subjects(
        org,
        '<filter><condition attribute="scheduledstart" operator="gt" value="2026-11-21T00:00:00Z"/></filter>',
    ) == ["SYNC review"]
    assert subjects(org, '<filter><condition attribute="statecode" operator="ge" value="2"/></filter>') == [
        "Customer visit",
        "Planning",
    ]
    assert subjects(
        org, '<filter><condition attribute="subject" operator="eq" value="planning"/></filter>'
    ) == ["Planning"]


def test_nested_filters_and_or(org: Org) -> None:
    body = (
        '<filter type="or"><condition attribute="subject" operator="eq" value="Planning"/>'
        '<filter type="and"><condition attribute="ownerid" operator="ne-userid"/>'
        '<condition attribute="statecode" operator="eq" value="3"/></filter></filter>'
    )
    assert subjects(org, body) == ["Customer visit", "Planning"]


def test_inner_link_entity_to_activityparty(org: Org) -> None:
    body = (
        '<link-entity name="activityparty" from="activityid" to="activityid">'
        '<filter><condition attribute="partyid" operator="eq-userid"/>'
        '<condition attribute="participationtypemask" operator="in"><value>5</value><value>7</value></condition>'
        "</filter></link-entity>"
    )
    assert subjects(org, body) == ["SYNC review"]  # organizer; owner-only and optional attendee don't count
    assert subjects(org, body, user=OTHER) == ["Customer visit"]


def test_outer_link_entity_with_entityname_condition(org: Org) -> None:
    body = (
        '<link-entity name="activityparty" from="activityid" to="activityid" link-type="outer" alias="org">'
        '<filter><condition attribute="participationtypemask" operator="eq" value="7"/></filter></link-entity>'
        '<filter><condition entityname="org" attribute="activitypartyid" operator="null"/></filter>'
    )
    assert subjects(org, body) == ["100% done", "Planning"]  # appointments with no organizer


def test_top_and_order(org: Org) -> None:
    rows = subjects(org, '<order attribute="subject" descending="true"/>', fetch_attrs='top="2"')
    assert len(rows) == 2


def test_results_omit_null_columns(org: Org) -> None:
    _, rows = run_fetch(
        '<fetch><entity name="appointment"><attribute name="statecode"/><attribute name="subject"/></entity></fetch>',
        org,
        ME,
    )
    done = next(r for r in rows if r["subject"] == "100% done")
    assert "statecode" not in done
    assert done["activityid"].startswith("c3000000")


@pytest.mark.parametrize(
    ("xml", "named"),
    [
        (
            '<fetch><entity name="appointment"><filter><condition attribute="createdon" operator="last-x-days" value="3"/></filter></entity></fetch>',
            "last-x-days",
        ),
        ('<fetch aggregate="true"><entity name="appointment"/></fetch>', "aggregate"),
        ('<fetch><entity name="queue"/></fetch>', "queue"),
        ('<fetch><entity name="appointment"><filter type="xor"/></entity></fetch>', "xor"),
        (
            '<fetch><entity name="appointment"><link-entity name="activityparty" from="activityid" to="activityid" link-type="any"/></entity></fetch>',
            "any",
        ),
        ("<fetch><entity name='appointment'>", "parse"),
        ('<!DOCTYPE x [<!ENTITY a "b">]><fetch><entity name="appointment"/></fetch>', "parse"),
    ],
)
def test_unsupported_constructs_are_refused_by_name(org: Org, xml: str, named: str) -> None:
    with pytest.raises(QueryError, match=named):
        run_fetch(xml, org, ME)
