"""`python -m bot fix` and `fixes`, as an admin runs them (design.md sections 3 and 4): the fixes a
diagnosis proposes, applying one as the user or as an agent, undoing a filter fix, and the exit codes (0
done, 2 not applicable, not allowed or refused with the reason, 3 Dataverse unreachable)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.fixing import Fixer
from bot.investigation import Investigator
from bot.sandbox import SAMPLE_ORG, SandboxConfig
from bot.sandbox.config import Fault
from bot.sandbox.server import RunningSandbox
from bot.store import SqliteStore
from tests.support.cli import run, run_beside
from tests.support.org import ALEX, QUARTERLY, env, make_local
from tests.support.processes import bot_env
from tests.support.repo import ROOT
from tests.support.teams import running_connector
from tests.support.timing import until

SAMPLE = str(SAMPLE_ORG)
ISAIAH = "isaiahl@example.com"  # his mailbox was never tested
ISAIAH_USER = "a1000000-0000-4000-8000-000000000004"  # his systemuserid
DATAVERSE_SETTINGS = ("DATAVERSE_URL", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")


@pytest.fixture(autouse=True)
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path}/store.sqlite3"
    monkeypatch.setenv("STORE_URL", url)
    return url


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


@pytest.mark.parametrize(("granted", "code"), [([], 2), (["prvWriteMailbox"], 0)])
def test_a_user_schedules_their_own_mailbox_test_where_dataverse_lets_them(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sample_data: dict[str, Any],
    granted: list[str],
    code: int,
) -> None:
    """Without --as, Test & Enable is applied as the user: Dataverse decides (an ordinary user lacks
    prvWriteMailbox)."""
    fixture = tmp_path / "org.json"
    fixture.write_text(json.dumps({**sample_data, "$privileges": {ISAIAH_USER: granted}}))
    argv = ("fix", "--user", ISAIAH, "--fixture", str(fixture), "--apply", "schedule-mailbox-test", "--json")
    exited, out, err = run(capsys, *argv)
    assert exited == code, err
    if code:
        assert "Dataverse refused the fix" in err and "is missing prvWriteMailbox privilege" in err
    else:
        assert json.loads(out)["applied"]["by"] == "00000000-0000-0000-0000-0000000000023"


async def test_undo_of_a_filter_deleted_meanwhile_is_done_and_other_refusals_exit_2(
    https_sandbox: RunningSandbox,
    ca_bundle: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env(monkeypatch, https_sandbox.url)
    org = https_sandbox.sandbox.org
    user = ("--user", ALEX, "--record", QUARTERLY)
    code, out, err = await run_beside(capsys, "fix", *user, "--apply", "add-filter", "--json")
    assert code == 0, err
    made = json.loads(out)["applied"]["result"]["written"][0]["id"]
    org.tables["userqueries"] = [r for r in org.rows("userqueries") if r["userqueryid"] != made]  # deleted
    code, out, err = await run_beside(capsys, "fix", *user, "--undo", "add-filter")
    assert code == 0, err
    assert out.startswith("Undone: add-filter") and f"gone already: userqueries({made})" in out

    code, out, err = await run_beside(capsys, "fix", *user, "--apply", "add-filter", "--json")
    assert code == 0, err  # a filter anew
    https_sandbox.sandbox.config.faults.append(Fault("/api/data/v9.2/userqueries(*", status=409, times=1))
    code, out, err = await run_beside(capsys, "fix", *user, "--undo", "add-filter")
    assert code == 2 and out == "" and "Dataverse would not undo it" in err


def test_a_delivery_worker_needs_dataverse(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The outbox holds the checks after fixes, which diagnose again: a worker that could lead delivery
    without Dataverse would hold them back, so it doesn't start."""
    for name in DATAVERSE_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    code, out, err = run(capsys, "deliver")
    assert code == 2 and out == ""
    assert "deliver needs Dataverse" in err and "DATAVERSE_URL" in err and "--sandbox" in err


async def test_a_delivery_worker_sends_the_checks_after_a_fix(
    tmp_path: Path, sample_data: dict[str, Any]
) -> None:
    """`deliver --sandbox`, the delivery leader (OUTBOX_LEADER's default), sends a fix's check: it
    diagnoses again (on its own sample org, where the fix was never made) and tells Alex."""
    path = tmp_path / "store.sqlite3"
    store = SqliteStore(str(path))
    async with running_connector() as connector:
        try:
            await store.save_reference("tenant-1", ALEX, connector.reference("a:alex"))
            async with make_local(sample_data, SandboxConfig(sync_every=0)) as local:
                fixer = Fixer(store, Investigator(local.clients.dataverse), recheck_after=(0,))
                await fixer.apply(ALEX, QUARTERLY, "appointment", "add-filter", by=ALEX)
        finally:
            await store.close()
        environment = bot_env(path)
        for name in DATAVERSE_SETTINGS:
            environment.pop(name, None)
        with (tmp_path / "deliver.log").open("wb") as log:
            worker = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "bot", "deliver", "--sandbox", "--every", "0.1"),
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=log,
            )
        try:
            await until(
                lambda: connector.sent or worker.returncode is not None, "the check's message", seconds=60
            )
        finally:
            worker.terminate()
            await asyncio.wait_for(worker.wait(), 20)
        [told] = [a.get("text") for a in connector.sent]
        assert told is not None and told.startswith("The fix is in, but Quarterly review with Contoso"), (
            tmp_path / "deliver.log"
        ).read_text()


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
