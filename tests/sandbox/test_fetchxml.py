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


# --- linked rows: conditions hold on one joined row -------------------------------------------------


@pytest.fixture
def parties_org() -> Org:
    """Appointment 1: I organize, someone else attends. 2: I attend. 3: no parties."""
    return Org.from_dict(
        {
            "systemusers": [{"systemuserid": ME}, {"systemuserid": OTHER}],
            "appointments": [appt(1, "I organize"), appt(2, "I attend"), appt(3, "Nobody")],
            "activityparties": [party(1, 1, ME, 7), party(2, 1, OTHER, 5), party(3, 2, ME, 5)],
        }
    )


def test_entityname_conditions_hold_on_the_same_joined_row(parties_org: Org) -> None:
    body = (
        '<link-entity name="activityparty" from="activityid" to="activityid" alias="ap">'
        '<attribute name="participationtypemask"/></link-entity>'
        '<filter><condition entityname="ap" attribute="partyid" operator="eq-userid"/>'
        '<condition entityname="ap" attribute="participationtypemask" operator="eq" value="5"/></filter>'
    )
    # "I organize" has a party that is me and a party with mask 5, but no one party that is both.
    assert subjects(parties_org, body) == ["I attend"]
    assert subjects(parties_org, body, user=OTHER) == ["I organize"]
    _, [row] = run_fetch(f'<fetch><entity name="appointment">{body}</entity></fetch>', parties_org, OTHER)
    assert row["ap.participationtypemask"] == 5  # linked attributes come from the row that matched


def test_link_entity_filter_conditions_hold_on_the_same_row(parties_org: Org) -> None:
    body = (
        '<link-entity name="activityparty" from="activityid" to="activityid">'
        '<filter><condition attribute="partyid" operator="eq-userid"/>'
        '<condition attribute="participationtypemask" operator="eq" value="5"/></filter></link-entity>'
    )
    assert subjects(parties_org, body) == ["I attend"]


def test_entityname_conditions_across_two_links_and_an_or(parties_org: Org) -> None:
    body = (
        '<link-entity name="activityparty" from="activityid" to="activityid" alias="me">'
        '<filter><condition attribute="partyid" operator="eq-userid"/></filter></link-entity>'
        '<link-entity name="activityparty" from="activityid" to="activityid" alias="anyone"/>'
        '<filter type="or"><condition entityname="me" attribute="participationtypemask" operator="eq" value="7"/>'
        '<condition entityname="anyone" attribute="participationtypemask" operator="eq" value="6"/></filter>'
    )
    assert subjects(parties_org, body) == ["I organize"]


def test_outer_link_without_a_match_gives_nulls_to_nested_aliases(parties_org: Org) -> None:
    body = (
        '<link-entity name="activityparty" from="activityid" to="activityid" link-type="outer" alias="ap">'
        '<link-entity name="systemuser" from="systemuserid" to="partyid" alias="u"/></link-entity>'
        '<filter><condition entityname="u" attribute="systemuserid" operator="null"/></filter>'
    )
    assert subjects(parties_org, body) == ["Nobody"]


def test_an_unknown_entityname_is_refused_even_on_an_empty_table() -> None:
    xml = (
        '<fetch><entity name="appointment"><filter>'
        '<condition entityname="nope" attribute="subject" operator="null"/></filter></entity></fetch>'
    )
    with pytest.raises(QueryError, match="'nope' names no link-entity"):
        run_fetch(xml, Org.from_dict({}), ME)


# --- begins-with / ends-with are LIKE 'value%' / '%value' --------------------------------------------


@pytest.fixture
def wildcard_org() -> Org:
    names = ["100% done", "1000 units", "SYNC review", "Planning", "Customer visit", "Fix_it"]
    return Org.from_dict(
        {
            "appointments": [appt(n, name) for n, name in enumerate(names, 1)]
            + [{**appt(9, ""), "subject": None}]
        }
    )


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("begins-with", "100%", ["100% done", "1000 units"]),  # % in the value is a wildcard
        ("begins-with", "100[%]", ["100% done"]),  # in brackets, a literal
        ("begins-with", "[SP]", ["Planning", "SYNC review"]),
        ("begins-with", "sync", ["SYNC review"]),  # without case
        ("begins-with", "Cust_mer", ["Customer visit"]),
        ("ends-with", "_it", ["Customer visit", "Fix_it"]),  # _ is any one character
        ("ends-with", "[_]it", ["Fix_it"]),
        ("not-begin-with", "[SP]", ["100% done", "1000 units", "Customer visit", "Fix_it"]),
        ("not-end-with", "_it", ["100% done", "1000 units", "Planning", "SYNC review"]),
    ],
)
def test_begins_and_ends_with_honour_like_wildcards(
    wildcard_org: Org, operator: str, value: str, expected: list[str]
) -> None:
    body = f'<filter><condition attribute="subject" operator="{operator}" value="{value}"/></filter>'
    assert (
        subjects(wildcard_org, body) == expected
    )  # a null subject meets neither an operator nor its negation


# --- team, hierarchy and business unit operators ---------------------------------------------------

BOSS, REPORT, DEEP, DEEPER, DEEPEST = (f"a1000000-0000-4000-8000-00000000001{n}" for n in range(5))
MY_TEAM, REPORTS_TEAM, OTHER_TEAM = (f"b1000000-0000-4000-8000-00000000000{n}" for n in range(1, 4))
UNIT, OTHER_UNIT = "b2000000-0000-4000-8000-000000000001", "b2000000-0000-4000-8000-000000000002"


def hierarchy_org(**organization: Any) -> Org:
    """BOSS > ME > REPORT > DEEP > DEEPER > DEEPEST (managers above); one appointment owned by each, by
    OTHER, and by each team; my team, REPORT's team, OTHER's team. Everyone reads every appointment, so
    only the operators decide what a query finds."""
    chain = [(BOSS, None), (ME, BOSS), (REPORT, ME), (DEEP, REPORT), (DEEPER, DEEP), (DEEPEST, DEEPER)]
    users = [
        {"systemuserid": u, "_parentsystemuserid_value": m, "_businessunitid_value": UNIT} for u, m in chain
    ]
    owners = {"boss": BOSS, "me": ME, "report": REPORT, "deep": DEEP, "deeper": DEEPER, "deepest": DEEPEST}
    owners |= {"other": OTHER, "my team": MY_TEAM, "reports team": REPORTS_TEAM, "other team": OTHER_TEAM}
    return Org.from_dict(
        {
            "systemusers": [*users, {"systemuserid": OTHER, "_businessunitid_value": OTHER_UNIT}],
            "teams": [{"teamid": t, "name": t} for t in (MY_TEAM, REPORTS_TEAM, OTHER_TEAM)],
            "teammemberships": [
                {"teamid": MY_TEAM, "systemuserid": ME},
                {"teamid": REPORTS_TEAM, "systemuserid": REPORT},
                {"teamid": OTHER_TEAM, "systemuserid": OTHER},
            ],
            "appointments": [appt(n, name, owner=o) for n, (name, o) in enumerate(owners.items(), 1)],
            "organizations": [{"organizationid": "b3000000-0000-4000-8000-000000000001", **organization}],
            "$privileges": {u: ["prvReadActivity"] for u in (*(u for u, _ in chain), OTHER)},
        }
    )


def owned(org: Org, operator: str, user: str = ME) -> list[str]:
    return subjects(
        org, f'<filter><condition attribute="ownerid" operator="{operator}"/></filter>', user=user
    )


def test_team_operators() -> None:
    org = hierarchy_org()
    assert owned(org, "eq-userteams") == ["my team"]
    assert owned(org, "eq-useroruserteams") == ["me", "my team"]
    assert owned(org, "eq-useroruserteams", user=BOSS) == ["boss"]  # in no team


def test_hierarchy_operators_reach_the_org_depth() -> None:
    org = hierarchy_org()  # no depth set: 3 levels below
    assert owned(org, "eq-useroruserhierarchy") == ["deep", "deeper", "me", "report"]
    assert owned(org, "eq-useroruserhierarchyandteams") == [
        "deep",
        "deeper",
        "me",
        "my team",
        "report",
        "reports team",
    ]
    shallow = hierarchy_org(maxdepthforhierarchicalsecuritymodel=1)
    assert owned(shallow, "eq-useroruserhierarchy") == ["me", "report"]
    assert owned(shallow, "eq-useroruserhierarchy", user=DEEPEST) == ["deepest"]


def test_business_unit_operators() -> None:
    org = hierarchy_org()
    for row in org.rows("appointments"):
        row["_owningbusinessunit_value"] = OTHER_UNIT if row["subject"] == "other" else UNIT
    row["_owningbusinessunit_value"] = None  # the last (OTHER's team): no unit, meets neither
    body = '<filter><condition attribute="owningbusinessunit" operator="{}"/></filter>'
    assert subjects(org, body.format("eq-businessid"), user=OTHER) == ["other"]
    assert "other" not in subjects(org, body.format("ne-businessid"), user=OTHER)
    assert len(subjects(org, body.format("ne-businessid"), user=OTHER)) == len(org.rows("appointments")) - 2
