"""The diagnostic core stays pure (no Teams, HTTP, clients or I/O imports), and the cards import only it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import bot.diagnosis
from tests.support.repo import ROOT

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

# What a card module may import besides the standard library's pure parts: the card models, the core,
# its own package. No store, no Teams, no HTTP (architecture.json: Cards -> Core only).
CARDS_MAY_IMPORT = ("__future__", "microsoft_teams.cards", "bot.diagnosis", "cards")
CARDS_STDLIB = {
    "collections",
    "dataclasses",
    "datetime",
    "json",
    "re",
    "typing",
    "unicodedata",
}  # json: a card's size on the wire


def imported(source: Path) -> list[str]:
    """Every module `source` imports (absolute names; relative imports are not used here)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_diagnosis_imports_nothing_from_the_edges() -> None:
    package = Path(bot.diagnosis.__file__).parent
    sources = sorted(package.rglob("*.py"))
    offenders = [
        f"{source.name}: {n}"
        for source in sources
        for n in imported(source)
        if n.split(".")[0] in FORBIDDEN or n.startswith(FORBIDDEN)
    ]
    assert offenders == []
    assert len(sources) >= 5  # the walk really looked at the package


def test_cards_import_only_the_core_and_the_card_models() -> None:
    sources = sorted((ROOT / "cards").glob("*.py"))
    offenders = [
        f"{source.name}: {n}"
        for source in sources
        for n in imported(source)
        if not (
            n.split(".")[0] in CARDS_STDLIB
            or any(n == allowed or n.startswith(allowed + ".") for allowed in CARDS_MAY_IMPORT)
        )
    ]
    assert offenders == []
    assert len(sources) >= 5


def test_loading_every_card_loads_no_store_teams_or_http() -> None:
    """What importing the cards really pulls in (their dependencies' imports too)."""
    probe = (
        "import sys, cards.common, cards.conversation, cards.diagnosis, cards.notice, cards.ticket\n"
        "bad = ('sqlite3', 'aiohttp', 'httpx', 'botbuilder', 'msal', 'bot.store', 'bot.teams', 'bot.clients')\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith(bad))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60, check=True
    )
    assert done.stdout.split() == []
