"""Running `python -m bot ...` in the test's process, as an admin would type it: exit code, stdout, stderr."""

from __future__ import annotations

import asyncio

import pytest

from bot.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def run_beside(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The CLI in a thread of its own (it runs its own event loop), beside a sandbox on this one."""
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err
