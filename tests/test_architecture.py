"""The import graph of bot/ and cards/ against the picture in docs/architecture.json: every import between
two parts must be an allowed arrow; a forbidden one fails with its reason, one the picture doesn't show
fails too (draw it, or don't write it)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.repo import ROOT, imports

PICTURE = json.loads((ROOT / "docs" / "architecture.json").read_text())


def part_of(path: str) -> str | None:
    """The part a repository path belongs to: the longest `is` entry that names it or its folder."""
    best: tuple[int, str] | None = None
    for name, part in PICTURE["parts"].items():
        for entry in part["is"]:
            names = path == entry or (entry.endswith("/") and path.startswith(entry))
            if names and (best is None or len(entry) > best[0]):
                best = (len(entry), name)
    return best[1] if best else None


def module_path(module: str) -> str | None:
    """bot.store.base -> bot/store/base.py; bot.store -> bot/store/__init__.py; None outside the tree."""
    parts = module.split(".")
    if parts[0] not in ("bot", "cards"):
        return None
    for candidate in (Path(*parts).with_suffix(".py"), Path(*parts) / "__init__.py"):
        if (ROOT / candidate).exists():
            return candidate.as_posix()
    return None


def edges() -> set[tuple[str, str, str, str]]:
    """(from part, to part, from file, to file) for every import that crosses a part's border."""
    out: set[tuple[str, str, str, str]] = set()
    for source in sorted([*ROOT.glob("bot/**/*.py"), *ROOT.glob("cards/**/*.py")]):
        here = source.relative_to(ROOT).as_posix()
        mine = part_of(here)
        assert mine is not None, f"{here} belongs to no part of docs/architecture.json: add it to one"
        for module in imports(source):
            target = module_path(module)
            theirs = part_of(target) if target else None
            if target and theirs and theirs != mine:
                out.add((mine, theirs, here, target))
    return out


def test_every_file_belongs_to_a_part_and_every_import_is_an_allowed_arrow() -> None:
    allowed = {(a, b) for a, b, *_ in PICTURE["arrows"]}
    never = {(a, b): why for a, b, why in PICTURE["never"]}
    problems = []
    for mine, theirs, here, target in sorted(edges()):
        if (mine, theirs) in never:
            problems.append(f"{here} -> {target}: {mine} -> {theirs} is forbidden ({never[(mine, theirs)]})")
        elif (mine, theirs) not in allowed:
            problems.append(f"{here} -> {target}: {mine} -> {theirs} is not an arrow of the picture")
    assert not problems, "\n".join(problems)


def test_the_picture_is_consistent() -> None:
    parts = set(PICTURE["parts"])
    allowed = {(a, b) for a, b, *_ in PICTURE["arrows"]}
    never = {(a, b) for a, b, _ in PICTURE["never"]}
    assert {p for arrow in allowed | never for p in arrow} <= parts
    assert allowed.isdisjoint(never)
