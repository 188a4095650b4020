"""The finding ids in code are the ids of the report contract (design.md section 4), declared once each."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.diagnosis import FINDING_IDS, MAILBOX_RULE_IDS, RULES, Rule, self_checks
from bot.diagnosis.rule import SCOPES

# CI checks the clone out with shared/ beside it (read-only); a bare clone has no design to compare with.
DESIGN = Path(__file__).resolve().parents[2].parent / "shared" / "design.md"

# Contract ids with no rule yet. Adding a rule for one means removing it here: deliberately, in one place.
NOT_YET_IMPLEMENTED: frozenset[str] = frozenset()
# Documented rules the contract lacks: proposed in the issue note, and until design.md lists them they may
# only ever warn (design.md section 4), never fail.
PROPOSED_WARN_ONLY = frozenset({"act-other-org"})

_ROW = re.compile(r"^\| `([a-z0-9-]+)` \|", re.MULTILINE)


def contract_ids() -> list[str]:
    """The ids in the first column of section 4's finding table."""
    if not DESIGN.is_file():
        pytest.skip(f"no design to compare with: {DESIGN} is absent (CI puts shared/ beside the clone)")
    text = DESIGN.read_text(encoding="utf-8")
    section = re.search(r"^## 4\..*?(?=^## 5\.)", text, re.MULTILINE | re.DOTALL)
    assert section is not None, "design.md has no section 4 followed by a section 5"
    ids = _ROW.findall(section.group())
    assert len(ids) >= 10, f"the finding table was not found in section 4 (read {ids})"
    return ids


def test_every_implemented_id_is_in_the_contract() -> None:
    contract = contract_ids()
    assert len(contract) == len(set(contract)), "the design lists an id twice"
    assert sorted(set(FINDING_IDS) - set(contract) - PROPOSED_WARN_ONLY) == []


def test_contract_ids_without_a_rule_are_the_known_ones() -> None:
    missing = set(contract_ids()) - set(FINDING_IDS)
    assert missing == NOT_YET_IMPLEMENTED, (
        "update NOT_YET_IMPLEMENTED: a contract id gained a rule, or the contract gained an id"
    )


def test_each_id_is_declared_once() -> None:
    assert len(FINDING_IDS) == len(set(FINDING_IDS)) == len(RULES)
    assert tuple(r.id for r in RULES) == FINDING_IDS


def test_rules_run_in_fix_order_user_then_mailbox_then_record() -> None:
    ranks = [SCOPES.index(r.scope) for r in RULES]
    assert ranks == sorted(ranks)
    assert {r.scope for r in RULES} == set(SCOPES)


def test_the_sweep_acts_on_the_user_and_mailbox_rules() -> None:
    assert {r.id for r in RULES if r.scope in ("user", "mailbox")} == MAILBOX_RULE_IDS
    assert {"teams-user-unknown", "mailbox-missing", "act-sync-failing"} <= MAILBOX_RULE_IDS
    assert MAILBOX_RULE_IDS.isdisjoint({"record-not-found", "outside-sync-filter", "sync-pending"})


def test_only_sync_pending_waits_for_no_cause() -> None:
    assert [r.id for r in RULES if r.only_without_causes] == ["sync-pending"]


@pytest.mark.parametrize("declared", RULES, ids=lambda r: r.id)
def test_each_rule_says_what_to_do_and_where_it_is_documented(declared: Rule) -> None:
    guide = declared.guidance
    assert guide.source.startswith("https://")
    assert "pass" in guide.titles
    assert {"fail", "warn"} & set(guide.titles), "a rule that never fails nor warns says nothing"
    assert guide.steps, "a failing or warning finding tells the person what to do"


def test_the_checklist_comes_from_the_rules_guidance() -> None:
    steps = self_checks("task")
    declared = [step for r in RULES for step in r.guidance.self_check_for.get("task", r.guidance.self_check)]
    assert len(steps) == len(declared) >= 4
    assert steps[0].startswith("In Dynamics 365, open Settings > Email Configuration > Mailboxes")
    assert "your mailbox" in steps[0]
    assert any("Open the task:" in step for step in steps)
    assert not any("{" in step for step in steps), "every placeholder is filled"
    # Each type gets its own: the appointment's organizer advice is not given for a task or a contact.
    assert not any("organizer" in step for step in steps + self_checks("contact"))
    assert any("organizer" in step for step in self_checks("appointment"))
