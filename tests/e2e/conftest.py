"""Start the bot (`python -m bot serve --sandbox`) and the Microsoft 365 Agents Playground, both on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYGROUND = ROOT / "node_modules" / ".bin" / "agentsplayground"
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "tests" / "e2e" / "screenshots"
ALEX = "00000000-0000-0000-0000-0000000000020"  # the Playground's default user


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: callable, what: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:  # type: ignore[valid-type]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        if check():
            return
        time.sleep(0.3)
    raise TimeoutError(f"{what} did not start within {timeout:.0f} s")


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


@contextmanager
def serving(
    command: list[str], env: dict[str, str], log_path: Path, ready_url: str, what: str
) -> Iterator[None]:
    """Run `command` (output to `log_path`) until the block ends; enter once `ready_url` answers."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log, env=env)
    try:
        wait_until(lambda: answers(ready_url), what, process)
        yield
    finally:
        process.terminate()
        process.wait(timeout=20)


def bot_env(store: Path, **extra: str) -> dict[str, str]:
    """The environment a test bot runs with: loopback defaults, its own store."""
    env = {k: v for k, v in os.environ.items() if k not in ("MicrosoftAppId", "ALLOWED_TENANTS")}
    return {**env, "STORE_URL": f"sqlite:///{store}", **extra}


@contextmanager
def running_bot(
    folder: Path, env: dict[str, str], fixture: Path | None = None, *options: str
) -> Iterator[str]:
    """`python -m bot serve --sandbox [FIXTURE] [OPTIONS]` on a free loopback port; yields its base URL."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "bot",
        "serve",
        "--sandbox",
        *([str(fixture)] if fixture else []),
        "--port",
        str(port),
        *options,
    ]
    with serving(command, env, folder / f"bot-{port}.log", f"http://127.0.0.1:{port}/healthz", "the bot"):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def running_playground(folder: Path, bot_url: str) -> Iterator[str]:
    """The Agents Playground (its default configuration), on loopback only, talking to `bot_url`."""
    assert PLAYGROUND.exists(), "the Agents Playground is missing: run `npm ci` (the README's setup does)"
    port = free_port()
    env = {
        **os.environ,
        "TEAMSAPPTESTER_BROWSER": "none",
        "NODE_OPTIONS": f"--require {ROOT / 'tests' / 'e2e' / 'loopback.js'}",
    }
    command = [
        str(PLAYGROUND),
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


@pytest.fixture(scope="session")
def bot_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SQLite store of the bot the Playground talks to (tests may read it, e.g. its outbox)."""
    return tmp_path_factory.mktemp("bot") / "store.sqlite3"


@pytest.fixture(scope="session")
def bot_url(bot_store: Path) -> Iterator[str]:
    # The Playground signs in one user, Alex Wilber: here he is also the helpdesk agent.
    with running_bot(bot_store.parent, bot_env(bot_store, HELPDESK_AGENTS=ALEX)) as url:
        yield url


@pytest.fixture(scope="session")
def playground_url(bot_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_playground(tmp_path_factory.mktemp("playground"), bot_url) as url:
        yield url


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or (str(CHROMIUM) if CHROMIUM.exists() else None)
    assert path, "Debian's chromium is missing: the README's setup installs it (apt-get install chromium)"
    return path
