"""Builds the Teams app package (manifest.json + icons, zipped) and validates it offline.

Everything it needs ships inside the `bot` package (`bot/app_package/`), so it works from the wheel and in
the container: the manifest template, the icons, and Microsoft's JSON schema for the template's
`manifestVersion`, copied unchanged from the npm package `@microsoft/app-manifest` (MIT; see
`bot/app_package/schema/LICENSE`). The schema's `$ref`s are all local (`#/definitions/...`): nothing is
fetched. The icons are checked against Teams' rules (192x192 colour, 32x32 outline with a transparent
background).

What Teams shows people and what grants the app its permissions are never guessed: the bot id, the Entra
app that reads Graph (resource-specific consent `TeamMember.Read.Group` is granted to it), the publisher's
name and its website, privacy and terms pages must be given, and placeholders are refused.
"""

from __future__ import annotations

import ipaddress
import json
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, fields
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema

from bot.errors import ConfigError, InputError
from bot.ids import is_id

__all__ = [
    "MANIFEST_DIR",
    "PLACEHOLDER_BOT_ID",
    "SCHEMA_DIR",
    "AppValues",
    "build_package",
    "check_icon",
    "check_values",
    "fill_template",
    "validate_manifest",
]

MANIFEST_DIR = Path(__file__).resolve().parent / "app_package"  # package data: template and icons
SCHEMA_DIR = MANIFEST_DIR / "schema"  # v<manifestVersion>/MicrosoftTeams.schema.json
PLACEHOLDER_BOT_ID = "00000000-0000-0000-0000-000000000000"

# Domains reserved for examples and tests (RFC 2606, RFC 6761) and Microsoft's sample companies.
_PLACEHOLDER_DOMAINS = ("example.com", "example.net", "example.org", "contoso.com", "fabrikam.com")
_PLACEHOLDER_TLDS = ("example", "test", "invalid", "localhost", "local")
_PLACEHOLDER_NAMES = {
    "example",
    "contoso",
    "fabrikam",
    "changeme",
    "todo",
    "tbd",
    "your company",
    "publisher",
}


_SEMVER = re.compile(r"\d{1,9}\.\d{1,9}\.\d{1,9}")


@dataclass(frozen=True)
class AppValues:
    """What each organisation fills in: each field names the flag (and setting) that gives it.

    Attributes:
        bot_id: the bot's Microsoft App ID (`--bot-id`, setting `MicrosoftAppId`).
        graph_app_id: the Entra app id that calls Graph (`--graph-app-id`, setting `AZURE_CLIENT_ID`):
            `webApplicationInfo.id`, the app Teams grants `TeamMember.Read.Group` to in each team the app is
            installed in.
        developer_name: the organisation publishing the app, shown as its developer (`--developer-name`).
        website_url, privacy_url, terms_url: https pages Teams links from the app's details
            (`--website-url`, `--privacy-url`, `--terms-url`).
    """

    bot_id: str = ""
    graph_app_id: str = ""
    developer_name: str = ""
    website_url: str = ""
    privacy_url: str = ""
    terms_url: str = ""


_HOW = {  # field: (flag, what to give)
    "bot_id": ("--bot-id", "the bot's Microsoft App ID, a GUID (or set MicrosoftAppId)"),
    "graph_app_id": (
        "--graph-app-id",
        "the id of the Entra app that reads Graph, a GUID (or set AZURE_CLIENT_ID): Teams grants it "
        "TeamMember.Read.Group in each team the app is installed in",
    ),
    "developer_name": ("--developer-name", "your organisation's name, shown to users as the app's developer"),
    "website_url": ("--website-url", "your https page about the app (or your helpdesk)"),
    "privacy_url": ("--privacy-url", "your https privacy statement"),
    "terms_url": ("--terms-url", "your https terms of use"),
}


def _id_problem(value: str) -> str | None:
    if not value:
        return "missing"
    if not is_id(value) or len(value) != 36:
        return f"{value!r} is not a GUID"
    if value.strip("0-") == "":
        return f"{value} is the placeholder id"
    return None


def _url_problem(value: str) -> str | None:
    if not value:
        return "missing"
    parts = urlsplit(value)
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme != "https" or not host:
        return f"{value!r} is not an https URL"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return f"{value} is an IP address, not a public page"
    if any(host == d or host.endswith("." + d) for d in _PLACEHOLDER_DOMAINS) or host.rsplit(".", 1)[-1] in (
        _PLACEHOLDER_TLDS
    ):
        return f"{value} is a placeholder ({host})"
    return None


def _name_problem(value: str) -> str | None:
    name = " ".join(value.split())
    if not name:
        return "missing"
    if name.casefold() in _PLACEHOLDER_NAMES or "{{" in name:
        return f"{value!r} is a placeholder"
    return None


def check_values(values: AppValues) -> list[str]:
    """Each value that is missing or a placeholder, as 'flag: why; give what' lines (empty: all fine)."""
    problems: list[str] = []
    for field in fields(values):
        value: str = getattr(values, field.name).strip()
        if field.name.endswith("_id"):
            problem = _id_problem(value)
        elif field.name.endswith("_url"):
            problem = _url_problem(value)
        else:
            problem = _name_problem(value)
        if problem:
            flag, what = _HOW[field.name]
            problems.append(f"{flag}: {problem}; give {what}")
    return problems


def _schema(version: str) -> dict[str, Any]:
    path = SCHEMA_DIR / f"v{version}" / "MicrosoftTeams.schema.json"
    if not path.is_file():
        shipped = sorted(p.name for p in SCHEMA_DIR.glob("v*") if p.is_dir())
        raise ConfigError(
            f"no Teams manifest schema v{version} ships with Sync Doctor (it has {', '.join(shipped) or 'none'}"
            f" under {SCHEMA_DIR})"
        )
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def validate_manifest(manifest: dict[str, Any]) -> list[str]:
    """Every problem the official schema finds, as 'path: message' lines (empty when valid)."""
    schema = _schema(str(manifest.get("manifestVersion", "")))
    validator = jsonschema.Draft4Validator(schema)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))
    ]


def _fill(node: Any, marks: dict[str, str]) -> Any:
    """The parsed template with each {{MARK}} in its strings replaced (after parsing: values can't break
    the JSON)."""
    if isinstance(node, dict):
        return {key: _fill(value, marks) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(item, marks) for item in node]
    if isinstance(node, str):
        for mark, value in marks.items():
            node = node.replace("{{" + mark + "}}", value)
    return node


def app_version() -> str:
    """The package's version for Teams: Sync Doctor's own, so each release uploads as an update."""
    try:
        return metadata.version("sync-doctor")
    except metadata.PackageNotFoundError:
        return "1.0.0"  # a bare source tree: never uploaded as a release


def fill_template(values: AppValues, version: str | None = None) -> dict[str, Any]:
    """The manifest template with `values` filled in (not checked: see `check_values`), and `version`
    (default: `app_version()`): Teams takes an uploaded package as an update only with a higher one."""
    path = MANIFEST_DIR / "manifest.json"
    if not path.is_file():
        raise ConfigError(f"the app package template {path} is not installed: reinstall sync-doctor")
    template = json.loads(path.read_text(encoding="utf-8"))
    marks = {
        "BOT_ID": values.bot_id.strip().lower(),
        "GRAPH_APP_ID": values.graph_app_id.strip().lower(),
        "DEVELOPER_NAME": " ".join(values.developer_name.split()),
        "WEBSITE_URL": values.website_url.strip(),
        "PRIVACY_URL": values.privacy_url.strip(),
        "TERMS_URL": values.terms_url.strip(),
    }
    filled: dict[str, Any] = _fill(template, marks)
    filled["version"] = version or app_version()
    return filled


def _png_pixels(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """(width, height, colour type, raw scanlines) of an 8-bit, non-interlaced PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color_type = struct.unpack(">IIBB", header[:10])
    raw = zlib.decompress(idat)
    channels = {6: 4, 2: 3, 0: 1, 4: 2}.get(color_type, 0)
    stride = width * channels + 1
    return (
        width,
        height,
        color_type,
        [raw[i * stride : (i + 1) * stride] for i in range(height)] if depth == 8 else [],
    )


def check_icon(data: bytes, size: int, *, transparent: bool) -> list[str]:
    """Problems with an icon: wrong size, or an outline icon whose corners aren't transparent."""
    try:
        width, height, color_type, rows = _png_pixels(data)
    except (ValueError, zlib.error, struct.error) as exc:
        return [f"can't be read as PNG ({exc})"]
    problems = [] if (width, height) == (size, size) else [f"is {width}x{height}, must be {size}x{size}"]
    # The top-left pixel's alpha reads the same under every PNG filter (it has no neighbours).
    if transparent and (color_type != 6 or not rows or rows[0][4] != 0):
        problems.append("must be RGBA with a transparent background")
    return problems


def build_package(out: Path, values: AppValues, version: str | None = None) -> Path:
    """Fill in the organisation's values, validate, and write the zip Teams accepts.

    Raises:
        InputError: a value is missing or a placeholder (each named, with the flag that gives it), or the
            manifest or icons don't validate (all problems listed).
        ConfigError: the schema for the template's manifestVersion doesn't ship with the package.
    """
    missing = check_values(values)
    if missing:
        raise InputError(
            "the Teams app package needs your organisation's real values (Teams shows them to users):\n  "
            + "\n  ".join(missing)
        )
    if version is not None and not _SEMVER.fullmatch(version):
        raise InputError(f"--app-version: {version!r} is not a version like 1.2.3")
    manifest = fill_template(values, version)
    problems = [f"manifest.json {p}" for p in validate_manifest(manifest)]
    icons = {"color": (192, False), "outline": (32, True)}
    files: dict[str, bytes] = {}
    for kind, (size, transparent) in icons.items():
        name = manifest["icons"][kind]
        data = (MANIFEST_DIR / name).read_bytes()
        problems += [f"{name} {p}" for p in check_icon(data, size, transparent=transparent)]
        files[name] = data
    if problems:
        raise InputError("the app package is not valid:\n  " + "\n  ".join(problems))
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("manifest.json", json.dumps(manifest, indent=2))
        for name, data in files.items():
            package.writestr(name, data)
    return out
