"""Whole diagnoses through the real clients against the sandbox over loopback HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.clients.http import RetryPolicy
from bot.clients.rows import sync_filter
from bot.diagnosis import RecordFacts, RecordType, Report, diagnose
from bot.errors import AmbiguousRecordError, BackendUnavailable, InputError, InvalidIdError, Throttled
from bot.investigation import Choice, Investigator, record_words
from bot.matching import best_matches, similar, words
from bot.sandbox import LocalOrg
from tests.support.org import ADELE, ALEX, MEGAN, PLAYGROUND, QUARTERLY, make_local

QUICK = RetryPolicy(budget=2.0, attempt_timeout=1.0, max_attempts=3, base_delay=0.01, max_delay=0.05)

# Each story of the sample org: (user, record words or None, expected causes, expected warnings, in_exchange)
STORIES = [
    (ALEX, "quarterly review", ["outside-sync-filter"], [], False),  # owner only (KB cause 2)
    (ALEX, "weekly pipeline", [], [], True),
    (PLAYGROUND + "21", None, ["act-not-server-side-sync"], [], None),  # KB cause 1
    (PLAYGROUND + "22", "product demo", [], [], True),  # healthy
    (PLAYGROUND + "23", None, ["mailbox-not-tested"], [], None),
    (PLAYGROUND + "24", None, ["act-sync-failing"], ["act-other-org"], None),  # another org syncs it
    (PLAYGROUND + "25", "contract renewal", [], ["sync-pending"], False),
    ("diegos@example.com", "northwind", ["no-sync-filter"], [], False),
    ("gradya@example.com", "internal planning", ["outside-sync-filter"], [], False),  # custom filter
    ("gradya@example.com", "customer visit", [], [], True),  # custom filter selects it although owner only
    ("henriettam@example.com", None, ["mailbox-inactive"], [], None),
    ("johannal@example.com", None, ["mailbox-not-approved", "mailbox-not-tested"], [], None),
    ("jonis@example.com", None, [], ["act-outlook-client"], None),
    ("leeg@example.com", None, ["mailbox-missing"], [], None),
    ("miriamg@example.com", None, ["user-disabled"], [], None),
    ("nestorw@example.com", None, [], ["mailbox-not-tested"], None),
    ("adelev@example.com", "litware follow-up", [], ["shown-as-free"], False),
    (ALEX, "site inspection", ["organizer-missing"], [], False),  # no Organizer party
    (PLAYGROUND + "22", "pipeline review", ["outside-sync-filter"], [], False),  # a series: optional attendee
    ("nobody@example.com", None, ["teams-user-unknown"], [], None),
    (PLAYGROUND + "99", None, ["teams-user-unknown"], [], None),
]


@pytest.mark.parametrize(("user", "record", "causes", "warnings", "in_exchange"), STORIES)
async def test_sample_org_stories(
    local: LocalOrg,
    user: str,
    record: str | None,
    causes: list[str],
    warnings: list[str],
    in_exchange: bool | None,
) -> None:
    report = await Investigator(local.clients.dataverse, local.clients.graph).run(user, record)
    assert report.causes == causes
    assert report.warnings == warnings
    assert report.in_exchange is in_exchange


async def test_outside_filter_evidence_names_roles_and_filters(local: LocalOrg) -> None:
    report = await Investigator(local.clients.dataverse, local.clients.graph).run(
        ALEX, "Quarterly review with Contoso"
    )
    finding = report.finding("outside-sync-filter")
    assert finding is not None
    assert finding.evidence["your_roles"] == ["owner"]
    assert finding.evidence["filters"] == ["My Appointments"]
    assert report.record is not None and report.record.subject == "Quarterly review with Contoso"


async def test_tasks_and_contacts_use_their_own_filters(local: LocalOrg) -> None:
    investigator = Investigator(local.clients.dataverse, local.clients.graph)
    task = await investigator.run(
        ALEX, "prepare contoso pricing", "task"
    )  # owned by Megan, Alex only attendee
    assert task.causes == ["outside-sync-filter"] and task.in_exchange is None
    finding = task.finding("outside-sync-filter")
    assert finding is not None and finding.evidence["your_roles"] == ["required_attendee"]
    mine = await investigator.run(ALEX, "send proposal", "task")
    assert mine.causes == []
    contact = await investigator.run(ALEX, "nancy freeman", "contact")
    assert contact.causes == [] and contact.finding("outside-sync-filter").status == "pass"  # type: ignore[union-attr]


async def test_record_id_of_another_type_gets_a_hint(local: LocalOrg) -> None:
    task_id = "c8000000-0000-4000-8000-000000000001"
    report = await Investigator(local.clients.dataverse, local.clients.graph).run(
        ALEX, task_id, "appointment"
    )
    assert report.causes == ["record-not-found"]
    assert "task" in str(report.finding("record-not-found").evidence["hint"])  # type: ignore[union-attr]


async def test_words_matching_several_records_ask_which(local: LocalOrg) -> None:
    with pytest.raises(AmbiguousRecordError) as caught:
        await Investigator(local.clients.dataverse, local.clients.graph).run("adelev@example.com", "litware")
    assert {c.subject for c in caught.value.candidates} == {
        "Product demo for Litware",
        "Litware follow-up (canceled)",
    }


@pytest.mark.parametrize(
    "hostile",
    [
        "' or 1 eq 1 or subject eq '",
        "x') or (true",
        "<condition attribute='ownerid' operator='not-null'/>",
        "%",
        "]]>",
    ],
)
async def test_hostile_record_words_bring_back_nothing_extra(local: LocalOrg, hostile: str) -> None:
    report = await Investigator(local.clients.dataverse, local.clients.graph).run(ALEX, hostile + " zzz")
    assert report.causes == ["record-not-found"]


@pytest.mark.parametrize("hostile", ["' or 1 eq 1 or fullname eq 'x@y", "alexw@example.com' or '1' eq '1"])
async def test_hostile_email_finds_nobody(local: LocalOrg, hostile: str) -> None:
    report = await Investigator(local.clients.dataverse, local.clients.graph).run(hostile)
    assert report.causes == ["teams-user-unknown"]


@pytest.mark.parametrize("bad", ["not-a-guid", "00000000-0000-0000-0000-00000000002g", "1 or 1 eq 1"])
async def test_malformed_ids_are_refused_before_any_request(local: LocalOrg, bad: str) -> None:
    before = local.running.sandbox.counts["dataverse"]
    with pytest.raises(InvalidIdError):
        await Investigator(local.clients.dataverse, local.clients.graph).run(bad)
    assert local.running.sandbox.counts["dataverse"] == before


def test_record_words_keep_only_words() -> None:
    assert record_words("Quarterly review w/ Contoso!") == ["Quarterly", "review", "Contoso"]
    assert record_words("' or 1 eq 1 --") == ["or", "1", "eq", "1"]
    assert record_words("<x/>") == []


async def test_words_with_no_letters_are_an_input_error(local: LocalOrg) -> None:
    with pytest.raises(InputError, match="no words"):
        await Investigator(local.clients.dataverse, local.clients.graph).run(ALEX, "?!")


async def test_graph_refusing_leaves_in_exchange_unknown(org_data: dict[str, Any]) -> None:
    org_data["$faults"] = [{"route": "graph", "status": 403}]
    async with make_local(org_data, policy=QUICK) as local:
        report = await Investigator(local.clients.dataverse, local.clients.graph).run(ALEX, "quarterly")
    assert report.in_exchange is None
    assert report.causes == ["outside-sync-filter"]  # the diagnosis still ran


async def test_filter_evaluation_failing_is_unknown_not_a_false_cause(org_data: dict[str, Any]) -> None:
    org_data["$faults"] = [{"route": "/api/data/v9.2/appointments", "status": 400}]
    async with make_local(org_data, policy=QUICK) as local:
        report = await Investigator(local.clients.dataverse, local.clients.graph).run(
            ALEX, "c3000000-0000-4000-8000-000000000001"
        )
    # the key lookup appointments(<id>) still works; the fetchXml query is refused
    finding = report.finding("outside-sync-filter")
    assert finding is not None and finding.status == "unknown"
    assert report.causes == []


async def test_dataverse_down_raises_with_what_was_tried(org_data: dict[str, Any]) -> None:
    org_data["$faults"] = [{"route": "dataverse", "status": 503}]
    async with make_local(org_data, policy=QUICK) as local:
        with pytest.raises(BackendUnavailable) as caught:
            await Investigator(local.clients.dataverse, local.clients.graph).run(ALEX)
    assert "503" in str(caught.value) and "attempt" in str(caught.value)


async def test_throttling_past_the_budget_is_reported(org_data: dict[str, Any]) -> None:
    org_data["$faults"] = [{"route": "dataverse", "status": 429, "retry_after": 60}]
    async with make_local(org_data, policy=QUICK) as local:
        with pytest.raises(Throttled):
            await Investigator(local.clients.dataverse, local.clients.graph).run(ALEX)


async def test_short_throttling_is_ridden_out(org_data: dict[str, Any]) -> None:
    org_data["$faults"] = [{"route": "dataverse", "status": 429, "retry_after": 0.2, "times": 2}]
    async with make_local(org_data, policy=QUICK) as local:
        report = await Investigator(local.clients.dataverse, local.clients.graph).run(ALEX, "quarterly")
    assert report.causes == ["outside-sync-filter"]


async def test_a_hanging_dataverse_still_answers_within_the_budget(org_data: dict[str, Any]) -> None:
    import time

    org_data["$faults"] = [{"route": "dataverse", "hang": 30}]
    async with make_local(
        org_data, policy=RetryPolicy(budget=5, attempt_timeout=0.5, max_attempts=10)
    ) as local:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="timed out"):
            await Investigator(local.clients.dataverse, local.clients.graph, budget=1.0).run(ALEX)
        assert time.monotonic() - started < 4.0  # far below the 30 s hang: the budget held


# --- which record a person means: Investigator.answer and bot.matching ---------------------------------


async def test_answer_diagnoses_the_recent_record_the_words_name_typos_and_all(local: LocalOrg) -> None:
    answer = await Investigator(local.clients.dataverse, local.clients.graph).answer(
        ALEX, subject_words=["quartely", "reveiw"]
    )
    assert isinstance(answer, Report)
    assert answer.record is not None and answer.record.id == QUARTERLY
    assert answer.causes == ["outside-sync-filter"]


async def test_answer_gives_a_mailbox_cause_before_asking_which_record(local: LocalOrg) -> None:
    answer = await Investigator(local.clients.dataverse, local.clients.graph).answer(
        PLAYGROUND + "21", subject_words=["zzyzx"]
    )
    assert isinstance(answer, Report)
    assert answer.causes == ["act-not-server-side-sync"] and answer.record is None


async def test_answer_about_the_mailbox_is_the_mailbox_report(local: LocalOrg) -> None:
    answer = await Investigator(local.clients.dataverse, local.clients.graph).answer(ALEX, about_record=False)
    assert isinstance(answer, Report)
    assert answer.record is None and answer.causes == []


async def test_answer_offers_recent_records_when_none_is_named(local: LocalOrg) -> None:
    answer = await Investigator(local.clients.dataverse, local.clients.graph).answer(ALEX)
    assert isinstance(answer, Choice)
    assert QUARTERLY in {c.id for c in answer.candidates}
    assert all(c.start is None or c.start.endswith("Z") for c in answer.candidates)


async def test_answer_offers_the_records_several_words_match(local: LocalOrg) -> None:
    answer = await Investigator(local.clients.dataverse, local.clients.graph).answer(
        PLAYGROUND + "22", subject_words=["litware"]
    )
    assert isinstance(answer, Choice)
    assert {c.subject for c in answer.candidates} == {
        "Product demo for Litware",
        "Litware follow-up (canceled)",
    }


async def test_owns_team_asks_graph_and_says_no_when_it_cannot_tell(org_data: dict[str, Any]) -> None:
    team = "7e000000-0000-4000-8000-000000000001"
    org_data["graph"]["teams"] = {
        team: {"members": [{"userId": ALEX, "displayName": "Alex", "roles": ["owner"]}]}
    }
    async with make_local(org_data) as local:
        investigator = Investigator(local.clients.dataverse, local.clients.graph)
        assert await investigator.owns_team(team, ALEX)
        assert not await investigator.owns_team(team, PLAYGROUND + "21")
        assert not await investigator.owns_team("not-a-group", ALEX)  # refused before any request
        assert not await investigator.owns_team(team, None)
        assert not await Investigator(local.clients.dataverse).owns_team(team, ALEX)  # no Graph


@pytest.mark.parametrize(
    ("a", "b", "close"),
    [
        ("review", "review", True),
        ("quartely", "quarterly", True),  # a letter left out
        ("reveiw", "review", True),  # two neighbours swapped
        ("contoso", "contosos", True),
        ("contoso", "contoso's", True),  # one starts the other
        ("demo", "memo", True),
        ("dem", "demo", False),  # too short to guess
        ("review", "renew", False),
        ("litware", "northwind", False),
    ],
)
def test_similar_words(a: str, b: str, close: bool) -> None:
    assert similar(a, b) is close
    assert similar(b, a) is close


def test_one_tokenizer_for_search_terms_and_subjects() -> None:
    assert words("Litware follow-up (canceled)") == ["Litware", "follow", "up", "canceled"]
    assert words("Litware follow-up (canceled)", joins="'’.-") == ["Litware", "follow-up", "canceled"]
    assert words("it isn't v9.2", joins="'") == ["it", "isn't", "v9", "2"]
    assert words("Réunion à Zürich") == ["Réunion", "à", "Zürich"]  # letters of any script
    assert words("<at>x</at> [a](b) 'q'") == ["at", "x", "at", "a", "b", "q"]


def test_best_matches_scores_subjects_and_keeps_ties() -> None:
    def record(record_id: str, subject: str) -> RecordFacts:
        return RecordFacts(type="appointment", id=record_id, subject=subject)

    quarterly = record("1", "Quarterly review with Contoso")
    demo, follow_up = record("2", "Product demo for Litware"), record("3", "Litware follow-up (canceled)")
    recent = [quarterly, demo, follow_up]
    assert best_matches(["quartely", "reveiw"], recent) == [quarterly]
    assert best_matches(["litware"], recent) == [demo, follow_up]
    assert best_matches(["litware", "demo"], recent) == [demo]
    assert best_matches(["northwind"], recent) == []
    assert best_matches([], recent) == []


# --- issue 13: reading as the person, recurring series ---------------------------------------------------

FABRIKAM = "c3000000-0000-4000-8000-000000000003"  # Megan's "Fabrikam kickoff": Alex may not read it
SERIES = "c9000000-0000-4000-8000-000000000001"  # Megan's "Monday pipeline review"; Adele optional attendee
OLIVIA = "c7000000-0000-4000-8000-000000000003"  # a contact Alex's account team owns


async def test_words_find_what_the_person_may_read_not_only_what_they_own(local: LocalOrg) -> None:
    """A team's contact is Alex's to read (he is a member) but not his filter's (it selects contacts he
    owns): KB cause 2, with the contact's steps, not record-not-found."""
    investigator = Investigator(local.clients.dataverse, local.clients.graph)
    report = await investigator.run(ALEX, "olivia chen", "contact")
    assert report.record is not None and report.record.id == OLIVIA
    assert report.causes == ["outside-sync-filter"]
    steps = " ".join(report.finding("outside-sync-filter").steps)  # type: ignore[union-attr]
    assert "assign it to you" in steps and "organizer" not in steps
    # Megan's own contact is nobody's business of Alex's: not found by his words.
    assert (await investigator.run(ALEX, "ray ortiz", "contact")).causes == ["record-not-found"]


async def test_a_series_master_id_is_recognised(local: LocalOrg) -> None:
    report = await Investigator(local.clients.dataverse, local.clients.graph).run(ADELE, SERIES, reader=ADELE)
    assert report.record is not None and report.record.id == SERIES
    assert report.causes == ["outside-sync-filter"]  # her filters, run against the series' instances
    finding = report.finding("outside-sync-filter")
    assert finding is not None and finding.evidence["your_roles"] == ["optional_attendee"]


async def test_words_matching_the_instances_of_one_series_mean_the_series(local: LocalOrg) -> None:
    answer = await Investigator(local.clients.dataverse, local.clients.graph).answer(
        ADELE, subject_words=["pipeline"]
    )
    assert isinstance(answer, Report) and answer.record is not None and answer.record.id == SERIES


async def test_the_picker_offers_a_series_once(local: LocalOrg) -> None:
    answer = await Investigator(local.clients.dataverse, local.clients.graph).answer(ADELE)
    assert isinstance(answer, Choice)
    pipeline = [c for c in answer.candidates if c.subject == "Monday pipeline review"]
    assert [c.id for c in pipeline] == [SERIES]


async def test_a_disabled_user_is_told_that_not_that_records_are_unreadable(local: LocalOrg) -> None:
    """Dataverse runs nothing as a disabled user: every read as them is refused, which is no news."""
    investigator = Investigator(local.clients.dataverse, local.clients.graph)
    for record in ("c3000000-0000-4000-8000-000000000015", "board prep", None):
        report = await investigator.run("miriamg@example.com", record)
        assert report.causes == ["user-disabled"], record
    answer = await investigator.answer("miriamg@example.com", subject_words=["board", "prep"])
    assert isinstance(answer, Report) and answer.causes == ["user-disabled"]


async def test_a_record_one_may_not_read_keeps_its_id_in_the_report(local: LocalOrg) -> None:
    report = await Investigator(local.clients.dataverse, local.clients.graph).run(ALEX, FABRIKAM, reader=ALEX)
    assert report.causes == ["record-not-readable"]
    assert report.record is not None and (report.record.id, report.record.subject) == (FABRIKAM, None)


async def test_an_agent_rechecking_a_series_sees_the_series(local: LocalOrg) -> None:
    report = await Investigator(local.clients.dataverse, local.clients.graph).run(ADELE, SERIES, reader=MEGAN)
    assert report.causes == ["outside-sync-filter"]


async def test_words_are_searched_only_for_the_person_themselves(local: LocalOrg) -> None:
    with pytest.raises(InputError):
        await Investigator(local.clients.dataverse, local.clients.graph).run(ALEX, "fabrikam", reader=MEGAN)


@pytest.mark.parametrize(
    "fault",
    [
        {
            "route": "*recurringappointmentmasters*",
            "status": 503,
        },  # only needed when no appointment has the id
        {"route": "*organizations*", "hang": 30},  # a nicety: not worth waiting for
    ],
)
async def test_a_failing_optional_read_does_not_fail_the_diagnosis(
    org_data: dict[str, Any], fault: dict[str, Any]
) -> None:
    org_data["$faults"] = [fault]
    async with make_local(org_data, policy=QUICK) as local:
        report = await Investigator(local.clients.dataverse, local.clients.graph).run(
            ALEX, QUARTERLY, reader=ALEX
        )
    assert report.causes == ["outside-sync-filter"]


async def test_a_failing_search_still_gives_the_mailbox_cause(org_data: dict[str, Any]) -> None:
    org_data["$faults"] = [{"route": "*appointments*", "status": 503}]
    async with make_local(org_data, policy=QUICK) as local:
        investigator = Investigator(local.clients.dataverse, local.clients.graph)
        answer = await investigator.answer(MEGAN, subject_words=["kickoff"])
        assert isinstance(answer, Report) and answer.causes == ["act-not-server-side-sync"]
        with pytest.raises(BackendUnavailable):  # with a healthy mailbox, the search was needed
            await investigator.answer(ALEX, subject_words=["kickoff"])


async def test_an_exception_in_a_series_is_its_own_record(org_data: dict[str, Any]) -> None:
    """An occurrence changed on its own (other attendees, another time) is not the series."""
    moved = next(
        a for a in org_data["appointments"] if a["activityid"] == "c3000000-0000-4000-8000-000000000102"
    )
    moved["instancetypecode"] = 3
    moved["subject"] = "Monday pipeline review (moved)"
    async with make_local(org_data) as local:
        answer = await Investigator(local.clients.dataverse, local.clients.graph).answer(ADELE)
    assert isinstance(answer, Choice)
    ids = [c.id for c in answer.candidates if c.subject.startswith("Monday pipeline review")]
    assert SERIES in ids and moved["activityid"] in ids


# --- issue 15: what one-click fixes need from round 2 ----------------------------------------------------

# (user, record words, type, the fixes the report carries, in fix order)
FIX_STORIES = [
    (ALEX, "quarterly review", "appointment", ["add-filter"]),  # owner only
    (ALEX, "weekly pipeline", "appointment", []),  # nothing to fix
    (MEGAN, None, "appointment", ["set-act-server-side-sync"]),
    (PLAYGROUND + "23", None, "appointment", ["schedule-mailbox-test"]),
    (PLAYGROUND + "24", None, "appointment", []),  # another org syncs the mailbox: a test here fails again
    ("diegos@example.com", "northwind", "appointment", ["activate-filter"]),  # his filter is off
    ("gradya@example.com", "internal planning", "appointment", ["add-filter"]),
    ("johannal@example.com", None, "appointment", ["approve-email", "schedule-mailbox-test"]),
    (ALEX, "olivia chen", "contact", ["add-filter"]),  # his team's
    (ALEX, "prepare contoso pricing", "task", ["add-filter"]),  # the task alone
    (ALEX, "site inspection", "appointment", []),  # no organizer: no fix of ours
]


@pytest.mark.parametrize(("user", "record", "record_type", "fixes"), FIX_STORIES)
async def test_sample_org_fixes(
    local: LocalOrg, user: str, record: str | None, record_type: RecordType, fixes: list[str]
) -> None:
    report = await Investigator(local.clients.dataverse, local.clients.graph).run(user, record, record_type)
    assert [fix.id for fix in report.fixes] == fixes


async def test_filters_keep_their_ids_and_the_persons_inactive_ones_are_run(local: LocalOrg) -> None:
    """Diego's only appointment filter is off: Dataverse says turning it back on would select his record;
    the rules still count active filters only."""
    investigator = Investigator(local.clients.dataverse, local.clients.graph)
    facts = await investigator.gather("diegos@example.com", "northwind", "appointment")
    assert facts.filters is not None
    [mine] = [f for f in facts.filters if f.origin == "user"]
    assert (mine.id, mine.active, mine.matches) == ("e5000000-0000-4000-8000-000000000013", False, True)
    report = diagnose(facts)
    assert report.causes == ["no-sync-filter"]
    fix = report.fix("activate-filter")
    assert fix is not None and {c.row for c in fix.changes} == {mine.id}
    alex = await investigator.gather(ALEX, QUARTERLY, "appointment", reader=ALEX)
    assert {f.id for f in alex.filters or ()} == {"e5000000-0000-4000-8000-000000000001"}


async def test_an_inactive_filter_that_selects_the_record_is_turned_back_on(org_data: dict[str, Any]) -> None:
    old = {
        "userqueryid": "e5000000-0000-4000-8000-00000000ff01",
        "name": "My old appointments",
        "_ownerid_value": "a1000000-0000-4000-8000-000000000001",
        "querytype": 256,
        "returnedtypecode": "appointment",
        "statecode": 1,
        "statuscode": 2,
        "fetchxml": '<fetch><entity name="appointment"><filter><condition attribute="ownerid" '
        'operator="eq-userid"/></filter></entity></fetch>',
    }
    org_data["userqueries"].append(old)
    async with make_local(org_data) as local:
        report = await Investigator(local.clients.dataverse, local.clients.graph).run(ALEX, QUARTERLY)
    assert report.causes == ["outside-sync-filter"]  # an inactive filter selects nothing
    assert [f.id for f in report.fixes] == ["activate-filter"]
    assert report.fixes[0].title == "Turn your filter 'My old appointments' back on"
    assert {c.row for c in report.fixes[0].changes} == {old["userqueryid"]}


def test_a_filter_row_keeps_its_id_and_when_it_last_changed() -> None:
    row = {"userqueryid": "q1", "name": "Old", "statecode": 1, "modifiedon": "2026-06-01T10:00:00Z"}
    flt = sync_filter(row, "userqueryid", "user")
    assert (flt.id, flt.active, flt.modified_on) == ("q1", False, datetime(2026, 6, 1, 10, tzinfo=UTC))
