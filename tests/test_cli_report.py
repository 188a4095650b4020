"""`python -m bot report` as an admin runs it (design.md section 3): every proactive notice and its outcome,
as a table, CSV or JSON Lines; and `sweep`'s progress, which never reaches stdout."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest

from bot.cli import main
from bot.notify.outbox import DeliveryReport, NotifyProblem, Unreached, enqueue
from bot.sandbox import SAMPLE_ORG
from bot.store import SqliteStore
from tests.support.cli import run
from tests.support.org import ADELE, ALEX, MEGAN

FINDING = {
    "id": "act-not-server-side-sync",
    "status": "fail",
    "title": "Appointments, Contacts, and Tasks are not set to synchronize",
    "evidence": {},
    "steps": [],
    "source": "https://support.microsoft.com/help/4509420",
}


@pytest.fixture
async def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A store where one sweep told Megan, gave up on Alex (403) and could not reach Adele."""
    path = tmp_path / "store.sqlite3"
    store = SqliteStore(str(path))
    try:
        for user, name in ((MEGAN, "Megan Bowen"), (ALEX, "Alex, Wilber")):
            notice = NotifyProblem(tenant="t1", user=user, finding=FINDING, name=name)
            await enqueue(store, f"notify:{user}:{FINDING['id']}:x", notice, group="s1")
        report = DeliveryReport(
            sweep="s1", at=time.time(), found=3, reachable=2, queued=2, already_told=0, muted=0, fixed=0,
            causes={"mailbox-inactive": 1, "act-not-server-side-sync": 2},
            unreachable=[Unreached(user=ADELE, name="Adele Vance", causes=["mailbox-inactive"])],
            unreachable_total=1, unreachable_changed=True, settle_by=time.time(),
        )  # fmt: skip
        await enqueue(store, "report:s1", report, group="s1")
        for entry in await store.claim_due(limit=10, lease_seconds=60):
            if entry.payload.get("user") == MEGAN:
                await store.mark_sent(entry)
            elif entry.payload.get("user") == ALEX:
                await store.mark_dead(entry, error="HTTP 403")
    finally:
        await store.close()
    url = f"sqlite:///{path}"
    monkeypatch.setenv("STORE_URL", url)
    return url


def test_the_table_lists_each_notice_with_its_outcome(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "report")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["QUEUED", "WHO", "CAUSE", "OUTCOME", "SENT", "WHY"]
    megan = next(line for line in lines if "Megan Bowen" in line)
    alex = next(line for line in lines if "Alex, Wilber" in line)
    adele = next(line for line in lines if "Adele Vance" in line)
    assert "act-not-server-side-sync" in megan and "delivered" in megan
    assert "failed" in alex and "HTTP 403" in alex
    assert "mailbox-inactive" in adele and "unreachable" in adele and "no chat with the bot yet" in adele
    assert lines[-1] == "3 notice(s)"


def test_csv_and_json_lines_carry_the_same_rows(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "report", "--csv")
    assert code == 0 and err.strip() == "3 notice(s)"
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["name"]: r["outcome"] for r in rows} == {
        "Megan Bowen": "delivered",
        "Alex, Wilber": "failed",  # a comma in a name stays one field
        "Adele Vance": "unreachable",
    }
    megan = next(r for r in rows if r["user"] == MEGAN)
    assert (
        megan["sent"].endswith("Z") and megan["queued"] <= megan["sent"] and megan["kind"] == "notify_problem"
    )
    code, out, _ = run(capsys, "report", "--json")
    objects = [json.loads(line) for line in out.splitlines()]  # JSON Lines: one object per notice
    assert code == 0 and [o["name"] for o in objects] == [r["name"] for r in rows]
    assert next(o for o in objects if o["user"] == ALEX)["reason"] == "HTTP 403"


def test_since_filters_by_when_queued(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "report", "--since", "2999-01-01", "--json")
    assert code == 0 and out == ""
    code, out, _ = run(capsys, "report", "--since", "2000-01-01T00:00:00+02:00", "--json")
    assert code == 0 and len(out.splitlines()) == 3


@pytest.mark.parametrize(
    "argv",
    [["report", "--since", "last tuesday"], ["report", "--csv", "--json"]],
    ids=["bad-date", "two-formats"],
)
def test_usage_errors_exit_2(store_url: str, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_a_store_that_cant_be_opened_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "not-a-db.sqlite3").write_text("hello, I am not SQLite" * 100)
    monkeypatch.setenv("STORE_URL", f"sqlite:///{tmp_path / 'not-a-db.sqlite3'}")
    code, out, err = run(capsys, "report")
    assert code == 3 and out == ""
    assert err.startswith("error: could not report:") and "not a SQLite database" in err


def test_sweep_json_stays_clean_and_progress_is_one_summary_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STORE_URL", f"sqlite:///{tmp_path / 's.sqlite3'}")
    code, out, err = run(capsys, "sweep", "--fixture", str(SAMPLE_ORG), "--json", "--deliver-for", "5")
    assert code == 0
    result = json.loads(out)  # stdout is the JSON and nothing else
    assert result["expired"] == 0 and result["queued"] == 0
    [summary] = [line for line in err.splitlines() if line.startswith("sweep:")]
    assert f"{len(result['affected'])} affected" in summary and "read" in summary and "\r" not in err


async def test_csv_cells_a_spreadsheet_would_run_are_written_as_text() -> None:
    """Names come from Dataverse: one like `=HYPERLINK(...)` must not become a live formula in Excel."""
    from collections.abc import AsyncIterator

    from bot.notify.export import write_rows
    from bot.notify.report import NoticeRow

    async def rows() -> AsyncIterator[NoticeRow]:
        for name in ('=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(1)", "Megan Bowen"):
            yield NoticeRow(
                None, MEGAN, name, "mailbox-missing", "failed", "HTTP 403", None, "notify_problem"
            )

    out = io.StringIO()
    assert await write_rows(rows(), out, "csv") == 5
    names = [r["name"] for r in csv.DictReader(io.StringIO(out.getvalue()))]
    assert names == ['\'=HYPERLINK("http://x","y")', "'+1", "'-2", "'@SUM(1)", "Megan Bowen"]
