"""Measures how many sequential round trips a piece of work needed (for tests and benchmarks)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["RequestTimeline"]


@dataclass
class RequestTimeline:
    """Records when each HTTP request started and its response arrived, through httpx event hooks.

    Usage::

        timeline = RequestTimeline()
        client = DataverseClient(url, event_hooks=timeline.hooks())
        ...
        timeline.depth()  # sequential round trips on the critical path
    """

    spans: list[tuple[float, float, str]] = field(default_factory=list)
    _open: dict[int, tuple[float, str]] = field(default_factory=dict)

    def hooks(self) -> dict[str, list[Any]]:
        async def on_request(request: httpx.Request) -> None:
            self._open[id(request)] = (time.perf_counter(), f"{request.method} {request.url.path}")

        async def on_response(response: httpx.Response) -> None:
            started, label = self._open.pop(id(response.request), (time.perf_counter(), "?"))
            self.spans.append((started, time.perf_counter(), label))

        return {"request": [on_request], "response": [on_response]}

    def clear(self) -> None:
        self.spans.clear()
        self._open.clear()

    def depth(self) -> int:
        """The longest chain of requests where each started only after the previous one's answer."""
        ordered = sorted(self.spans)
        chain: list[int] = []
        for i, (start, _, _) in enumerate(ordered):
            before = [chain[j] for j in range(i) if ordered[j][1] <= start]
            chain.append(1 + max(before, default=0))
        return max(chain, default=0)
