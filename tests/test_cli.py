"""`python -m bot diagnose` and friends, as an admin runs them (design.md section 3)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.sandbox import SAMPLE_ORG
from tests.conftest import ALEX

ROOT = Path(__file__).resolve().parents[1]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, data: Any) -> str:
    path = tmp_path / "org.json"
    path.write_text(json.dumps(data))
    return str(path)


def test_entry_point_prints_the_report_json() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "diagnose",
            "--user",
            ALEX,
            "--record",
            "quarterly",
            "--fixture",
            str(SAMPLE_ORG),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
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


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("diagnose", "sandbox"):
        with pytest.raises(SystemExit) as caught:
            main([command, "--help"])
        assert caught.value.code == 0
        assert "usage:" in capsys.readouterr().out
