"""The report reads back what it writes, and says its verdict once for every edge."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.diagnosis import (
    RECORD_TYPES,
    ExchangeFacts,
    Finding,
    Report,
    Verdict,
    diagnose,
    stored_findings,
)
from bot.investigation import Investigator
from bot.sandbox import SAMPLE_ORG, LocalOrg
from tests.support.diagnosis import HEALTHY, RECORD, facts

ENTITY_SETS = {"appointment": "appointments", "contact": "contacts", "task": "tasks"}


def sample_runs() -> list[tuple[str, str | None, str]]:
    """(user, record, type): every sample user's mailbox check, and every record for its owner."""
    org = json.loads(Path(SAMPLE_ORG).read_text())
    aad = {u["systemuserid"]: u["azureactivedirectoryobjectid"] for u in org["systemusers"]}
    runs: list[tuple[str, str | None, str]] = [(user, None, "appointment") for user in aad.values()]
    runs.append(("nobody@example.com", None, "appointment"))
    for record_type in RECORD_TYPES:
        for row in org[ENTITY_SETS[record_type]]:
            owner = aad.get(row.get("_ownerid_value"))
            record_id = row.get("activityid") or row.get(f"{record_type}id")
            if owner and record_id:
                runs.append((owner, record_id, record_type))
    return runs


async def test_sample_org_reports_round_trip(local: LocalOrg) -> None:
    investigator = Investigator(local.clients.dataverse, local.clients.graph)
    seen: set[str] = set()
    runs = sample_runs()
    for user, record, record_type in runs:
        report = await investigator.run(user, record, record_type)  # type: ignore[arg-type]
        stored = json.loads(json.dumps(report.to_dict()))  # as a store or the outbox keeps it
        assert Report.from_dict(stored) == report, (user, record)
        assert Report.from_dict(stored).to_dict() == stored
        seen.update(f.id for f in report.findings)
    assert len(runs) >= 30
    assert {"teams-user-unknown", "mailbox-inactive", "outside-sync-filter", "sync-pending"} <= seen


def test_finding_round_trips_and_fills_absent_optional_keys() -> None:
    finding = diagnose(facts(mailbox=replace(HEALTHY, act_status=2))).finding("act-sync-failing")
    assert finding is not None
    assert Finding.from_dict(json.loads(json.dumps(finding.to_dict()))) == finding
    bare = Finding.from_dict({"id": "mailbox-missing", "status": "fail", "title": "No mailbox"})
    assert bare == Finding("mailbox-missing", "fail", "No mailbox")


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ({"status": "fail", "title": "t"}, "'id'"),
        ({"id": "x", "status": "broken", "title": "t"}, "'status'"),
        ({"id": "x", "status": "fail", "title": 3}, "'title'"),
        ({"id": "x", "status": "fail", "title": "t", "steps": "do it"}, "'steps'"),
        ({"id": "x", "status": "fail", "title": "t", "evidence": {"a": {"b": [1]}}}, "evidence 'a'"),
    ],
)
def test_finding_from_dict_names_what_is_wrong(data: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        Finding.from_dict(data)


def test_report_from_dict_refuses_what_is_not_a_report() -> None:
    good = diagnose(facts()).to_dict()
    with pytest.raises(ValueError, match="'user'"):
        Report.from_dict({k: v for k, v in good.items() if k != "user"})
    with pytest.raises(ValueError, match="record 'type'"):
        Report.from_dict({**good, "record": {"type": "email", "id": "1"}})
    with pytest.raises(ValueError, match="'in_exchange'"):
        Report.from_dict({**good, "in_exchange": "yes"})
    with pytest.raises(ValueError, match="missing"):
        Report.from_dict({"findings": [], "error": "diagnosis unavailable: dataverse"})


def test_stored_findings_skips_what_is_not_a_finding() -> None:
    kept = {"findings": [{"id": "a", "status": "fail", "title": "A"}, {"id": "b"}, "junk"]}
    assert stored_findings(kept) == (Finding("a", "fail", "A"),)
    assert stored_findings({"findings": [], "error": "diagnosis unavailable: dataverse"}) == ()
    assert stored_findings({}) == ()


def test_verdict_blocked_names_the_causes_in_fix_order() -> None:
    report = diagnose(facts(mailbox=replace(HEALTHY, statecode=1, act_delivery=2)))
    verdict = report.verdict()
    assert verdict.kind == "blocked"
    assert verdict.ids == report.causes == ["mailbox-inactive", "act-not-server-side-sync"]


def test_verdict_warned_when_nothing_blocks() -> None:
    record = replace(RECORD, statecode=2, statuscode=4)
    verdict = diagnose(facts(record=record)).verdict()
    assert verdict.kind == "warned" and verdict.ids == ["shown-as-free"]


@pytest.mark.parametrize(("found", "kind"), [(True, "in_exchange"), (None, "clear")])
def test_verdict_when_everything_passes(found: bool | None, kind: str) -> None:
    verdict = diagnose(facts(exchange=ExchangeFacts(found=found))).verdict()
    assert verdict == Verdict(kind)  # type: ignore[arg-type]
    assert verdict.findings == ()
