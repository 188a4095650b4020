"""One-click fixes from facts: each fix id's exact changes, when none is proposed, and the report contract."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bot.diagnosis import ExchangeFacts, Facts, FilterFacts, Finding, RecordFacts, Report, diagnose
from bot.diagnosis.fixes import Change, Fix, filter_id, propose
from bot.diagnosis.selection import NAME_LIMIT, describe_selection, selection
from tests.support.diagnosis import HEALTHY, MATCHING, RECORD, USER, facts

MISSED = replace(MATCHING, matches=False, id="q-active")
OWNER_ONLY = replace(RECORD, roles=("owner",))
NOT_IN_OUTLOOK = ExchangeFacts(found=False)


def outside(record: RecordFacts = OWNER_ONLY, *filters: FilterFacts, **changes: object) -> Facts:
    """The record misses the person's only active filter: outside-sync-filter fails."""
    return facts(record=record, filters=(MISSED, *filters), exchange=NOT_IN_OUTLOOK, **changes)


def only_fix(report: Report) -> Fix:
    assert len(report.fixes) == 1, report.fixes
    return report.fixes[0]


def conditions(fetchxml: str) -> list[tuple[str, str, str | None]]:
    root = ET.fromstring(fetchxml)
    return [(c.get("attribute", ""), c.get("operator", ""), c.get("value")) for c in root.iter("condition")]


# --- each fix id's changes ----------------------------------------------------------------------------


def test_add_filter_creates_a_personal_sync_filter_selecting_what_the_person_owns() -> None:
    report = diagnose(outside())
    assert report.causes == ["outside-sync-filter"]
    fix = only_fix(report)
    assert (fix.id, fix.finding, fix.who) == ("add-filter", "outside-sync-filter", "self")
    assert fix.title == "Add a sync filter: Appointments I own"
    row = filter_id(USER.systemuserid, "appointment", "owner")
    fetchxml = str(fix.changes[2].new)
    assert fix.changes == (
        Change("userqueries", None, "userqueryid", None, row),
        Change("userqueries", None, "name", None, "Appointments I own"),
        Change("userqueries", None, "fetchxml", None, fetchxml),
        Change("userqueries", None, "querytype", None, 256),
        Change("userqueries", None, "returnedtypecode", None, "appointment"),
    )
    root = ET.fromstring(fetchxml)
    assert root.tag == "fetch" and root.get("version") == "1.0" and root.get("mapping") == "logical"
    entity = root.find("entity")
    assert entity is not None and entity.get("name") == "appointment"
    assert [a.get("name") for a in entity.findall("attribute")] == ["subject", "activityid"]
    assert conditions(fetchxml) == [("ownerid", "eq-userid", None)]


def test_activate_filter_turns_back_on_the_inactive_filter_that_selects_the_record() -> None:
    old = FilterFacts("My old appointments", "user", active=False, matches=True, id="q-old")
    other = FilterFacts("Unrelated", "user", active=False, matches=False, id="q-other")
    fix = only_fix(diagnose(outside(OWNER_ONLY, other, old)))
    assert (fix.id, fix.finding, fix.who) == ("activate-filter", "outside-sync-filter", "self")
    assert fix.title == "Turn your filter 'My old appointments' back on"
    assert fix.changes == (
        Change("userqueries", "q-old", "statecode", 1, 0),
        Change("userqueries", "q-old", "statuscode", 2, 1),
    )


def test_an_organization_filter_that_is_off_is_not_the_persons_to_turn_on() -> None:
    system = FilterFacts("Org appointments", "system", active=False, matches=True, id="s-1")
    assert only_fix(diagnose(outside(OWNER_ONLY, system))).id == "add-filter"


def test_no_sync_filter_turns_back_on_the_most_recently_changed_inactive_filter() -> None:
    older = FilterFacts("Old", "user", active=False, id="q1", modified_on=datetime(2026, 1, 1, tzinfo=UTC))
    newer = FilterFacts("Newer", "user", active=False, id="q2", modified_on=datetime(2026, 6, 1, tzinfo=UTC))
    undated = FilterFacts("Undated", "user", active=False, id="q3")
    system = FilterFacts("Org", "system", active=False, id="s1", modified_on=datetime(2026, 9, 1, tzinfo=UTC))
    report = diagnose(facts(filters=(older, undated, system, newer), exchange=NOT_IN_OUTLOOK))
    assert report.causes == ["no-sync-filter"]
    fix = only_fix(report)
    assert (fix.id, fix.finding, fix.title) == (
        "activate-filter",
        "no-sync-filter",
        "Turn your filter 'Newer' back on",
    )
    assert [c.row for c in fix.changes] == ["q2", "q2"]
    # One that would select the record (Dataverse ran it as the person) comes first, however old.
    selecting = replace(older, matches=True)
    assert only_fix(diagnose(facts(filters=(selecting, newer)))).changes[0].row == "q1"


def test_no_sync_filter_without_an_inactive_filter_of_theirs_has_no_fix() -> None:
    report = diagnose(facts(filters=()))
    assert report.causes == ["no-sync-filter"] and report.fixes == ()


@pytest.mark.parametrize(
    ("mailbox", "finding"),
    [
        (replace(HEALTHY, act_status=0, test_completed_on=None), "mailbox-not-tested"),
        (replace(HEALTHY, act_status=2), "act-sync-failing"),
    ],
)
def test_schedule_mailbox_test(mailbox: object, finding: str) -> None:
    fix = only_fix(diagnose(facts(mailbox=mailbox)))
    assert (fix.id, fix.finding, fix.who) == ("schedule-mailbox-test", finding, "agent")
    assert fix.title == "Test and enable the mailbox alexw@example.com"
    assert fix.changes == (Change("mailboxes", "m1", "testemailconfigurationscheduled", False, True),)


def test_no_test_is_scheduled_twice_nor_where_another_org_syncs_the_mailbox() -> None:
    scheduled = replace(HEALTHY, act_status=2, test_scheduled=True)
    assert diagnose(facts(mailbox=scheduled)).fixes == ()
    elsewhere = replace(HEALTHY, act_status=2, primary_for_exchange=False)
    report = diagnose(facts(mailbox=elsewhere))
    assert report.causes == ["act-sync-failing"] and report.warnings == ["act-other-org"]
    assert report.fixes == ()


def test_set_act_server_side_sync() -> None:
    fix = only_fix(diagnose(facts(mailbox=replace(HEALTHY, act_delivery=2))))
    assert (fix.id, fix.finding, fix.who) == ("set-act-server-side-sync", "act-not-server-side-sync", "agent")
    assert "server-side synchronization" in fix.title and "alexw@example.com" in fix.title
    assert fix.changes == (Change("mailboxes", "m1", "actdeliverymethod", 2, 1),)


def test_approve_email() -> None:
    fix = only_fix(diagnose(facts(mailbox=replace(HEALTHY, approval=2))))
    assert (fix.id, fix.finding, fix.who) == ("approve-email", "mailbox-not-approved", "agent")
    assert fix.title == "Approve the email address alexw@example.com"
    assert fix.changes == (Change("mailboxes", "m1", "emailrouteraccessapproval", 2, 1),)


def test_fixes_come_in_the_reports_fix_order_each_on_its_finding() -> None:
    mailbox = replace(HEALTHY, approval=3, act_status=0, test_completed_on=None)
    report = diagnose(facts(mailbox=mailbox))
    assert report.causes == ["mailbox-not-approved", "mailbox-not-tested"]
    assert [f.id for f in report.fixes] == ["approve-email", "schedule-mailbox-test"]
    for finding in report.with_status("fail"):
        assert [fix.finding for fix in finding.fixes] == [finding.id]
    assert propose(facts(mailbox=mailbox), report) == report.fixes
    assert report.fix("schedule-mailbox-test") is report.fixes[1] and report.fix("add-filter") is None


# --- when there is nothing to propose -------------------------------------------------------------------


def test_a_fix_needs_its_target() -> None:
    no_entra_id = replace(USER, aad_object_id=None)
    assert diagnose(outside(user=no_entra_id)).fixes == ()  # they apply their filters as themselves
    nameless = FilterFacts("Old", "user", active=False)  # no id: nothing to turn on
    assert diagnose(facts(filters=(nameless,))).fixes == ()
    no_id = replace(HEALTHY, mailboxid="", act_delivery=2)
    report = diagnose(facts(mailbox=no_id))
    assert report.causes == ["act-not-server-side-sync"] and report.fixes == ()


def test_only_fail_findings_carry_fixes() -> None:
    variants = [
        facts(),
        outside(),
        facts(mailbox=replace(HEALTHY, approval=2), approval_required=False),  # a warning only
        facts(mailbox=replace(HEALTHY, act_status=0, test_scheduled=True)),  # a warning only
        facts(mailbox=replace(HEALTHY, act_delivery=0)),  # Outlook add-in: a warning
        facts(record=replace(RECORD, statecode=2, statuscode=4)),  # shown as free
        facts(
            mailbox=replace(HEALTHY, last_successful_sync=datetime(2026, 1, 1, tzinfo=UTC)),
            exchange=NOT_IN_OUTLOOK,
        ),
        facts(mailbox=replace(HEALTHY, approval=2, act_delivery=2, act_status=2)),
    ]
    carried = 0
    for variant in variants:
        report = diagnose(variant)
        for finding in report.findings:
            assert finding.status == "fail" or finding.fixes == (), finding
            carried += len(finding.fixes)
        assert {fix.finding for fix in report.fixes} <= set(report.causes)
    assert carried >= 3
    fix = only_fix(diagnose(outside()))
    with pytest.raises(ValueError, match="pass finding carries no fixes"):
        Finding("outside-sync-filter", "pass", "Fine", fixes=(fix,))
    with pytest.raises(ValueError, match="another finding"):
        Finding("no-sync-filter", "fail", "None", fixes=(fix,))


# --- the filter a fix adds ------------------------------------------------------------------------------


def test_the_same_filter_proposed_twice_is_the_same_row() -> None:
    first, again = diagnose(outside()).fixes[0], diagnose(outside()).fixes[0]
    assert first == again
    someone_else = diagnose(outside(user=replace(USER, systemuserid="a2"))).fixes[0]
    optional = diagnose(outside(replace(RECORD, roles=("optional_attendee",)))).fixes[0]
    ids = {fix.changes[0].new for fix in (first, someone_else, optional)}
    assert len(ids) == 3
    # The record alone: one filter per record, not one for all of them.
    alone = [diagnose(outside(replace(RECORD, id=i, roles=()))).fixes[0].changes[0].new for i in ("r1", "r2")]
    assert alone[0] != alone[1]


@pytest.mark.parametrize(
    ("roles", "name", "mask"),
    [
        (("organizer", "owner"), "Appointments I organize", "7"),
        (("required_attendee",), "Appointments where I'm a required attendee", "5"),
        (("optional_attendee", "owner"), "Appointments where I'm an optional attendee", "6"),
    ],
)
def test_an_appointment_is_selected_by_the_persons_part_in_it(
    roles: tuple[str, ...], name: str, mask: str
) -> None:
    chosen = selection(replace(RECORD, roles=roles))
    assert chosen.name == name
    root = ET.fromstring(chosen.fetchxml)
    link = root.find("entity/link-entity")
    assert link is not None
    assert (link.get("name"), link.get("from"), link.get("to")) == (
        "activityparty",
        "activityid",
        "activityid",
    )
    assert conditions(chosen.fetchxml) == [
        ("partyid", "eq-userid", None),
        ("participationtypemask", "eq", mask),
    ]
    assert root.get("distinct") == "true"


@pytest.mark.parametrize(
    ("record", "name", "expected"),
    [
        (
            RecordFacts(type="contact", id="k1", subject="Olivia", statecode=0, team_owned=True),
            "Active contacts my teams own",
            [("ownerid", "eq-userteams", None), ("statecode", "eq", "0")],
        ),
        (
            RecordFacts(type="contact", id="k1", subject="Olivia", statecode=1, roles=("owner",)),
            "Contacts I own",
            [("ownerid", "eq-userid", None)],
        ),
        (
            RecordFacts(type="task", id="t1", subject="Send proposal", roles=("owner",)),
            "Tasks I own",
            [("ownerid", "eq-userid", None)],
        ),
        (
            RecordFacts(type="task", id="t1", subject="Send proposal", roles=("required_attendee",)),
            "This task: Send proposal",
            [("activityid", "eq", "t1")],
        ),
        (
            RecordFacts(type="appointment", id="r9", subject="Kickoff", team_owned=False),
            "This appointment: Kickoff",
            [("activityid", "eq", "r9")],
        ),
        (
            RecordFacts(type="appointment", id="s1", subject="Weekly", recurrence="series"),
            "This recurring appointment: Weekly",
            [("seriesid", "eq", "s1")],
        ),
        (
            RecordFacts(type="contact", id="k2", subject=None),
            "This contact (k2)",
            [("contactid", "eq", "k2")],
        ),
    ],
)
def test_owners_teams_and_the_record_alone(record: RecordFacts, name: str, expected: list[object]) -> None:
    chosen = selection(record)
    assert chosen.name == name
    assert conditions(chosen.fetchxml) == expected
    entity = ET.fromstring(chosen.fetchxml).find("entity")
    assert entity is not None and entity.get("name") == record.type


def test_a_long_subject_is_clipped_to_what_a_filter_name_holds() -> None:
    chosen = selection(replace(RECORD, subject="x" * 500, roles=()))
    assert len(chosen.name) == NAME_LIMIT and chosen.name.startswith("This appointment: x")


def test_words_in_a_subject_are_never_fetchxml() -> None:
    hostile = replace(RECORD, subject='"/><condition attribute="ownerid" operator="not-null"/>', roles=())
    chosen = selection(hostile)
    assert conditions(chosen.fetchxml) == [("activityid", "eq", "r1")]


# --- the report contract (design.md section 4) ----------------------------------------------------------


def test_a_report_with_fixes_round_trips_in_the_contract_shape() -> None:
    report = diagnose(outside(mailbox=replace(HEALTHY, act_delivery=2)))
    assert [f.id for f in report.fixes] == ["set-act-server-side-sync", "add-filter"]
    stored = json.loads(json.dumps(report.to_dict()))
    assert Report.from_dict(stored) == report
    assert Report.from_dict(stored).to_dict() == stored
    by_id = {f["id"]: f for f in stored["findings"]}
    assert by_id["act-not-server-side-sync"]["fixes"] == [
        {
            "id": "set-act-server-side-sync",
            "finding": "act-not-server-side-sync",
            "title": report.fixes[0].title,
            "who": "agent",
            "changes": [
                {"table": "mailboxes", "id": "m1", "column": "actdeliverymethod", "from": 2, "to": 1}
            ],
        }
    ]
    added = by_id["outside-sync-filter"]["fixes"][0]
    assert set(added) == {"id", "finding", "title", "who", "changes"}
    assert all(
        set(c) == {"table", "id", "column", "from", "to"} and c["id"] is None for c in added["changes"]
    )
    assert all("fixes" not in f for f in stored["findings"] if f["status"] != "fail")


@pytest.mark.parametrize(
    ("fixes", "complaint"),
    [
        ("fix it", "'fixes' must be a list"),
        ([{"id": "reboot", "finding": "x", "title": "t", "who": "self", "changes": []}], "not a fix"),
        (
            [{"id": "add-filter", "finding": "x", "title": "t", "who": "self", "changes": "all"}],
            "list of objects",
        ),
    ],
)
def test_a_finding_with_broken_fixes_is_refused(fixes: object, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        Finding.from_dict({"id": "x", "status": "fail", "title": "t", "fixes": fixes})


@pytest.mark.parametrize(
    ("record", "words"),
    [
        (replace(RECORD, roles=("owner",)), "appointments you own"),
        (replace(RECORD, roles=("optional_attendee",)), "appointments where you're an optional attendee"),
        (replace(RECORD, roles=("organizer",)), "appointments you organize"),
        (
            RecordFacts(type="contact", id="k1", subject="O", statecode=0, team_owned=True),
            "active contacts your teams own",
        ),
        (RecordFacts(type="task", id="t1", subject="Prepare pricing"), "only this task"),
    ],
)
def test_what_a_proposed_filter_selects_reads_as_its_name_says(record: RecordFacts, words: str) -> None:
    """The confirmation card says what the new filter selects, read back from the FetchXML it creates."""
    assert describe_selection(selection(record).fetchxml, record.type) == words


def test_a_filter_of_another_shape_or_not_xml_is_named_as_what_it_is() -> None:
    assert describe_selection("<fetch><entity name='appointment'/></fetch>", "appointment") == (
        "the appointments its query names"
    )
    assert describe_selection("<fetch", "task") == "the tasks its query names"
    assert describe_selection(None, None) == "the records its query names"
