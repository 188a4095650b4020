"""Builds the Teams app package (manifest.json + icons, zipped) and validates it offline.

The manifest is checked against Microsoft's JSON schema for its `manifestVersion`, as shipped in the npm
package `@microsoft/app-manifest`, and the icons against Teams' rules (192x192 colour, 32x32 outline with
a transparent background).
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import jsonschema

from bot.errors import ConfigError, InputError
from bot.ids import is_id

__all__ = ["PLACEHOLDER_BOT_ID", "build_package", "check_icon", "validate_manifest"]

ROOT = Path(__file__).resolve().parents[1]
MANIFEST_DIR = ROOT / "manifest"
PLACEHOLDER_BOT_ID = "00000000-0000-0000-0000-000000000000"
_SCHEMAS = Path("node_modules/@microsoft/app-manifest/build/json-schemas/teams")


def _schema(version: str) -> dict[str, Any]:
    for base in (Path.cwd(), ROOT):
        path = base / _SCHEMAS / f"v{version}" / "MicrosoftTeams.schema.json"
        if path.is_file():
            loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return loaded
    raise ConfigError(
        f"the Teams manifest schema v{version} was not found under {_SCHEMAS}: run `npm ci` in the project folder"
    )


def validate_manifest(manifest: dict[str, Any]) -> list[str]:
    """Every problem the official schema finds, as 'path: message' lines (empty when valid)."""
    schema = _schema(str(manifest.get("manifestVersion", "")))
    validator = jsonschema.Draft4Validator(schema)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))
    ]


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


def build_package(out: Path, *, bot_id: str) -> Path:
    """Fill in the bot id, validate, and write the zip Teams accepts.

    Raises:
        InputError: the bot id is not a GUID, or the manifest or icons don't validate (all problems listed).
    """
    if not is_id(bot_id) or len(bot_id) != 36:
        raise InputError(f"bot id {bot_id!r} is not a GUID (the bot's Microsoft App ID)")
    text = (MANIFEST_DIR / "manifest.json").read_text(encoding="utf-8").replace("{{BOT_ID}}", bot_id)
    manifest = json.loads(text)
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
