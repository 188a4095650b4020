"""The bot in a process of its own (`python -m bot serve --sandbox`) on a free loopback port, and waiting
for such a process to answer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.repo import ROOT


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
        time.sleep(0.05)
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
