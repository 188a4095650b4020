"""What the sandbox's routes share on the wire: where each service lives, the shape of an error, and a row's
ETag."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

__all__ = ["APP_USER_ID", "DATAVERSE", "GRAPH", "area", "error", "etag"]

DATAVERSE = "/api/data/v9.2/"
GRAPH = "/v1.0/"
APP_USER_ID = "5d0c0a11-0000-4000-8000-00000000a99a"  # the application user the bot signs in as


def area(path: str) -> str:
    """Which service a path belongs to: "dataverse", "graph", "token" or "other"."""
    if path.startswith(DATAVERSE):
        return "dataverse"
    if path.startswith(GRAPH):
        return "graph"
    if "/oauth2/" in path or "/.well-known/" in path:
        return "token"
    return "other"


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """An error in the shape Dataverse and Graph both use: {"error": {"code", "message"}}."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def etag(row: dict[str, Any]) -> str:
    """A row's `@odata.etag` (a weak ETag): it changes whenever any of the row's columns does, and is the
    same in every process (the ETag a client read is the one `If-Match` is compared with)."""
    content = json.dumps(row, sort_keys=True, default=str).encode()
    return f'W/"{int.from_bytes(hashlib.sha256(content).digest()[:4], "big")}"'
