"""Each documented rule on its own, with the edges: null columns, both states of each choice value."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bot.diagnosis import ExchangeFacts, Facts, FilterFacts, diagnose
from tests.support.diagnosis import HEALTHY, MATCHING, RECORD, USER, facts


def status(report_facts: Facts, finding_id: str) -> str | None:
    finding = diagnose(report_facts).finding(finding_id)
    return None if finding is None else finding.status


def test_healthy_user_and_record_have_no_cause() -> None:
    report = diagnose(facts())
    assert report.causes == []
    assert report.warnings == []
    assert report.in_exchange is True
    assert all(f.status == "pass" for f in report.findings)


def test_unknown_teams_user_is_the_only_finding() -> None:
    report = diagnose(facts(user=None, mailbox=None, record=None, filters=None))
    assert report.causes == ["teams-user-unknown"]
    assert [f.id for f in report.findings] == ["teams-user-unknown"]
    assert report.user.email == "alexw@example.com" and report.user.systemuserid is None
    assert report.findings[0].steps, "a failing finding tells the user what to do"


def test_unknown_user_given_by_object_id_reports_the_id() -> None:
    report = diagnose(facts(user_ref="0f0f0f0f-0000-4000-8000-000000000000", user=None))
    assert report.user.aad_object_id == "0f0f0f0f-0000-4000-8000-000000000000"
    assert report.user.email is None


@pytest.mark.parametrize(("disabled", "expected"), [(True, "fail"), (False, "pass"), (None, "pass")])
def test_user_disabled(disabled: bool | None, expected: str) -> None:
    assert status(facts(user=replace(USER, is_disabled=disabled)), "user-disabled") == expected


def test_missing_mailbox_fails_and_skips_mailbox_rules() -> None:
    report = diagnose(facts(mailbox=None))
    assert "mailbox-missing" in report.causes
    for skipped in ("mailbox-inactive", "act-not-server-side-sync", "mailbox-not-tested", "sync-pending"):
        assert report.finding(skipped) is None


@pytest.mark.parametrize(
    ("state", "expected", "shown"),
    [(0, "pass", "Active"), (1, "fail", "Inactive"), (None, "pass", "unknown")],
)
def test_mailbox_inactive(state: int | None, expected: str, shown: str) -> None:
    finding = diagnose(facts(mailbox=replace(HEALTHY, statecode=state))).finding("mailbox-inactive")
    assert finding is not None and finding.status == expected
    assert finding.evidence == {"state": shown}  # a null state is not shown as Active


@pytest.mark.parametrize(
    ("approval", "expected"), [(0, "fail"), (1, "pass"), (2, "fail"), (3, "fail"), (None, "unknown")]
)
def test_mailbox_not_approved(approval: int | None, expected: str) -> None:
    finding = diagnose(facts(mailbox=replace(HEALTHY, approval=approval))).finding("mailbox-not-approved")
    assert finding is not None and finding.status == expected
    if expected == "fail":
        assert finding.evidence["email_approval"] in ("Empty", "Pending Approval", "Rejected")


@pytest.mark.parametrize(
    ("method", "sss", "outlook"),
    [(0, "pass", "warn"), (1, "pass", "pass"), (2, "fail", "pass"), (None, "unknown", None)],
)
def test_act_delivery_method(method: int | None, sss: str, outlook: str | None) -> None:
    f = facts(mailbox=replace(HEALTHY, act_delivery=method))
    assert status(f, "act-not-server-side-sync") == sss
    assert status(f, "act-outlook-client") == outlook


def test_legacy_outlook_client_is_a_warning_not_a_cause() -> None:
    report = diagnose(facts(mailbox=replace(HEALTHY, act_delivery=0, act_status=0)))
    assert report.causes == []
    assert "act-outlook-client" in report.warnings
    # the test status is about server-side sync: not judged for the add-in
    assert report.finding("mailbox-not-tested") is None


def test_act_none_reports_delivery_not_the_untested_status() -> None:
    report = diagnose(facts(mailbox=replace(HEALTHY, act_delivery=2, act_status=0)))
    assert report.causes == ["act-not-server-side-sync"]


@pytest.mark.parametrize(
    ("act_status", "scheduled", "tested", "failing"),
    [
        (0, False, "fail", None),
        (None, False, "fail", None),
        (0, True, "warn", None),
        (1, False, "pass", "pass"),
        (2, False, "pass", "fail"),
    ],
)
def test_test_and_enable_status(
    act_status: int | None, scheduled: bool, tested: str, failing: str | None
) -> None:
    f = facts(mailbox=replace(HEALTHY, act_status=act_status, test_scheduled=scheduled))
    assert status(f, "mailbox-not-tested") == tested
    assert status(f, "act-sync-failing") == failing


def test_scheduled_test_gets_wait_steps() -> None:
    finding = diagnose(facts(mailbox=replace(HEALTHY, act_status=0, test_scheduled=True))).finding(
        "mailbox-not-tested"
    )
    assert finding is not None and finding.status == "warn"
    assert "Wait" in finding.steps[0]


def test_failing_sync_shows_the_recorded_error_as_evidence() -> None:
    mailbox = replace(
        HEALTHY, act_status=2, last_sync_error={"lastsyncerrorcode": -2147220891, "lastsyncerrorcount": 14}
    )
    finding = diagnose(facts(mailbox=mailbox)).finding("act-sync-failing")
    assert finding is not None and finding.status == "fail"
    assert finding.evidence["last_sync_error"] == {"lastsyncerrorcode": -2147220891, "lastsyncerrorcount": 14}


@pytest.mark.parametrize(("enabled", "expected"), [(False, "warn"), (True, "pass"), (None, None)])
def test_act_not_enabled_is_a_proposed_warning(enabled: bool | None, expected: str | None) -> None:
    f = facts(mailbox=replace(HEALTHY, enabled_for_act=enabled))
    assert status(f, "act-not-enabled") == expected
    assert "act-not-enabled" not in diagnose(f).causes


def test_no_active_filter_means_nothing_syncs() -> None:
    inactive = replace(MATCHING, active=False)
    report = diagnose(facts(filters=(inactive,)))
    assert report.causes == ["no-sync-filter"]
    finding = report.finding("no-sync-filter")
    assert finding is not None and finding.evidence["inactive_filters"] == ["My Appointments"]
    assert report.finding("outside-sync-filter") is None


def test_no_filters_at_all() -> None:
    assert diagnose(facts(filters=())).causes == ["no-sync-filter"]


def test_filters_that_could_not_be_read_are_unknown_not_failed() -> None:
    report = diagnose(facts(filters=None, filters_error="Dataverse: HTTP 403"))
    assert report.causes == []
    finding = report.finding("no-sync-filter")
    assert finding is not None and finding.status == "unknown" and "403" in str(finding.evidence["why"])


def test_owner_only_record_outside_the_default_filter() -> None:
    record = replace(RECORD, roles=("owner",))
    report = diagnose(
        facts(record=record, filters=(replace(MATCHING, matches=False),), exchange=ExchangeFacts(False))
    )
    assert report.causes == ["outside-sync-filter"]
    finding = report.finding("outside-sync-filter")
    assert finding is not None
    assert finding.evidence["your_roles"] == ["owner"]
    assert finding.evidence["filters"] == ["My Appointments"]
    assert any("required attendee" in step for step in finding.steps)


def test_filters_are_ored_one_match_is_enough() -> None:
    miss = FilterFacts(name="Customer appointments", origin="user", active=True, matches=False)
    system = FilterFacts(name="Org filter", origin="system", active=True, matches=True)
    finding = diagnose(facts(filters=(miss, system))).finding("outside-sync-filter")
    assert finding is not None and finding.status == "pass"
    assert finding.evidence["matched_by"] == ["Org filter"]


def test_inactive_filters_are_ignored_even_if_they_would_match() -> None:
    inactive_match = FilterFacts(name="Old filter", origin="user", active=False, matches=True)
    miss = FilterFacts(name="My Appointments", origin="user", active=True, matches=False)
    report = diagnose(facts(filters=(inactive_match, miss), exchange=ExchangeFacts(False)))
    assert report.causes == ["outside-sync-filter"]


def test_a_filter_that_could_not_run_makes_the_answer_unknown() -> None:
    broken = FilterFacts(name="Broken", origin="user", active=True, matches=None, error="HTTP 400")
    miss = replace(MATCHING, matches=False)
    finding = diagnose(facts(filters=(miss, broken), exchange=ExchangeFacts(None))).finding(
        "outside-sync-filter"
    )
    assert finding is not None and finding.status == "unknown"
    assert finding.evidence["could_not_check"] == ["Broken: HTTP 400"]


def test_record_not_found_with_a_hint() -> None:
    report = diagnose(facts(record=None, record_hint="that id belongs to a task"))
    assert report.causes == ["record-not-found"]
    finding = report.finding("record-not-found")
    assert finding is not None and finding.evidence["hint"] == "that id belongs to a task"
    assert report.record is None


def test_mailbox_level_check_has_no_record_findings() -> None:
    report = diagnose(facts(record_ref=None, record=None, exchange=ExchangeFacts(None, "no record named")))
    ids = {f.id for f in report.findings}
    assert ids.isdisjoint({"record-not-found", "outside-sync-filter", "shown-as-free", "sync-pending"})
    assert report.record is None and report.in_exchange is None


@pytest.mark.parametrize(
    ("state", "reason", "expected"),
    [
        ((3, 5), None, "pass"),
        ((1, 3), "completed", "warn"),
        ((2, 4), "canceled", "warn"),
        ((0, 1), "free", "warn"),
    ],
)
def test_shown_as_free(state: tuple[int, int], reason: str | None, expected: str) -> None:
    finding = diagnose(facts(record=replace(RECORD, statecode=state[0], statuscode=state[1]))).finding(
        "shown-as-free"
    )
    assert finding is not None and finding.status == expected
    if reason:
        assert reason in finding.title


def test_shown_as_free_is_only_about_appointments() -> None:
    task = replace(RECORD, type="task", statecode=1, statuscode=5)
    assert status(facts(record_type="task", record=task), "shown-as-free") is None


def test_sync_pending_when_changed_after_last_sync_and_not_in_exchange() -> None:
    record = replace(RECORD, modified_on=datetime(2026, 11, 25, 9, 40, tzinfo=UTC))
    report = diagnose(facts(record=record, exchange=ExchangeFacts(False)))
    assert report.causes == [] and report.warnings == ["sync-pending"]


def test_sync_pending_never_synced_mailbox() -> None:
    mailbox = replace(HEALTHY, last_successful_sync=None)
    assert status(facts(mailbox=mailbox, exchange=ExchangeFacts(False)), "sync-pending") == "warn"


def test_sync_not_pending_when_the_event_is_in_exchange() -> None:
    record = replace(RECORD, modified_on=datetime(2026, 11, 25, 9, 40, tzinfo=UTC))
    assert status(facts(record=record, exchange=ExchangeFacts(True)), "sync-pending") == "pass"


def test_sync_pending_is_silent_when_something_else_fails() -> None:
    record = replace(RECORD, roles=("owner",), modified_on=datetime(2026, 11, 25, 9, 40, tzinfo=UTC))
    report = diagnose(
        facts(record=record, filters=(replace(MATCHING, matches=False),), exchange=ExchangeFacts(False))
    )
    assert report.finding("sync-pending") is None


def test_causes_come_in_fix_order_user_mailbox_record() -> None:
    mailbox = replace(HEALTHY, statecode=1, approval=2, act_delivery=2)
    report = diagnose(
        facts(
            user=replace(USER, is_disabled=True),
            mailbox=mailbox,
            record=replace(RECORD, roles=("owner",)),
            filters=(replace(MATCHING, matches=False),),
        )
    )
    assert report.causes == [
        "user-disabled",
        "mailbox-inactive",
        "mailbox-not-approved",
        "act-not-server-side-sync",
        "outside-sync-filter",
    ]


def test_report_json_shape_is_the_contract() -> None:
    data = diagnose(facts(exchange=ExchangeFacts(None, "Graph: 403"))).to_dict()
    assert set(data) == {"user", "record", "findings", "causes", "in_exchange"}
    assert set(data["user"]) == {"aad_object_id", "systemuserid", "name", "email"}  # type: ignore[arg-type]
    assert data["record"] == {
        "type": "appointment",
        "id": "r1",
        "subject": "Quarterly review",
        "start": "2026-11-27T15:00:00Z",
    }
    assert data["in_exchange"] is None
    for finding in data["findings"]:  # type: ignore[attr-defined]
        assert set(finding) == {"id", "status", "title", "evidence", "steps", "source"}
        assert finding["status"] in ("fail", "warn", "pass", "unknown")
        assert finding["source"].startswith("https://")


def test_steps_name_the_users_mailbox() -> None:
    finding = diagnose(facts(mailbox=replace(HEALTHY, act_delivery=2))).finding("act-not-server-side-sync")
    assert finding is not None
    assert any("alexw@example.com" in step for step in finding.steps)
    assert all("{" not in step for step in finding.steps)


# --- issue 13: the documented causes added --------------------------------------------------------------


def test_not_run_after_a_completed_test_is_titled_for_what_is_true() -> None:
    tested = diagnose(facts(mailbox=replace(HEALTHY, act_status=0))).finding("mailbox-not-tested")
    assert tested is not None and tested.status == "fail"
    assert "never" not in tested.title
    assert "Not Run" in tested.title and "2026-10-02" in tested.title
    never = diagnose(facts(mailbox=replace(HEALTHY, act_status=0, test_completed_on=None)))
    finding = never.finding("mailbox-not-tested")
    assert finding is not None and finding.title == "Your mailbox was never tested and enabled"


@pytest.mark.parametrize(("required", "expected"), [(True, "fail"), (None, "fail"), (False, "warn")])
def test_an_unapproved_address_is_a_cause_only_where_the_org_requires_approval(
    required: bool | None, expected: str
) -> None:
    f = facts(mailbox=replace(HEALTHY, approval=2), approval_required=required)
    finding = diagnose(f).finding("mailbox-not-approved")
    assert finding is not None and finding.status == expected
    if expected == "warn":
        assert "mailbox-not-approved" not in diagnose(f).causes
        assert "Exchange Online" in " ".join(finding.steps)  # its admin approval may still be needed


@pytest.mark.parametrize(
    ("primary", "act_status", "expected"),
    # The flag defaults to false: only beside a failing status is it a sign that another org has it.
    [(False, 2, "warn"), (True, 2, "pass"), (False, 1, None), (None, 2, None), (False, 0, None)],
)
def test_a_mailbox_synced_with_another_org_is_only_ever_a_warning(
    primary: bool | None, act_status: int, expected: str | None
) -> None:
    """act-other-org is not in design.md's table yet: proposed, so it may warn but never fail."""
    f = facts(mailbox=replace(HEALTHY, primary_for_exchange=primary, act_status=act_status))
    assert status(f, "act-other-org") == expected
    assert "act-other-org" not in diagnose(f).causes


@pytest.mark.parametrize(("organizer", "expected"), [(False, "fail"), (True, "pass"), (None, None)])
def test_an_appointment_without_an_organizer_cannot_sync(
    organizer: bool | None, expected: str | None
) -> None:
    f = facts(record=replace(RECORD, has_organizer=organizer))
    assert status(f, "organizer-missing") == expected
    contact = replace(RECORD, type="contact", has_organizer=False)
    assert status(facts(record=contact, record_type="contact"), "organizer-missing") is None


def test_a_record_the_person_may_not_read_shows_only_its_id_and_for_agents_its_owner() -> None:
    from bot.diagnosis.facts import UnreadableRecord

    for owner in (None, "Megan Bowen"):
        f = facts(record=None, unreadable=UnreadableRecord("r9", owner), exchange=ExchangeFacts(found=None))
        report = diagnose(f)
        assert report.causes == ["record-not-readable"]
        finding = report.finding("record-not-readable")
        assert finding is not None
        assert finding.evidence == ({"id": "r9"} if owner is None else {"id": "r9", "owner": owner})
        assert ("Megan Bowen" in " ".join(finding.steps)) is (owner is not None)
        assert status(f, "record-not-found") == "pass"  # it exists
        assert status(f, "outside-sync-filter") is None  # nothing about its content is judged
    assert status(facts(), "record-not-readable") == "pass"


@pytest.mark.parametrize(
    ("record_type", "says", "never"),
    [
        ("appointment", "organizer or a required attendee", "assign it to you"),
        ("contact", "active contacts you own", "organizer"),
        ("task", "assign it to you", "organizer"),
    ],
)
def test_outside_the_filters_steps_fit_the_record_type(record_type: str, says: str, never: str) -> None:
    record = replace(RECORD, type=record_type, roles=("owner",))
    unmatched = replace(MATCHING, matches=False)
    report = diagnose(facts(record=record, record_type=record_type, filters=(unmatched,)))
    finding = report.finding("outside-sync-filter")
    assert finding is not None and finding.status == "fail"
    steps = " ".join(finding.steps)
    assert says in steps and never not in steps
    empty = diagnose(facts(record=record, record_type=record_type, filters=()))
    no_filter = empty.finding("no-sync-filter")
    assert no_filter is not None and (
        record_type != "contact" or "organizer" not in " ".join(no_filter.steps)
    )
