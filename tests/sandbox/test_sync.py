"""The sandbox's server-side sync cycle: scheduled mailbox tests complete, and appointments that meet a
person's active filters reach their Graph calendar (and leave it when they stop meeting them), as the bot
then sees through its production clients."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.clients.dataverse import ENTITIES, record_facts
from bot.clients.graph import find_event
from bot.errors import FixtureError
from bot.investigation import Investigator
from bot.sandbox import SAMPLE_ORG, LocalOrg, Org, SandboxConfig, load_fixture
from bot.sandbox.privileges import OWN_FILTERS
from bot.sandbox.server import Sandbox
from tests.support.org import ALEX, QUARTERLY, make_local

NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)
ALEX_ID = "a1000000-0000-4000-8000-000000000001"
ALEX_FILTER = "e5000000-0000-4000-8000-000000000001"  # "My Appointments": organizer or required attendee
NEW_FILTER = "e5100000-0000-4000-8000-000000000001"
ISAIAH = "00000000-0000-0000-0000-0000000000023"  # approved, ACT by server-side sync, never tested
ISAIAH_MAILBOX = "b2000000-0000-4000-8000-000000000004"
NESTOR_MAILBOX = "b2000000-0000-4000-8000-000000000014"  # a test is scheduled
JOHANNA_MAILBOX = "b2000000-0000-4000-8000-000000000010"  # pending approval
MEGAN_MAILBOX = "b2000000-0000-4000-8000-000000000002"  # ACT set to None
HENRIETTA_MAILBOX = "b2000000-0000-4000-8000-000000000009"  # inactive
SITE_INSPECTION = "c3000000-0000-4000-8000-000000000018"  # Alex owns it; it has no Organizer
WEEKLY_PIPELINE_EVENT = "AAMkAG000002"  # in Alex's calendar in the fixture
I_OWN = (
    '<fetch><entity name="appointment"><attribute name="subject"/>'
    '<filter><condition attribute="ownerid" operator="eq-userid"/></filter></entity></fetch>'
)


def config() -> SandboxConfig:
    return SandboxConfig(clock=lambda: NOW, sync_every=0)  # cycles run when a test says


def org_with(sample_data: dict[str, Any], **keys: Any) -> Org:
    return Org.from_dict({**copy.deepcopy(sample_data), **keys})


@pytest.fixture
async def local(sample_data: dict[str, Any]) -> AsyncIterator[LocalOrg]:
    # Alex is the helpdesk agent here: he may write mailboxes, and manage his own filters as everyone may.
    org = org_with(sample_data, **{"$privileges": {ALEX_ID: ["prvWriteMailbox", *OWN_FILTERS]}})
    async with make_local(org, config()) as running:
        yield running


async def sync_now(local: LocalOrg) -> dict[str, Any]:
    """One cycle, as a person at the sandbox's machine asks for it."""
    async with httpx.AsyncClient(base_url=local.url) as client:
        response = await client.post("/$sandbox/sync")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def mailbox(local: LocalOrg, mailbox_id: str) -> dict[str, Any]:
    return next(m for m in local.running.sandbox.org.rows("mailboxes") if m["mailboxid"] == mailbox_id)


async def test_a_scheduled_test_completes_and_the_mailbox_is_healthy(local: LocalOrg) -> None:
    investigator = Investigator(local.clients.dataverse, local.clients.graph)
    assert (await investigator.run(ISAIAH)).causes == ["mailbox-not-tested"]
    await local.clients.dataverse.update_row(
        "mailboxes", ISAIAH_MAILBOX, {"testemailconfigurationscheduled": True}, caller=ALEX
    )
    assert (await investigator.run(ISAIAH)).warnings == ["mailbox-not-tested"]  # scheduled: a warning
    done = await sync_now(local)
    assert done["tested"][ISAIAH_MAILBOX] == 1
    row = mailbox(local, ISAIAH_MAILBOX)
    assert row["testemailconfigurationscheduled"] is False
    assert (
        row["testmailboxaccesscompletedon"] == row["lastsuccessfulsynccompletedon"] == "2026-11-25T12:30:00Z"
    )
    report = await investigator.run(ISAIAH)
    assert report.causes == [] and report.warnings == []


@pytest.mark.parametrize(
    ("mailbox_id", "approval_required", "status"),
    [
        (NESTOR_MAILBOX, True, 1),  # otherwise fine
        (JOHANNA_MAILBOX, True, 2),  # pending approval, and the org processes email only for approved ones
        (JOHANNA_MAILBOX, False, 1),  # pending approval, but approval is not required
        (MEGAN_MAILBOX, True, 2),  # Appointments, Contacts, and Tasks set to None
        (HENRIETTA_MAILBOX, True, 2),  # inactive
    ],
)
def test_a_test_fails_unless_the_mailbox_is_otherwise_fine(
    sample_data: dict[str, Any], mailbox_id: str, approval_required: bool, status: int
) -> None:
    org = org_with(sample_data)
    org.rows("organizations")[0]["requireapprovalforuseremail"] = approval_required
    row = next(m for m in org.rows("mailboxes") if m["mailboxid"] == mailbox_id)
    row["testemailconfigurationscheduled"] = True
    report = Sandbox(org, config()).sync.run()
    assert report.tested[mailbox_id] == status and row["actstatus"] == status
    assert row["testemailconfigurationscheduled"] is False
    assert row["testmailboxaccesscompletedon"] == "2026-11-25T12:30:00Z"


async def test_an_owner_only_appointment_syncs_once_a_filter_selects_it(local: LocalOrg) -> None:
    investigator = Investigator(local.clients.dataverse, local.clients.graph)
    before = await investigator.run(ALEX, "quarterly review")
    assert before.causes == ["outside-sync-filter"] and before.in_exchange is False
    first = await sync_now(local)  # others' appointments sync; Alex's owner-only one doesn't
    assert first["added"] and all(a["user"] != ALEX for a in first["added"])

    columns = {
        "userqueryid": NEW_FILTER,
        "name": "Appointments I own",
        "fetchxml": I_OWN,
        "querytype": 256,
        "returnedtypecode": "appointment",
    }
    await local.clients.dataverse.create_row("userqueries", columns, caller=ALEX)
    done = await sync_now(local)
    assert {"user": ALEX, "appointment": QUARTERLY} in done["added"]
    assert {"user": ALEX, "appointment": SITE_INSPECTION} not in done["added"]  # no Organizer: sync fails

    after = await investigator.run(ALEX, "quarterly review")
    assert after.causes == [] and after.in_exchange is True
    read = await local.clients.dataverse.read_record(ENTITIES["appointment"], QUARTERLY, caller=ALEX)
    assert read.row is not None
    record = record_facts(ENTITIES["appointment"], read.row, ALEX_ID)
    event = find_event(record, await calendar(local))
    assert event is not None and event.subject == "Quarterly review with Contoso"
    assert record.global_object_id and event.ical_uid == record.global_object_id  # linked, as sync links them
    assert event.start == record.start
    assert (await sync_now(local))["added"] == []  # the next cycle finds it there

    await local.clients.dataverse.update_row(
        "userqueries", NEW_FILTER, {"statecode": 1, "statuscode": 2}, caller=ALEX
    )
    gone = await sync_now(local)
    assert gone["removed"] == [{"user": ALEX, "appointment": QUARTERLY}]
    again = await investigator.run(ALEX, "quarterly review")
    assert again.causes == ["outside-sync-filter"] and again.in_exchange is False


async def test_events_from_the_fixture_are_never_removed(local: LocalOrg) -> None:
    await local.clients.dataverse.update_row("userqueries", ALEX_FILTER, {"statecode": 1}, caller=ALEX)
    done = await sync_now(local)
    assert done["removed"] == []
    assert WEEKLY_PIPELINE_EVENT in {e.id for e in await calendar(local)}


async def calendar(local: LocalOrg) -> list[Any]:
    today = datetime.now(UTC)  # the sample org's dates move to today
    return await local.clients.graph.calendar_view(
        ALEX, today - timedelta(days=30), today + timedelta(days=30)
    )


async def test_cycles_run_by_themselves_when_the_fixture_says(sample_data: dict[str, Any]) -> None:
    org = org_with(sample_data, **{"$sync_cycle_seconds": 0.01})
    async with make_local(org, SandboxConfig(clock=lambda: NOW)) as running:
        await asyncio.wait_for(running.running.sandbox.sync.wait_for(1), timeout=30)
        assert mailbox(running, NESTOR_MAILBOX)["testemailconfigurationscheduled"] is False
    async with make_local(org_with(sample_data), config()) as quiet:
        assert quiet.running.cycles is None  # the sample org's 60 s, turned off by the test


def test_the_sample_org_runs_a_cycle_a_minute() -> None:
    assert load_fixture(SAMPLE_ORG).sync_cycle_seconds == 60


@pytest.mark.parametrize("value", [0, -1, "60", True])
def test_a_bad_cycle_length_names_the_key(tmp_path: Path, value: Any) -> None:
    path = tmp_path / "org.json"
    path.write_text(json.dumps({"$sync_cycle_seconds": value}))
    with pytest.raises(FixtureError, match="sync_cycle_seconds"):
        load_fixture(path)
