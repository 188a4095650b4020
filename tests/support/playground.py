"""The Microsoft 365 Agents Playground on loopback, and Chromium driving it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.async_api import Page

from tests.support.processes import free_port, serving
from tests.support.repo import ROOT

AGENTS_PLAYGROUND = ROOT / "node_modules" / ".bin" / "agentsplayground"
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "tests" / "e2e" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def running_playground(folder: Path, bot_url: str) -> Iterator[str]:
    """The Agents Playground (its default configuration), on loopback only, talking to `bot_url`."""
    assert AGENTS_PLAYGROUND.exists(), (
        "the Agents Playground is missing: run `npm ci` (the README's setup does)"
    )
    port = free_port()
    env = {
        **os.environ,
        "TEAMSAPPTESTER_BROWSER": "none",
        "NODE_OPTIONS": f"--require {ROOT / 'tests' / 'e2e' / 'loopback.js'}",
    }
    command = [
        str(AGENTS_PLAYGROUND),
        "start",
        "--disable-telemetry",
        "-e",
        f"{bot_url}/api/messages",
        "-c",
        "msteams",
        "-p",
        str(port),
    ]
    with serving(
        command, env, folder / "playground.log", f"http://127.0.0.1:{port}/", "the Agents Playground"
    ):
        yield f"http://127.0.0.1:{port}"


async def say(page: Page, text: str) -> None:
    box = page.locator('[role="textbox"]').first
    await box.click()
    await box.type(text)
    await page.keyboard.press("Enter")
