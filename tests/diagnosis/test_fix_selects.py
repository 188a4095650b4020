"""The filter an add-filter fix proposes really selects the record: Dataverse (the sandbox, over HTTP) runs
its FetchXML as the person, restricted to the record, for each role a person can have in a record."""

from __future__ import annotations

from typing import Any

import pytest

from bot.clients.dataverse import ENTITIES
from bot.clients.dataverse import SERIES as SERIES_TABLE
from bot.clients.fetchxml import restrict_to_record
from bot.diagnosis import RecordType, diagnose
from bot.investigation import Investigator
from tests.support.org import ADELE, ALEX, MEGAN, QUARTERLY, make_local

PRODUCT_DEMO = "c3000000-0000-4000-8000-000000000004"  # Adele's; Alex an optional attendee
OLIVIA = "c7000000-0000-4000-8000-000000000003"  # a contact Alex's account team owns
SEND_PROPOSAL = "c8000000-0000-4000-8000-000000000001"  # Alex's own task
CONTOSO_PRICING = "c8000000-0000-4000-8000-000000000002"  # Megan's task; Alex only a party to it
SERIES = "c9000000-0000-4000-8000-000000000001"  # Megan's series; Adele an optional attendee
ALEX_TASKS = "e5000000-0000-4000-8000-000000000002"  # Alex's "My Tasks" filter

# (person, record, type, name of the proposed filter, someone who may read the record without that part)
CASES = [
    (ALEX, QUARTERLY, "appointment", "Appointments I own", MEGAN),  # Megan organizes it
    (ALEX, PRODUCT_DEMO, "appointment", "Appointments where I'm an optional attendee", ADELE),  # her own
    (ALEX, OLIVIA, "contact", "Active contacts my teams own", None),  # every reader is in the team
    (ALEX, SEND_PROPOSAL, "task", "Tasks I own", None),
    (ALEX, CONTOSO_PRICING, "task", "This task: Prepare Contoso pricing", None),  # the record alone
    (ADELE, SERIES, "appointment", "Appointments where I'm an optional attendee", MEGAN),  # she organizes it
]


@pytest.mark.parametrize(("person", "record_id", "record_type", "name", "other"), CASES)
async def test_the_added_filter_selects_the_record_as_dataverse_runs_it(
    org_data: dict[str, Any],
    person: str,
    record_id: str,
    record_type: RecordType,
    name: str,
    other: str | None,
) -> None:
    # Alex's task filter selects only what no task is called, so that his own task is outside it too.
    tasks = next(q for q in org_data["userqueries"] if q["userqueryid"] == ALEX_TASKS)
    tasks["fetchxml"] = tasks["fetchxml"].replace(
        '<condition attribute="ownerid" operator="eq-userid"/>',
        '<condition attribute="ownerid" operator="eq-userid"/><condition attribute="subject" operator="like" value="Zz%"/>',
    )
    async with make_local(org_data) as local:
        dataverse = local.clients.dataverse
        facts = await Investigator(dataverse, local.clients.graph).gather(
            person, record_id, record_type, reader=person
        )
        report = diagnose(facts)
        assert report.causes == ["outside-sync-filter"]
        fix = report.fix("add-filter")
        assert fix is not None and fix.title == f"Add a sync filter: {name}"
        columns = {c.column: c.new for c in fix.changes}
        assert columns["name"] == name and columns["returnedtypecode"] == record_type

        series = facts.record is not None and facts.record.recurrence == "series"
        info = SERIES_TABLE if series else ENTITIES[record_type]
        key = "seriesid" if series else info.key  # a series is selected through its instances
        query = restrict_to_record(str(columns["fetchxml"]), record_type, key, record_id)
        selected = await dataverse.fetch_as(record_type, query, person)
        assert selected, f"{name!r} does not select the record as {person}"
        # It selects by the person's part in it: run as someone who may read it but has another part, not.
        if other is not None:
            assert (await dataverse.read_record(info, record_id, caller=other)).row is not None
            assert not await dataverse.fetch_as(record_type, query, other)


async def test_a_team_owned_record_is_asked_about_only_when_nothing_else_selects_it(
    org_data: dict[str, Any],
) -> None:
    async with make_local(org_data) as local:
        investigator = Investigator(local.clients.dataverse, local.clients.graph)
        olivia = await investigator.gather(ALEX, OLIVIA, "contact", reader=ALEX)
        pricing = await investigator.gather(ALEX, CONTOSO_PRICING, "task", reader=ALEX)
        quarterly = await investigator.gather(ALEX, QUARTERLY, "appointment", reader=ALEX)
    assert olivia.record is not None and olivia.record.team_owned is True
    assert pricing.record is not None and pricing.record.team_owned is False
    assert quarterly.record is not None and quarterly.record.team_owned is None  # he owns it: not asked
