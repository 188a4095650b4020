"""The Teams app package builds, and validates offline against Microsoft's schema."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from bot.cli import main
from bot.errors import InputError
from bot.manifest import MANIFEST_DIR, build_package, check_icon, validate_manifest

BOT_ID = "11111111-2222-4333-8444-555555555555"


def test_package_has_manifest_and_icons(tmp_path: Path) -> None:
    out = build_package(tmp_path / "app.zip", bot_id=BOT_ID)
    with zipfile.ZipFile(out) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(package.read("manifest.json"))
    assert manifest["bots"][0]["botId"] == BOT_ID
    assert sorted(manifest["bots"][0]["scopes"]) == ["groupChat", "personal", "team"]
    titles = [c["title"] for c in manifest["bots"][0]["commandLists"][0]["commands"]]
    assert titles == ["help", "check my mailbox", "why isn't my appointment in Outlook"]
    assert validate_manifest(manifest) == []


def test_schema_catches_mistakes() -> None:
    manifest = json.loads((MANIFEST_DIR / "manifest.json").read_text().replace("{{BOT_ID}}", BOT_ID))
    manifest["accentColor"] = "blue"
    del manifest["description"]
    problems = validate_manifest(manifest)
    assert any("accentColor" in p for p in problems)
    assert any("description" in p for p in problems)


def test_icons_follow_teams_rules() -> None:
    assert check_icon((MANIFEST_DIR / "color.png").read_bytes(), 192, transparent=False) == []
    assert check_icon((MANIFEST_DIR / "outline.png").read_bytes(), 32, transparent=True) == []
    assert check_icon((MANIFEST_DIR / "color.png").read_bytes(), 32, transparent=True) == [
        "is 192x192, must be 32x32",
        "must be RGBA with a transparent background",
    ]


def test_bot_id_must_be_a_guid(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a GUID"):
        build_package(tmp_path / "app.zip", bot_id="00000000-0000-0000-0000-00000000000011")


def test_cli_builds_the_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pkg.zip"
    assert main(["manifest", "--out", str(out), "--bot-id", BOT_ID]) == 0
    assert out.is_file() and "Valid Teams app package" in capsys.readouterr().out
