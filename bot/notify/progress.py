"""Progress of long work (a sweep, its deliveries) on stderr: on a terminal one line updated in place as
people are read, queued and sent, with the sending rate; otherwise (a log file, cron's mail) nothing until
the work ends, then one summary line. Never on stdout, which `--json` keeps for its own output.

    progress = Progress(sys.stderr, "sweep")
    progress.add(read=500, affected=12)
    progress.add(sent=1)
    progress.finish()   # the summary line (a newline after the live one on a terminal)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress"]

REDRAW = 0.2  # seconds between redraws of the live line
_ORDER = ("read", "affected", "queued", "already told", "unreachable", "sent", "failed")


class Progress:
    """Counters of one piece of work, shown live on a terminal and summed up at the end."""

    def __init__(
        self,
        out: TextIO,
        label: str,
        *,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out
        self.label = label
        self.live = out.isatty() if live is None else live
        self.clock = clock
        self.counts: dict[str, int] = {}
        self.started = clock()
        self._first_sent: float | None = None
        self._drawn = 0.0
        self._width = 0

    def add(self, **counts: int) -> None:
        """Count more of each (`already_told=` is shown as "already told")."""
        for name, n in counts.items():
            key = name.replace("_", " ")
            self.counts[key] = self.counts.get(key, 0) + n
        if counts.get("sent") and self._first_sent is None:
            self._first_sent = self.clock()
        if self.live and self.clock() - self._drawn >= REDRAW:
            self._draw()

    def rate(self) -> float | None:
        """Messages sent per second since the first one."""
        sent = self.counts.get("sent", 0)
        if not sent or self._first_sent is None:
            return None
        return sent / max(self.clock() - self._first_sent, 1e-3)

    def line(self) -> str:
        parts = [f"{self.counts[k]:,} {k}" for k in _ORDER if k in self.counts]
        parts += [f"{n:,} {k}" for k, n in self.counts.items() if k not in _ORDER]
        rate = self.rate()
        if rate is not None:
            parts.append(f"{rate:.1f}/s")
        return f"{self.label}: {', '.join(parts) or 'starting'} ({self.clock() - self.started:.1f} s)"

    def _draw(self) -> None:
        line = self.line()
        self._width = max(self._width, len(line))
        self.out.write("\r" + line.ljust(self._width))
        self.out.flush()
        self._drawn = self.clock()

    def finish(self) -> None:
        """The summary: the live line's last state (then a newline), or one line when not live."""
        if self.live:
            self._draw()
            self.out.write("\n")
        else:
            self.out.write(self.line() + "\n")
        self.out.flush()
