"""`python -m bot fix` and `fixes`, as an admin runs them (design.md sections 3 and 4): the fixes a
diagnosis proposes, applying one as the user or as an agent, undoing a filter fix, and the exit codes (0
done, 2 not applicable, not allowed or refused with the reason, 3 Dataverse unreachable)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.sandbox import SAMPLE_ORG
from bot.sandbox.server import RunningSandbox
from tests.support.org import ALEX, QUARTERLY, env

SAMPLE = str(SAMPLE_ORG)
ISAIAH = "isaiahl@example.com"  # his mailbox was never tested


@pytest.fixture(autouse=True)
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/store.sqlite3"
    monkeypatch.setenv("STORE_URL", url)
    return url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def run_beside(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The CLI in a thread of its own (it runs its own event loop), beside a sandbox on this one."""
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_fixes_a_diagnosis_proposes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "fix", "--user", ALEX, "--record", "quarterly", "--fixture", SAMPLE, "--json")
    assert code == 0
    [fix] = json.loads(out)["fixes"]
    assert (fix["id"], fix["finding"], fix["who"]) == ("add-filter", "outside-sync-filter", "self")
    assert {c["column"]: c["to"] for c in fix["changes"]}["querytype"] == 256
    code, out, _ = run(capsys, "fix", "--user", ISAIAH, "--fixture", SAMPLE)
    assert code == 0 and "schedule-mailbox-test: " in out
    assert "testemailconfigurationscheduled: False -> True" in out and "an agent (--as AGENT)" in out


async def test_applying_prints_the_fix_and_its_result_and_a_second_apply_writes_nothing(
    https_sandbox: RunningSandbox,
    ca_bundle: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env(monkeypatch, https_sandbox.url)  # one org for every command, as an admin's real one
    argv = ("fix", "--user", "alexw@example.com", "--record", QUARTERLY)
    code, out, err = await run_beside(capsys, *argv, "--apply", "add-filter", "--json")
    assert code == 0, err
    applied = json.loads(out)["applied"]
    assert applied["id"] == "add-filter" and applied["first"] is True and applied["by"] == ALEX
    assert applied["changes"] and applied["result"]["written"][0]["action"] == "created"
    code, out, _ = await run_beside(capsys, *argv, "--apply", "add-filter")
    assert code == 0 and out.startswith("Applied (already, earlier: nothing written now): add-filter")
    code, out, err = await run_beside(capsys, "fixes", "--json")
    [kept] = json.loads(out)["applications"]
    assert (kept["fix"]["id"], kept["user"], kept["state"]) == ("add-filter", ALEX, "applied")
    code, out, err = await run_beside(capsys, "fixes")
    assert code == 0 and "applied" in out and "add-filter" in out and "1 fix(es)" in err


def test_each_fixture_run_is_an_org_of_its_own(capsys: pytest.CaptureFixture[str]) -> None:
    """With --fixture the org lives as long as the command, and so does the record of what was applied to
    it: applying again to a fresh copy writes again, and STORE_URL keeps nothing of either."""
    argv = ("fix", "--user", "alexw@example.com", "--record", QUARTERLY, "--fixture", SAMPLE, "--json")
    for _ in range(2):
        code, out, _ = run(capsys, *argv, "--apply", "add-filter")
        applied = json.loads(out)["applied"]
        assert code == 0 and applied["first"] is True
        assert applied["result"]["written"][0]["action"] == "created"
    code, out, _ = run(capsys, "fixes", "--json")
    assert code == 0 and json.loads(out)["applications"] == []


async def test_undo_deactivates_the_filter_the_fix_made(
    https_sandbox: RunningSandbox,
    ca_bundle: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env(monkeypatch, https_sandbox.url)  # one org for every command: the production clients and MSAL
    user = ("--user", ALEX, "--record", QUARTERLY)
    code, out, err = await run_beside(capsys, "fix", *user, "--apply", "add-filter", "--json")
    assert code == 0, err
    made = json.loads(out)["applied"]["result"]["written"][0]["id"]
    code, out, err = await run_beside(capsys, "fix", *user, "--undo", "add-filter", "--json")
    assert code == 0, err
    undone = json.loads(out)["undone"]
    assert undone["state"] == "undone" and undone["first"] is True
    row = https_sandbox.sandbox.org.by_key("userqueries", made)
    assert row is not None and (row["statecode"], row["statuscode"]) == (1, 2)
    code, out, err = await run_beside(capsys, "fix", *user, "--undo", undone["key"], "--json")
    assert code == 0 and json.loads(out)["undone"]["first"] is False


def test_a_refusal_exits_2_with_dataverse_words(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "fix",
        "--user",
        ISAIAH,
        "--fixture",
        SAMPLE,
        "--apply",
        "schedule-mailbox-test",
        "--as",
        ISAIAH,
    )
    assert code == 2 and out == ""
    assert err.startswith("error: could not apply schedule-mailbox-test: Dataverse refused the fix")
    assert "is missing prvWriteMailbox privilege" in err


def test_an_agent_granted_the_privilege_applies_a_mailbox_fix(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sample_data: dict[str, Any]
) -> None:
    fixture = tmp_path / "org.json"
    megan = "a1000000-0000-4000-8000-000000000002"
    fixture.write_text(json.dumps({**sample_data, "$privileges": {megan: ["prvWriteMailbox"]}}))
    code, out, err = run(
        capsys,
        "fix",
        "--user",
        ISAIAH,
        "--fixture",
        str(fixture),
        "--apply",
        "schedule-mailbox-test",
        "--as",
        "meganb@example.com",
        "--json",
    )
    assert code == 0, err
    applied = json.loads(out)["applied"]
    assert applied["result"]["written"] == [
        {"table": "mailboxes", "id": "b2000000-0000-4000-8000-000000000004", "action": "updated"}
    ]


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (("--apply", "approve-email", "--as", ALEX), "approve-email doesn't apply now"),
        (("--apply", "add-filter", "--as", "meganb@example.com"), "only Alex Wilber may do this"),
        (("--apply", "set-act-server-side-sync"), "is an agent's fix"),
        (
            ("--apply", "add-filter", "--as", "nobody@example.com"),
            "--as nobody@example.com: no Dynamics 365 user",
        ),
        (("--undo", "add-filter"), "no add-filter was applied"),
    ],
)
def test_what_cannot_be_done_exits_2_saying_why(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], why: str
) -> None:
    code, out, err = run(capsys, "fix", "--user", ALEX, "--record", QUARTERLY, "--fixture", SAMPLE, *argv)
    assert code == 2 and out == "" and why in err and len(err.splitlines()) == 1


def test_dataverse_unreachable_exits_3(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sample_data: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIAGNOSIS_BUDGET_SECONDS", "2")
    fixture = tmp_path / "org.json"
    fixture.write_text(json.dumps({**sample_data, "$faults": [{"route": "dataverse", "status": 503}]}))
    code, out, err = run(capsys, "fix", "--user", ALEX, "--fixture", str(fixture), "--apply", "add-filter")
    assert code == 3 and out == "" and "Dataverse" in err and "503" in err


def test_nothing_applied_lists_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "fixes", "--json")
    assert code == 0 and json.loads(out) == {"applications": []}


@pytest.mark.parametrize("command", ["fix", "fixes"])
def test_each_has_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as caught:
        main([command, "--help"])
    assert caught.value.code == 0 and "usage:" in capsys.readouterr().out
