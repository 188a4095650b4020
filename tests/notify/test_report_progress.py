"""Progress of long work on stderr (live on a terminal, one summary line otherwise), and the report card
showing outside text as written."""

from __future__ import annotations

import io
import json
import sys

import pytest

from bot.notify.progress import Progress
from cards.common import to_dict
from cards.report import Failed, ReportView, build_delivery_report_card
from tests.support.cards import card_text


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_on_a_terminal_one_line_is_updated_in_place_with_the_rate() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress(out, "sweep", live=True, clock=clock)
    progress.add(read=500, affected=20)
    clock.now += 1
    progress.add(queued=20)
    progress.add(sent=10)
    clock.now += 0.5
    progress.add(sent=10)
    progress.finish()
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n") and text.count("\r") >= 3  # redrawn in place
    last = text.rsplit("\r", 1)[1].strip()
    assert last == "sweep: 500 read, 20 affected, 20 queued, 20 sent, 40.0/s (1.5 s)"


def test_otherwise_only_a_summary_line() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress(out, "sweep", live=False, clock=clock)
    for _ in range(100):
        progress.add(read=10)
    progress.add(unreachable=3, already_told=2)
    assert out.getvalue() == ""
    progress.finish()
    assert out.getvalue() == "sweep: 1,000 read, 2 already told, 3 unreachable (0.0 s)\n"


def test_names_and_errors_on_the_report_card_show_as_written() -> None:
    hostile = "[Reset your password](https://evil.example) **now**"
    view = ReportView(
        found=2,
        told=0,
        already_told=0,
        muted=0,
        fixed=0,
        causes={"mailbox-inactive": 2},
        unreachable=[f"{hostile} (mailbox-inactive)"],
        unreachable_total=40,
        failed=1,
        reasons={hostile: 1},
        failures=[Failed(hostile, "mailbox-inactive", hostile)],
    )
    card = to_dict(build_delivery_report_card(view))
    shown = card_text(card)
    assert "[Reset your password](https://" not in shown and "https://evil" not in json.dumps(card)
    assert "\\[Reset your password](https\\://evil.example)" in shown  # escaped: never a link
    assert "… and 39 more" in shown and "Can't reach yet" in shown


def test_serve_counts_each_sweep_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` sweeps every half hour: the second sweep's line shows its own people and rate, not a sum."""
    from bot.app import _LiveProgress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    live = _LiveProgress()
    first = live.new_sweep()
    assert first is not None
    first.add(read=10_000)
    live.sent(5)
    second = live.new_sweep()
    assert second is not None and second is not first and second.counts == {}
    live.sent(3)
    assert second.counts == {"sent": 3} and first.counts == {"read": 10_000, "sent": 5}
