"""The columns the sandbox lets clients write, and the values each may hold (what Dataverse checks on a
create or an update of `userqueries` and `mailboxes`).

A body's column must be one the table has: a documented one below, or one the fixture's rows of that table
carry (lookups, `_xxx_value`, are read-only: Dataverse sets them through navigation properties, which the
sandbox doesn't write). Otherwise: 400 "Could not find a property named ...", as Dataverse answers.
Choice columns must hold one of their values, booleans a boolean, text a string, date-times an ISO 8601
string; `statecode` and `statuscode` must be a valid pair (a `statecode` alone gets its state's default
status, as Dataverse sets it). The error codes of value checks are Dataverse's where documented, else a
close one: clients should read the status and the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.sandbox.fetch import check_fetch
from bot.sandbox.odata import QueryError
from bot.sandbox.schema import ENTITY_SETS, Row

__all__ = ["REQUIRED", "WRITABLE", "WriteError", "check_fetchxml", "checked_changes"]


class WriteError(Exception):
    """A write Dataverse would refuse: the HTTP status, its error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Column:
    kind: str  # "text", "int", "bool", "datetime", "choice" (then `choices` holds the values)
    choices: tuple[int, ...] = ()


_TEXT, _INT, _BOOL, _WHEN = Column("text"), Column("int"), Column("bool"), Column("datetime")


def _choice(*values: int) -> Column:
    return Column("choice", values)


_STATUS = _choice(0, 1, 2)  # Not Run, Success, Failure
WRITABLE: dict[str, dict[str, Column]] = {
    "userqueries": {
        "userqueryid": _TEXT,
        "name": _TEXT,
        "description": _TEXT,
        "fetchxml": _TEXT,
        "layoutxml": _TEXT,
        "layoutjson": _TEXT,
        "columnsetxml": _TEXT,
        "conditionalformatting": _TEXT,
        "advancedgroupby": _TEXT,
        "offlinesqlquery": _TEXT,
        "returnedtypecode": _TEXT,
        "querytype": _INT,
        "statecode": _choice(0, 1),
        "statuscode": _choice(1, 2),
    },
    "mailboxes": {
        "mailboxid": _TEXT,
        "name": _TEXT,
        "emailaddress": _TEXT,
        "username": _TEXT,
        "statecode": _choice(0, 1),
        "statuscode": _choice(1, 2),
        "actdeliverymethod": _choice(0, 1, 2),  # Outlook, Server-Side Synchronization, None
        "actstatus": _STATUS,
        "emailrouteraccessapproval": _choice(0, 1, 2, 3),  # Empty, Approved, Pending Approval, Rejected
        "incomingemaildeliverymethod": _choice(0, 1, 2, 3),
        "outgoingemaildeliverymethod": _choice(0, 1, 2),
        "incomingemailstatus": _STATUS,
        "outgoingemailstatus": _STATUS,
        "mailboxstatus": _STATUS,
        "enabledforact": _BOOL,
        "enabledforincomingemail": _BOOL,
        "enabledforoutgoingemail": _BOOL,
        "testemailconfigurationscheduled": _BOOL,
        "isemailaddressapprovedbyo365admin": _BOOL,
        "orgmarkedasprimaryforexchangesync": _BOOL,
        "isforwardmailbox": _BOOL,
        "isserviceaccount": _BOOL,
        "testmailboxaccesscompletedon": _WHEN,
        "lastsuccessfulsynccompletedon": _WHEN,
        "lastsyncstartedon": _WHEN,
        "lastsyncerroroccurredon": _WHEN,
        "lastsyncerrorcode": _INT,
        "lastsyncerrorcount": _INT,
        "itemsfailedforlastsync": _INT,
    },
}
REQUIRED = {"userqueries": ("name", "fetchxml", "querytype", "returnedtypecode")}
# Each statecode's valid statuscodes, the first its default (userqueries and mailboxes alike).
_STATES: Mapping[int, tuple[int, ...]] = {0: (1,), 1: (2,)}


def checked_changes(entity_set: str, body: Mapping[str, Any], known: Row | None, rows: list[Row]) -> Row:
    """The columns a create or update body sets, checked: unknown columns, values, the state/status pair.

    Args:
        known: the row as it is now (None: the body creates it).
        rows: the table's rows (a column any of them has is one the table has).

    Raises:
        WriteError: 400, naming the first problem.
    """
    logical = ENTITY_SETS[entity_set].logical_name
    columns = WRITABLE[entity_set]
    changes: Row = {}
    for name, value in body.items():
        if name.endswith("@odata.bind"):
            raise WriteError(400, "0x80040203", f"{name}: the sandbox doesn't bind lookups.")
        if "@" in name:
            continue  # annotations (e.g. the @odata.etag of a row read earlier) carry no data
        if name not in columns and (name.startswith("_") or not any(name in r for r in rows)):
            raise WriteError(
                400,
                "0x0",
                f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{logical}'.",
            )
        column = columns.get(name)
        if column is not None and value is not None:
            _check_value(logical, name, column, value)
        changes[name] = value
    _check_state(logical, changes, known)
    return changes


def _check_value(logical: str, name: str, column: Column, value: Any) -> None:
    expected = {"text": "Edm.String", "int": "Edm.Int32", "choice": "Edm.Int32", "bool": "Edm.Boolean"}
    if column.kind == "datetime":
        if not isinstance(value, str) or _datetime(value) is None:
            raise _payload(
                logical, f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset'."
            )
        return
    is_int = isinstance(value, int) and not isinstance(value, bool)
    fits = {"text": isinstance(value, str), "bool": isinstance(value, bool)}.get(column.kind, is_int)
    if not fits:
        raise _payload(
            logical, f"Cannot convert the literal '{value}' to the expected type '{expected[column.kind]}'."
        )
    if column.kind == "choice" and value not in column.choices:
        accepted = ",".join(str(c) for c in column.choices)
        raise WriteError(
            400,
            "0x8004431a",
            f"A validation error occurred. The value {value} of '{name}' on record of type '{logical}' is "
            f"outside the valid range. Accepted Values: {accepted}",
        )


def _check_state(logical: str, changes: Row, known: Row | None) -> None:
    """A statecode alone gets its default statuscode; a statuscode must belong to the (new) statecode."""
    if "statecode" not in changes and "statuscode" not in changes:
        return
    state = changes["statecode"] if "statecode" in changes else (known or {}).get("statecode") or 0
    if state is None:
        raise WriteError(400, "0x80040203", f"statecode of a {logical} can't be null.")
    if "statuscode" not in changes or changes["statuscode"] is None:
        changes["statuscode"] = _STATES[state][0]
    elif changes["statuscode"] not in _STATES[state]:
        raise WriteError(
            400,
            "0x8004431a",
            f"{changes['statuscode']} is not a valid status code for state code {state} on {logical}.",
        )


def _payload(logical: str, detail: str) -> WriteError:
    return WriteError(
        400,
        "0x80048d19",
        f"Error identified in Payload provided by the user for Entity :'{logical}'. {detail}",
    )


def _datetime(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def check_fetchxml(fetchxml: str, returnedtypecode: str) -> None:
    """A filter's FetchXML parses, uses what the sandbox can run, and queries its `returnedtypecode`.

    Raises:
        WriteError: 400, saying what is wrong.
    """
    try:
        entity_set = check_fetch(fetchxml)
    except QueryError as exc:
        raise WriteError(400, "0x80040203", f"The fetchxml is not valid: {exc}") from exc
    if ENTITY_SETS[entity_set].logical_name != returnedtypecode:
        raise WriteError(
            400,
            "0x80040203",
            f"The fetchxml queries {ENTITY_SETS[entity_set].logical_name} but returnedtypecode is {returnedtypecode!r}.",
        )
