"""Can this instance work? Checks of the store and of Entra tokens, for `GET /readyz` and `check-config`.

Each check is bounded in time and reports what failed without secrets: the exception's kind and the
service's own error code, never a token, key or connection string.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from bot.clients.auth import TokenProvider
from bot.errors import BackendError, StoreError
from bot.store import Store

__all__ = ["Check", "Readiness", "check_store", "check_token", "run_checks"]

CHECK_SECONDS = 5.0
PROBE_KEY = "health:probe"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {CHECK_SECONDS:.0f} s"
    if isinstance(exc, BackendError | StoreError):
        return str(exc)  # our errors name the service and its error code, never the secret
    return type(exc).__name__


async def _bounded(name: str, work: Awaitable[str]) -> Check:
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            return Check(name, True, await work)
    except Exception as exc:
        return Check(name, False, _why(exc))


async def check_store(store: Store) -> Check:
    """Write a probe and read it back: the store answers and this identity may write to it."""

    async def probe() -> str:
        stamp = time.time()
        await store.set_setting(PROBE_KEY, {"at": stamp})
        back = await store.get_setting(PROBE_KEY)
        if not back or back.get("at") != stamp:
            raise RuntimeError("the probe written was not read back")
        return "written and read back"

    return await _bounded("store", probe())


async def check_token(name: str, tokens: TokenProvider, scope: str) -> Check:
    """A client-credentials token for `scope` (from MSAL's cache when it has one)."""

    async def acquire() -> str:
        await tokens.token(scope)
        return f"token for {scope}"

    return await _bounded(name, acquire())


async def run_checks(*checks: Awaitable[Check]) -> list[Check]:
    return list(await asyncio.gather(*checks))


@dataclass(frozen=True)
class Readiness:
    """What `GET /readyz` checks: this instance's store, and a token for the org's Dataverse."""

    store: Store
    tokens: TokenProvider
    scope: str

    async def run(self) -> list[Check]:
        return await run_checks(
            check_store(self.store), check_token("dataverse token", self.tokens, self.scope)
        )
