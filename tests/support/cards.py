"""Adaptive Cards as a person sees them: their text, their buttons, and a Node.js script of the official
JavaScript library run over them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.support.repo import ROOT


def card_text(card: dict[str, Any]) -> str:
    """Every text a person sees on a card, flattened."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("text", "title", "value", "label"):
                if isinstance(node.get(key), str):
                    out.append(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in card.items() if k != "actions"})
    return "\n".join(out)


def buttons(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["title"]: a for a in card.get("actions", [])}


def run_node(script: Path, cards: list[dict[str, Any]]) -> list[Any]:
    """`node script` with the cards as a JSON array on stdin; its JSON answer, one item a card."""
    node = shutil.which("node")
    assert node, f"Node.js is needed to run {script.name} (the README's setup installs the npm tools)"
    done = subprocess.run(
        [node, str(script)],
        input=json.dumps(cards),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))
