"""`python -m bot diagnose` when Entra misbehaves, as an admin runs it: the real MSAL path against the
HTTPS sandbox (test CA), whose token endpoint answers 503 or hangs. Exit 3, one line saying what failed,
no traceback, and within the diagnosis budget (the process must not wait for a stuck token request)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import pytest
import trustme

from bot.sandbox import Fault
from tests.support.org import ALEX, env, faulty_sandbox
from tests.support.repo import ROOT


async def diagnose(wait: float) -> tuple[int | None, str, str, float]:
    """Run the CLI in a child process (this loop keeps serving the sandbox); None: still running."""
    started = time.monotonic()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "diagnose",
        "--user",
        ALEX,
        cwd=ROOT,
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(child.communicate(), wait)
    except TimeoutError:
        child.kill()
        out, err = await child.communicate()
        return None, out.decode(), err.decode(), time.monotonic() - started
    return child.returncode, out.decode(), err.decode(), time.monotonic() - started


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (Fault(route="token", status=503), "503"),  # discovery and token endpoint
        (Fault(route="*/oauth2/v2.0/token", status=503), "503"),  # the token endpoint only
        (Fault(route="token", hang=120), "no answer"),
    ],
    ids=["discovery-503", "token-503", "token-hangs"],
)
async def test_entra_failing_exits_3_with_one_line_in_time(
    ca: trustme.CA,
    ca_bundle: str,
    sample_data: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    fault: Fault,
    says: str,
) -> None:
    async with faulty_sandbox(ca, sample_data) as sandbox:
        sandbox.sandbox.config.faults.append(fault)
        env(monkeypatch, sandbox.url)
        monkeypatch.setenv("DIAGNOSIS_BUDGET_SECONDS", "2")
        code, out, err, elapsed = await diagnose(wait=40)
    assert code is not None, f"still running after {elapsed:.0f} s; stderr: {err[-500:]}"
    assert code == 3, err
    assert out == "" and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Entra" in errors[0] and says in errors[0], err
    assert elapsed < 30  # a 2 s budget plus the interpreter's start on a busy machine
