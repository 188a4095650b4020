"""`python -m bot diagnose` and friends, as an admin runs them (design.md section 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.config import load_settings
from bot.errors import BackendUnavailable, ConfigError, FixtureError, InputError, StoreError
from bot.health import check_store
from bot.sandbox import SAMPLE_ORG
from bot.setup import wiring
from bot.store import SqliteStore
from tests.support.cli import run
from tests.support.org import ALEX
from tests.support.repo import ROOT


def write(tmp_path: Path, data: Any) -> str:
    path = tmp_path / "org.json"
    path.write_text(json.dumps(data))
    return str(path)


def python_m_bot(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m bot ...` in a child process, as an admin runs it."""
    command = [sys.executable, "-m", "bot", *argv]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_entry_point_prints_the_report_json() -> None:
    done = python_m_bot(
        "diagnose", "--user", ALEX, "--record", "quarterly", "--fixture", str(SAMPLE_ORG), "--json"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["causes"] == ["outside-sync-filter"]
    assert report["user"]["name"] == "Alex Wilber"
    assert report["record"]["subject"] == "Quarterly review with Contoso"


def test_human_readable_table_has_verdict_and_numbered_steps(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "diagnose", "--user", "meganb@example.com", "--fixture", str(SAMPLE_ORG))
    assert code == 0
    assert "Verdict:     1 cause(s) found: act-not-server-side-sync" in out
    assert "FAIL  act-not-server-side-sync" in out
    assert "1) In Dynamics 365, open Settings > Email Configuration > Mailboxes" in out
    assert "meganb@example.com" in out


def test_unknown_user_is_a_finding_not_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "diagnose", "--user", "ghost@example.com", "--fixture", str(SAMPLE_ORG), "--json"
    )
    assert code == 0 and json.loads(out)["causes"] == ["teams-user-unknown"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "not-an-id"], "is not an id"),
        (["--user", ALEX, "--record", "?!"], "has no words to look for"),
        (["--user", "adelev@example.com", "--record", "litware"], "2 appointments match 'litware'"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, "diagnose", *args, "--fixture", str(SAMPLE_ORG))
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_ambiguous_words_list_the_candidates(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, err = run(
        capsys,
        "diagnose",
        "--user",
        "adelev@example.com",
        "--record",
        "litware",
        "--fixture",
        str(SAMPLE_ORG),
    )
    assert "Product demo for Litware" in err and "Litware follow-up (canceled)" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["diagnose", "--user", ALEX, "--type", "email"])
    assert caught.value.code == 2
    assert "invalid choice: 'email'" in capsys.readouterr().err


def test_malformed_fixture_names_the_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"systemusers": [')
    code, _, err = run(capsys, "diagnose", "--user", ALEX, "--fixture", str(path))
    assert code == 2 and str(path) in err and "not valid JSON" in err


def test_backend_down_exits_3_saying_what_was_tried(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sample_data: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIAGNOSIS_BUDGET_SECONDS", "2")
    fixture = write(tmp_path, {**sample_data, "$faults": [{"route": "dataverse", "status": 503}]})
    code, out, err = run(capsys, "diagnose", "--user", ALEX, "--fixture", fixture)
    assert code == 3 and out == ""
    assert "Dataverse" in err and "503" in err and "attempt" in err


def test_unreachable_entra_exits_3(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAVERSE_URL", "https://127.0.0.1:9")
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://127.0.0.1:9")
    monkeypatch.setenv("AZURE_TENANT_ID", "contoso.example")
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-2222-4333-8444-555555555555")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "x")
    code, _, err = run(capsys, "diagnose", "--user", ALEX)
    assert code == 3 and "Entra" in err


def test_missing_configuration_names_the_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DATAVERSE_URL", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = run(capsys, "diagnose", "--user", ALEX)
    assert code == 2
    assert "DATAVERSE_URL" in err and "AZURE_CLIENT_SECRET" in err and "--fixture" in err


COMMANDS = ("serve", "deliver", "diagnose", "intent", "sweep", "check-config", "manifest", "sandbox")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as caught:
        main([command, "--help"])
    assert caught.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (InputError("'?!' has no words"), 2, "error: '?!' has no words"),
        (FixtureError("org.json: not valid JSON"), 2, "error: org.json: not valid JSON"),
        (ConfigError("STORE_URL: unknown"), 2, "error: STORE_URL: unknown"),
        (StoreError("the store is locked"), 3, "error: could not intent: the store is locked"),
        (BackendUnavailable("Dataverse", "503, 3 attempts"), 3, "error: could not intent: Dataverse: 503"),
    ],
)
def test_one_boundary_maps_the_error_tree_to_exit_codes_and_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    code: int,
    line: str,
) -> None:
    def fails(text: str) -> None:
        raise error

    monkeypatch.setattr("bot.teams.intents.classify", fails)
    exit_code, out, err = run(capsys, "intent", "hello")
    assert exit_code == code and out == ""
    assert err.startswith(line) and len(err.splitlines()) == 1


def test_ctrl_c_exits_130(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(text: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("bot.teams.intents.classify", interrupted)
    assert run(capsys, "intent", "hello")[0] == 130


def test_a_malformed_fault_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "sandbox", "--fault", '{"status": 429}')
    assert code == 2 and out == ""
    assert err.startswith("error: --fault: a fault needs 'route'")


def serve(*argv: str, unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """`python -m bot serve ...` in a child process (serve sets up the process's logging)."""
    environment = {k: v for k, v in os.environ.items() if k not in ("MicrosoftAppId", *unset)}
    return python_m_bot("serve", "--port", "0", *argv, env=environment)


def test_serve_refuses_before_binding_a_port(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("[")
    unset = ("DATAVERSE_URL", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")
    for done, says in (
        (serve("--sandbox", str(broken)), str(broken)),
        (serve(unset=unset), "not set: DATAVERSE_URL"),
        (serve("--sandbox", "--host", "0.0.0.0"), "bind to loopback only"),
    ):
        assert done.returncode == 2, done.stderr
        assert "listening" not in done.stdout and "Traceback" not in done.stderr
        [error] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert says in error


async def test_wiring_opens_the_store_once_and_closes_only_what_it_opened(tmp_path: Path) -> None:
    settings = load_settings(STORE_URL=f"sqlite:///{tmp_path}/s.sqlite3")
    async with wiring(settings, fixture=True) as wired:
        assert wired.sandbox is not None
        opened = wired.store()
        assert wired.store() is opened
        report = await wired.investigator().run(ALEX, None, "appointment")
        assert report.user.name == "Alex Wilber"
    assert not (await check_store(opened)).ok
    given = SqliteStore(":memory:")
    async with wiring(settings, fixture=True, store=given) as wired:
        assert wired.store() is given
    assert (await check_store(given)).ok
    await given.close()
