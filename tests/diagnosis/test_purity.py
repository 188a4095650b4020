"""The diagnostic core stays pure: no Teams, HTTP, clients or I/O imports."""

from __future__ import annotations

import ast
from pathlib import Path

import bot.diagnosis

FORBIDDEN = (
    "aiohttp",
    "httpx",
    "botbuilder",
    "botframework",
    "msal",
    "requests",
    "bot.clients",
    "bot.sandbox",
    "bot.teams",
    "socket",
    "sqlite3",
    "asyncio",
    "cards",
)


def test_diagnosis_imports_nothing_from_the_edges() -> None:
    package = Path(bot.diagnosis.__file__).parent
    offenders = []
    for source in package.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{source.name}: {n}"
                for n in names
                if n.split(".")[0] in FORBIDDEN or n.startswith(FORBIDDEN)
            ]
    assert offenders == []
    assert len(list(package.glob("*.py"))) >= 5  # the walk really looked at the package
