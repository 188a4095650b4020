"""The Teams app package: built from what ships in the package (template, icons, Microsoft's schema), valid
offline, refusing placeholders, with a command list per scope and resource-specific consent for the owner
check, and buildable from the installed wheel outside the checkout."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.errors import InputError
from bot.manifest import (
    MANIFEST_DIR,
    SCHEMA_DIR,
    AppValues,
    build_package,
    check_icon,
    check_values,
    fill_template,
    validate_manifest,
)
from bot.teams.commands import COMMANDS
from bot.teams.intents import classify
from tests.support.image import WITH_THE_WHEEL, wheel  # noqa: F401  (the fixture: the wheel the image installs)
from tests.support.repo import ROOT

BOT_ID = "11111111-2222-4333-8444-555555555555"
GRAPH_APP_ID = "66666666-7777-4888-9999-aaaaaaaaaaaa"
VALUES = AppValues(
    bot_id=BOT_ID,
    graph_app_id=GRAPH_APP_ID,
    developer_name="Tailspin Toys",
    website_url="https://it.tailspintoys.com/sync-doctor",
    privacy_url="https://tailspintoys.com/privacy",
    terms_url="https://tailspintoys.com/terms",
)
FLAGS = {
    "bot_id": "--bot-id",
    "graph_app_id": "--graph-app-id",
    "developer_name": "--developer-name",
    "website_url": "--website-url",
    "privacy_url": "--privacy-url",
    "terms_url": "--terms-url",
}


def cli_args(values: AppValues) -> list[str]:
    return [a for field, flag in FLAGS.items() for a in (flag, getattr(values, field))]


def packaged(out: Path) -> dict[str, Any]:
    with zipfile.ZipFile(out) as package:
        loaded: dict[str, Any] = json.loads(package.read("manifest.json"))
        return loaded


def test_package_has_manifest_and_icons_and_the_given_values(tmp_path: Path) -> None:
    out = build_package(tmp_path / "app.zip", VALUES)
    with zipfile.ZipFile(out) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
    manifest = packaged(out)
    assert manifest["bots"][0]["botId"] == BOT_ID
    assert sorted(manifest["bots"][0]["scopes"]) == ["groupChat", "personal", "team"]
    assert manifest["developer"] == {
        "name": "Tailspin Toys",
        "websiteUrl": "https://it.tailspintoys.com/sync-doctor",
        "privacyUrl": "https://tailspintoys.com/privacy",
        "termsOfUseUrl": "https://tailspintoys.com/terms",
    }
    assert "{{" not in json.dumps(manifest)
    assert validate_manifest(manifest) == []


def test_values_cannot_break_the_json(tmp_path: Path) -> None:
    """Values are filled in after parsing: quotes and backslashes stay text."""
    tricky = dataclasses.replace(VALUES, developer_name='Tail"spin\\ Toys')
    assert packaged(build_package(tmp_path / "app.zip", tricky))["developer"]["name"] == 'Tail"spin\\ Toys'


def test_schema_catches_mistakes() -> None:
    manifest = fill_template(VALUES)
    manifest["accentColor"] = "blue"
    del manifest["description"]
    manifest["developer"]["name"] = "A developer name longer than 32 characters"
    problems = validate_manifest(manifest)
    assert any("accentColor" in p for p in problems)
    assert any("description" in p for p in problems)
    assert any(p.startswith("developer/name") for p in problems)


def test_icons_follow_teams_rules() -> None:
    assert check_icon((MANIFEST_DIR / "color.png").read_bytes(), 192, transparent=False) == []
    assert check_icon((MANIFEST_DIR / "outline.png").read_bytes(), 32, transparent=True) == []
    assert check_icon((MANIFEST_DIR / "color.png").read_bytes(), 32, transparent=True) == [
        "is 192x192, must be 32x32",
        "must be RGBA with a transparent background",
    ]


# --- the schema ships with the package, resolves offline, and is the one npm pins -------------------------


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [r for k, v in node.items() for r in ([v] if k == "$ref" else _refs(v))]
    return [r for item in node for r in _refs(item)] if isinstance(node, list) else []


def test_the_schema_for_the_template_ships_inside_the_package_and_its_refs_are_local() -> None:
    version = json.loads((MANIFEST_DIR / "manifest.json").read_text())["manifestVersion"]
    path = SCHEMA_DIR / f"v{version}" / "MicrosoftTeams.schema.json"
    assert path.is_relative_to(ROOT / "bot"), "package data, not node_modules"
    schema = json.loads(path.read_text())
    refs = _refs(schema)
    assert refs
    for ref in set(refs):
        assert ref.startswith("#/"), f"{ref} would need the network"
        node: Any = schema
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]  # resolves within the file
    assert "MIT" in (SCHEMA_DIR / "LICENSE").read_text()


def test_the_shipped_schema_is_the_one_npm_pins() -> None:
    """Bumping @microsoft/app-manifest in package.json means copying its schema here again."""
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["@microsoft/app-manifest"]
    assert f"version {pinned}" in (SCHEMA_DIR / "LICENSE").read_text()
    npm = ROOT / "node_modules" / "@microsoft" / "app-manifest"
    if not npm.is_dir():
        pytest.skip("npm ci has not run")
    assert json.loads((npm / "package.json").read_text())["version"] == pinned
    for shipped in SCHEMA_DIR.glob("v*/MicrosoftTeams.schema.json"):
        copied_from = npm / "build" / "json-schemas" / "teams" / shipped.parent.name / shipped.name
        assert shipped.read_bytes() == copied_from.read_bytes(), shipped


# --- placeholders and missing values are refused, each by name ---------------------------------------------

PLACEHOLDERS = [
    ("bot_id", "00000000-0000-0000-0000-000000000000", "placeholder id"),
    ("bot_id", "", "missing"),
    ("bot_id", "not-a-guid", "not a GUID"),
    ("graph_app_id", "00000000-0000-0000-0000-000000000000", "placeholder id"),
    ("graph_app_id", "", "missing"),
    ("developer_name", "", "missing"),
    ("developer_name", "Contoso", "placeholder"),
    ("developer_name", "{{DEVELOPER_NAME}}", "placeholder"),
    ("website_url", "https://www.example.com/sync-doctor", "placeholder"),
    ("website_url", "", "missing"),
    ("privacy_url", "https://www.example.com/sync-doctor/privacy", "placeholder"),
    ("privacy_url", "https://example.org/privacy", "placeholder"),
    ("privacy_url", "http://tailspintoys.com/privacy", "not an https URL"),
    ("terms_url", "https://www.example.com/sync-doctor/terms", "placeholder"),
    ("terms_url", "https://docs.example.net/terms", "placeholder"),
    ("terms_url", "https://localhost/terms", "placeholder"),
    ("terms_url", "https://intranet.test/terms", "placeholder"),
    ("terms_url", "https://10.0.0.8/terms", "IP address"),
    ("terms_url", "{{TERMS_URL}}", "not an https URL"),
]


@pytest.mark.parametrize(("field", "value", "why"), PLACEHOLDERS)
def test_each_placeholder_is_refused_with_exit_2_naming_the_flag(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    field: str,
    value: str,
    why: str,
) -> None:
    for name in ("MicrosoftAppId", "AZURE_CLIENT_ID"):  # no setting fills in what the flag leaves out
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "app.zip"
    given = dataclasses.replace(VALUES, **{field: value})
    assert main(["manifest", "--out", str(out), *cli_args(given)]) == 2
    captured = capsys.readouterr()
    assert "Valid Teams app package" not in captured.out and not out.exists()
    [line] = [line for line in captured.err.splitlines() if line.strip().startswith("--")]
    assert line.strip().startswith(f"{FLAGS[field]}: ") and why in line
    with pytest.raises(InputError, match=FLAGS[field]):
        build_package(out, given)


def test_with_nothing_given_every_value_is_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MicrosoftAppId", "AZURE_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    assert main(["manifest", "--out", str(tmp_path / "app.zip")]) == 2
    err = capsys.readouterr().err
    for flag in FLAGS.values():
        assert f"{flag}: missing" in err
    assert "MicrosoftAppId" in err and "AZURE_CLIENT_ID" in err


def test_real_values_pass_and_the_ids_can_come_from_the_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert check_values(VALUES) == []
    monkeypatch.setenv("MicrosoftAppId", BOT_ID)
    monkeypatch.setenv("AZURE_CLIENT_ID", GRAPH_APP_ID)
    out = tmp_path / "pkg.zip"
    flags = cli_args(VALUES)[4:]  # the developer's name and pages only
    assert main(["manifest", "--out", str(out), *flags]) == 0
    assert "Valid Teams app package" in capsys.readouterr().out
    manifest = packaged(out)
    assert manifest["bots"][0]["botId"] == BOT_ID
    assert manifest["webApplicationInfo"]["id"] == GRAPH_APP_ID


# --- what Teams offers in each scope is what the bot does there --------------------------------------------


def _lists() -> dict[str, list[dict[str, str]]]:
    lists = fill_template(VALUES)["bots"][0]["commandLists"]
    assert all(len(entry["scopes"]) == 1 for entry in lists), "one list per scope"
    return {entry["scopes"][0]: entry["commands"] for entry in lists}


def _understood(text: str) -> bool:
    """What the bot does with `text` as sent: an exact command, or an intent it answers."""
    said = " ".join(text.lower().split())
    return any(p.fullmatch(said) for p, _ in COMMANDS) or classify(text).name != "out_of_scope"


def test_a_command_list_per_scope_with_what_works_there() -> None:
    lists = _lists()
    assert sorted(lists) == ["groupChat", "personal", "team"]
    titles = {scope: [c["title"] for c in commands] for scope, commands in lists.items()}
    assert titles["personal"][:3] == ["help", "check my mailbox", "why isn't my appointment in Outlook"]
    assert {"my tickets", "talk to a human"} <= set(titles["personal"])
    assert titles["team"][:2] == ["use this channel for helpdesk", "open tickets"]
    assert "open tickets" in titles["groupChat"]
    # Only a team channel can be the helpdesk channel; one's own diagnosis belongs in the 1:1 chat.
    assert "use this channel for helpdesk" not in titles["groupChat"] + titles["personal"]
    for shared in ("team", "groupChat"):
        assert not {"check my mailbox", "why isn't my appointment in Outlook", "my tickets"} & set(
            titles[shared]
        )
    for scope, commands in lists.items():
        for command in commands:
            example = command["description"].partition("e.g. ")[2] or command["title"]
            assert example.startswith(command["title"]), (scope, command)
            assert _understood(example), (scope, example)


# --- least privilege: resource-specific consent, not tenant-wide TeamMember.Read.All -----------------------


def test_the_owner_check_is_granted_per_team_by_resource_specific_consent() -> None:
    manifest = fill_template(VALUES)
    assert manifest["authorization"]["permissions"]["resourceSpecific"] == [
        {"name": "TeamMember.Read.Group", "type": "Application"}
    ]
    # RSC needs webApplicationInfo: the Entra app the grant goes to (the one whose token calls Graph).
    assert manifest["webApplicationInfo"]["id"] == GRAPH_APP_ID
    assert manifest["webApplicationInfo"]["resource"]
    assert "TeamMember.Read.All" not in json.dumps(manifest)
    assert validate_manifest(manifest) == []


# --- from the installed wheel, outside the checkout -------------------------------------------------------


@WITH_THE_WHEEL
def test_manifest_runs_from_the_installed_wheel_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:  # noqa: F811
    """What the image has: the wheel and its declared dependencies, no node_modules, no checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-compile", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    elsewhere = tmp_path / "run"
    elsewhere.mkdir()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(elsewhere), "PYTHONPATH": ""}

    def manifest(*args: str) -> subprocess.CompletedProcess[str]:
        command = [python, "-m", "bot", "manifest", "--out", "app.zip", *args]
        return subprocess.run(command, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)

    refused = manifest(*cli_args(dataclasses.replace(VALUES, website_url="https://www.example.com/x")))
    assert refused.returncode == 2 and "--website-url" in refused.stderr, refused.stderr
    built = manifest(*cli_args(VALUES))
    assert built.returncode == 0, built.stderr
    assert "Valid Teams app package" in built.stdout
    assert packaged(elsewhere / "app.zip")["bots"][0]["botId"] == BOT_ID
    where = subprocess.run(
        [python, "-c", "import bot.manifest as m; print(m.SCHEMA_DIR)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(venv)), "the schema came from the installed package"


def test_the_package_version_follows_sync_doctors_so_a_release_uploads_as_an_update(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from importlib import metadata

    out = tmp_path / "app.zip"
    assert main(["manifest", "--out", str(out), *cli_args(VALUES)]) == 0
    assert packaged(out)["version"] == metadata.version("sync-doctor")
    assert main(["manifest", "--out", str(out), *cli_args(VALUES), "--app-version", "2.3.4"]) == 0
    assert packaged(out)["version"] == "2.3.4"
    out.unlink()
    capsys.readouterr()
    assert main(["manifest", "--out", str(out), *cli_args(VALUES), "--app-version", "v2"]) == 2
    assert "--app-version" in capsys.readouterr().err and not out.exists()
