"""Validation of ids and escaping of literals, so text a person typed never becomes query syntax."""

from __future__ import annotations

import re

from bot.errors import InvalidIdError

__all__ = ["is_id", "odata_string", "require_id"]

# Hex digits and dashes of GUID length. Deliberately not strict GUID layout: the Agents Playground's
# mock users have 13 hex digits in their last group (see domain.md), and the bot must work with them.
# Either way the value can hold nothing but hex digits and dashes, so it cannot inject query syntax.
_ID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12,13}")


def is_id(value: str) -> bool:
    """True when `value` has the shape of an id (see `_ID`)."""
    return _ID.fullmatch(value) is not None


def require_id(value: str, what: str = "id") -> str:
    """Return `value` lower-cased if it is id-shaped.

    Raises:
        InvalidIdError: naming `what` when it is not.
    """
    candidate = value.strip().strip("{}")
    if not is_id(candidate):
        raise InvalidIdError(
            f"{what} {value[:60]!r} is not an id (expected hex digits and dashes, GUID-shaped)"
        )
    return candidate.lower()


def odata_string(value: str) -> str:
    """Quote `value` as an OData string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"
