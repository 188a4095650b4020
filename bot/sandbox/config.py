"""How a sandbox is set up (`SandboxConfig`), the misbehaviour it can be told to show (`Fault`), and the
state its routes share (`SandboxState`)."""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

from bot.sandbox.org import Org
from bot.sandbox.wire import area, error

__all__ = ["Fault", "SandboxConfig", "SandboxState", "inject_faults", "utc_now"]


@dataclass
class Fault:
    """Misbehaviour for requests whose path matches `route`.

    `route` is "dataverse", "graph", "token", "*", or a glob over the path (e.g. "/api/data/v9.2/userqueries*").
    `times` limits the fault to the first N matching requests (None: every one).
    """

    route: str
    latency: float = 0.0
    status: int | None = None
    retry_after: float | None = None
    hang: float | None = None
    times: int | None = None
    hits: int = 0

    def matches(self, path: str) -> bool:
        if self.route in ("*", area(path)):
            return True
        return fnmatch.fnmatchcase(path, self.route)

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> Fault:
        known = {"route", "latency", "status", "retry_after", "hang", "times"}
        unknown = set(spec) - known
        if unknown or "route" not in spec:
            raise ValueError(
                f"a fault needs 'route' and may have {sorted(known - {'route'})}; got {sorted(spec)}"
            )
        return cls(**{k: spec[k] for k in known if k in spec})

    def used_up(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def response(self) -> web.Response | None:
        """The answer this fault gives instead of the route's (None: it only delays)."""
        if self.status is None:
            return None
        headers = {"Retry-After": f"{self.retry_after:g}"} if self.retry_after is not None else None
        code = "0x80072322" if self.status == 429 else "0x80040216"
        return error(self.status, code, f"Injected fault: HTTP {self.status}", headers)


async def inject_faults(faults: list[Fault], path: str) -> web.Response | None:
    """Apply, in order, the faults for `path` that are not used up; the first with a status answers."""
    for fault in faults:
        if not fault.matches(path) or fault.used_up():
            continue
        fault.hits += 1
        if fault.latency:
            await asyncio.sleep(fault.latency)
        if fault.hang:
            await asyncio.sleep(fault.hang)
        answer = fault.response()
        if answer is not None:
            return answer
    return None


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SandboxConfig:
    faults: list[Fault] = field(default_factory=list)
    client_secrets: dict[str, str] = field(default_factory=dict)  # empty: any client may get a token
    static_tokens: set[str] = field(default_factory=set)
    require_auth: bool = True
    # The time writes stamp (createdon, modifiedon) and the sync cycle runs at: tests pass their own.
    clock: Callable[[], datetime] = utc_now
    # Seconds between sync cycles, instead of the fixture's "$sync_cycle_seconds" (0: no timer; None: the
    # fixture's). A test that runs cycles itself (`Sandbox.sync.run()`) turns the timer off.
    sync_every: float | None = None


class SandboxState(Protocol):
    """What the routes read and change: the org, the configuration, and the tokens that are valid now."""

    org: Org
    config: SandboxConfig
    tokens: set[str]
