"""Sequential round trips per diagnosis path: the request timeline of each, through the real clients.

The sandbox holds every request for `LATENCY`, so requests of one round overlap and the next round starts
only after an answer: `RequestTimeline.depth()` counts the rounds. Each test fails on one more round.
"""

from __future__ import annotations

import pytest

from bot.investigation import Choice, Investigator, UserCache
from bot.sandbox import Fault, SandboxConfig, local_org
from bot.sandbox.metrics import RequestTimeline
from tests.support.org import ADELE, ALEX, MEGAN, QUARTERLY

LATENCY = 0.1  # long enough that one round's requests overlap even on a busy machine
FABRIKAM_KICKOFF = "c3000000-0000-4000-8000-000000000003"  # Megan's; Alex takes no part in it
DIEGO = "0e000000-0000-4000-8000-000000000007"  # his appointment filter is off
NORTHWIND = "c3000000-0000-4000-8000-000000000008"  # Diego's "Account planning with Northwind"
OLIVIA = "c7000000-0000-4000-8000-000000000003"  # a contact Alex's account team owns


@pytest.fixture
async def rig():  # type: ignore[no-untyped-def]
    timeline = RequestTimeline()
    config = SandboxConfig(faults=[Fault(route="*", latency=LATENCY)])
    async with local_org(config=config, event_hooks=timeline.hooks()) as local:
        investigator = Investigator(local.clients.dataverse, local.clients.graph, user_cache=UserCache())
        yield investigator, timeline


async def test_a_record_by_id_for_a_teams_user_is_two_rounds(rig) -> None:  # type: ignore[no-untyped-def]
    """Every pick and Re-check: the user, their filters and the record at once; then the filter runs and
    Graph. No warm cache needed: the Entra id is enough to read as them."""
    investigator, timeline = rig
    report = await investigator.run(ALEX, QUARTERLY, reader=ALEX)
    assert report.causes == ["outside-sync-filter"]
    assert report.in_exchange is False  # Graph was asked, in round 2
    assert timeline.depth() == 2, timeline.spans


async def test_a_record_by_id_for_an_email_is_three_rounds_then_two(rig) -> None:  # type: ignore[no-untyped-def]
    investigator, timeline = rig
    report = await investigator.run("alexw@example.com", QUARTERLY)
    assert report.causes == ["outside-sync-filter"]
    assert timeline.depth() == 3, timeline.spans
    timeline.clear()
    await investigator.run("alexw@example.com", QUARTERLY)
    assert timeline.depth() == 2, timeline.spans


async def test_a_record_by_words_is_two_rounds(rig) -> None:  # type: ignore[no-untyped-def]
    investigator, timeline = rig
    report = await investigator.run(ALEX, "quarterly review")
    assert report.record is not None and report.record.id == QUARTERLY
    assert timeline.depth() == 2, timeline.spans


async def test_a_question_naming_a_recent_record_is_two_rounds(rig) -> None:  # type: ignore[no-untyped-def]
    investigator, timeline = rig
    answer = await investigator.answer(ALEX, subject_words=["quartely", "reveiw"])
    assert not isinstance(answer, Choice) and answer.causes == ["outside-sync-filter"]
    assert timeline.depth() == 2, timeline.spans


async def test_a_question_naming_nothing_known_is_one_round(rig) -> None:  # type: ignore[no-untyped-def]
    """The mailbox, the search and the recent records are read at once: the picker needs nothing more."""
    investigator, timeline = rig
    answer = await investigator.answer(ALEX, subject_words=["zzyzx"])
    assert isinstance(answer, Choice) and answer.candidates
    assert timeline.depth() == 1, timeline.spans


async def test_a_mailbox_check_is_one_round(rig) -> None:  # type: ignore[no-untyped-def]
    investigator, timeline = rig
    report = await investigator.run(MEGAN)
    assert report.causes == ["act-not-server-side-sync"]
    assert timeline.depth() == 1, timeline.spans


async def test_a_record_the_person_may_not_read_is_one_round_for_them(rig) -> None:  # type: ignore[no-untyped-def]
    investigator, timeline = rig
    report = await investigator.run(ALEX, FABRIKAM_KICKOFF, reader=ALEX)
    assert report.causes == ["record-not-readable"]
    assert timeline.depth() == 1, timeline.spans


async def test_an_agent_sees_who_owns_it_for_one_more_round(rig) -> None:  # type: ignore[no-untyped-def]
    investigator, timeline = rig
    report = await investigator.run(ALEX, FABRIKAM_KICKOFF, reader=MEGAN)
    assert report.causes == ["record-not-readable"]
    finding = next(f for f in report.findings if f.id == "record-not-readable")
    assert finding.evidence.get("owner") == "Megan Bowen"  # the name Dataverse formats for the owner
    assert timeline.depth() == 2, timeline.spans


async def test_words_naming_a_series_are_three_rounds(rig) -> None:  # type: ignore[no-untyped-def]
    """Round 1 finds its instances; round 2 reads the series they belong to; round 3 runs the filters."""
    investigator, timeline = rig
    report = await investigator.run(ADELE, "pipeline review")
    assert report.record is not None and report.record.id == "c9000000-0000-4000-8000-000000000001"
    assert timeline.depth() == 3, timeline.spans


async def test_a_persons_inactive_filters_run_in_round_two(rig) -> None:  # type: ignore[no-untyped-def]
    """Diego's appointment filter is off: it is run against the record with the active ones, not after."""
    investigator, timeline = rig
    report = await investigator.run(DIEGO, NORTHWIND, reader=DIEGO)
    assert report.causes == ["no-sync-filter"] and [f.id for f in report.fixes] == ["activate-filter"]
    assert timeline.depth() == 2, timeline.spans


async def test_asking_whether_a_team_owns_the_record_is_in_round_two(rig) -> None:  # type: ignore[no-untyped-def]
    investigator, timeline = rig
    report = await investigator.run(ALEX, OLIVIA, "contact", reader=ALEX)
    fix = report.fix("add-filter")
    assert fix is not None and fix.title == "Add a sync filter: Active contacts my teams own"
    assert timeline.depth() == 2, timeline.spans
