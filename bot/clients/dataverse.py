"""Dataverse Web API client (v9.2): the users, mailboxes, records and sync filters Sync Doctor reads, and
the few rows one-click fixes write.

Speaks the documented wire format over httpx: OData queries, `Prefer: odata.maxpagesize` with
`@odata.nextLink` paging, `fetchXml=` queries, and `CallerObjectId` impersonation so that Dataverse
itself evaluates a user's sync filter as that user. Returns the core's fact types, converted from rows
by `bot.clients.rows` (whose public names are importable from here too).

Writes (`create_row`, `update_row`) are always made as someone (`CallerObjectId`), never as the app alone,
so Dataverse's own privilege checks decide: a 403 is `PermissionDenied` with Dataverse's words.
`read_row` reads back, by id, what a fix wrote.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

import httpx
from typing_extensions import Unpack

from bot.clients.api import ApiClient, ClientOptions
from bot.clients.http import send
from bot.clients.rows import (
    ENTITIES,
    MAILBOX_NAV,
    SERIES,
    EntityInfo,
    Row,
    SyncFilter,
    parse_datetime,
    pick_mailbox,
    record_facts,
    sync_filter,
    user_facts,
)
from bot.clients.rows import mailbox_facts as mailbox_facts
from bot.diagnosis.facts import MailboxFacts, RecordType, UserFacts
from bot.diagnosis.fixes import Value
from bot.errors import AlreadyExists, BackendRefused, InputError, PermissionDenied
from bot.ids import odata_string, require_id

__all__ = [
    "ENTITIES",
    "SERIES",
    "DataverseClient",
    "EntityInfo",
    "RecordRead",
    "Row",
    "SyncFilter",
    "key_of",
    "parse_datetime",
    "record_facts",
]

log = logging.getLogger(__name__)

SERVICE = "Dataverse"
OUTLOOK_FILTERS = 256  # userquery/savedquery querytype of synchronization filters

_USER_COLUMNS = "systemuserid,fullname,internalemailaddress,domainname,azureactivedirectoryobjectid,isdisabled,_defaultmailbox_value"
_MAILBOX_COLUMNS = (
    "mailboxid,emailaddress,statecode,emailrouteraccessapproval,isemailaddressapprovedbyo365admin,"
    "actdeliverymethod,actstatus,enabledforact,orgmarkedasprimaryforexchangesync,testemailconfigurationscheduled,testmailboxaccesscompletedon,"
    "lastsuccessfulsynccompletedon,lastsyncerrorcode,lastsyncerroroccurredon,lastsyncerrorcount,"
    "itemsfailedforlastsync,_regardingobjectid_value"
)
_FILTER_COLUMNS = "name,returnedtypecode,statecode,fetchxml,querytype,modifiedon"
# The column a record's "recent" window is judged by.
_DATED_BY = {"appointment": "scheduledstart", "task": "scheduledend", "contact": "modifiedon"}
FORMATTED = "OData.Community.Display.V1.FormattedValue"  # the annotation with a lookup's display name
DUPLICATE_KEY = "0x80040237"  # Dataverse's "Cannot insert duplicate key" (412 to a create)
# The primary key of each entity set a row may be created in: a create that carries it is safe to repeat
# (a repeat answers 412, `AlreadyExists`); one without it is sent at most once.
_KEYS = {
    "userqueries": "userqueryid",
    "savedqueries": "savedqueryid",
    "mailboxes": "mailboxid",
    **{info.entity_set: info.key for info in ENTITIES.values()},
}
_ENTITY_SET = re.compile(r"[a-z][a-z0-9_]*")
_ENTITY_ID = re.compile(r"\(([0-9A-Fa-f-]+)\)\s*$")  # the id at the end of an OData-EntityId


@dataclass(frozen=True)
class RecordRead:
    """One record read by id: its row, or None with `refused` when Dataverse said the caller may not
    read it (403: the record exists) rather than that there is no such record (404)."""

    row: Row | None
    refused: bool = False

    def owner(self) -> str | None:
        """Who owns the record: the name Dataverse formats for the owner lookup, else its id."""
        if self.row is None:
            return None
        name = self.row.get(f"_ownerid_value@{FORMATTED}")
        value = name if isinstance(name, str) and name else self.row.get("_ownerid_value")
        return str(value) if value else None


class DataverseClient(ApiClient):
    """Reads Dataverse through its Web API.

    Usage::

        async with DataverseClient("https://contoso.crm.dynamics.com", auth=BearerAuth(...)) as dv:
            found = await dv.find_user("megan@contoso.com")
    """

    API_PATH: ClassVar[str] = "/api/data/v9.2/"
    HEADERS: ClassVar[Mapping[str, str]] = {
        "Accept": "application/json",
        "OData-MaxVersion": "4.0",
        "OData-Version": "4.0",
    }

    def __init__(self, base_url: str, *, page_size: int = 500, **options: Unpack[ClientOptions]) -> None:
        super().__init__(base_url, **options)
        self._page_size = page_size
        self.requests_sent = 0

    # --- transport ---------------------------------------------------------------------------------

    async def _get(
        self, url: str, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
    ) -> Row:
        request = self._http.build_request("GET", url, params=params, headers=headers)
        self.requests_sent += 1
        response = await send(self._http, request, SERVICE, self._policy)
        try:
            body = response.json()
        except ValueError as exc:
            raise BackendRefused(
                SERVICE, f"answered {url} with something that is not JSON", status=response.status_code
            ) from exc
        if not isinstance(body, dict):
            raise BackendRefused(
                SERVICE, f"answered {url} with an unexpected JSON shape", status=response.status_code
            )
        return body

    async def _write(
        self,
        method: str,
        url: str,
        body: Mapping[str, Value],
        caller: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one write as `caller`; a 403 becomes `PermissionDenied` with Dataverse's own words.

        A create without its own id is sent once (`idempotent=False`): repeated after a lost answer, it
        could make a second row."""
        request = self._http.build_request(
            method,
            url,
            json=dict(body),
            headers={**_as_required(caller), "Content-Type": "application/json", **(headers or {})},
        )
        self.requests_sent += 1
        idempotent = method != "POST" or _KEYS.get(url.split("(")[0]) in body
        try:
            return await send(self._http, request, SERVICE, self._policy, idempotent=idempotent)
        except BackendRefused as exc:
            if exc.status == 403:
                raise PermissionDenied(
                    SERVICE,
                    str(exc).removeprefix(f"{SERVICE}: "),
                    status=403,
                    code=exc.code,
                    attempts=exc.attempts,
                    detail=exc.detail,
                ) from exc
            raise

    async def query(
        self,
        entity_set: str,
        params: Mapping[str, str],
        *,
        headers: Mapping[str, str] | None = None,
        max_pages: int = 20,
    ) -> list[Row]:
        """GET a collection, following `@odata.nextLink` verbatim for up to `max_pages` pages."""
        prefer = {"Prefer": f"odata.maxpagesize={self._page_size}"}
        merged = {**prefer, **(headers or {})}
        body = await self._get(entity_set, params, merged)
        rows: list[Row] = list(body.get("value") or [])
        pages = 1
        while isinstance(body.get("@odata.nextLink"), str) and pages < max_pages:
            body = await self._get(body["@odata.nextLink"], None, merged)
            rows.extend(body.get("value") or [])
            pages += 1
        return rows

    async def pages(self, entity_set: str, params: Mapping[str, str]) -> AsyncIterator[list[Row]]:
        """Yield one page of rows at a time (for set-based sweeps that must not hold everything)."""
        merged = {"Prefer": f"odata.maxpagesize={self._page_size}"}
        body = await self._get(entity_set, params, merged)
        yield list(body.get("value") or [])
        while isinstance(body.get("@odata.nextLink"), str):
            body = await self._get(body["@odata.nextLink"], None, merged)
            yield list(body.get("value") or [])

    # --- users and mailboxes -------------------------------------------------------------------------

    async def find_user(self, user_ref: str) -> tuple[UserFacts, MailboxFacts | None] | None:
        """The Dataverse user for an Entra object id or an email/UPN, with their mailbox (one request).

        Raises:
            InvalidIdError: `user_ref` has no @ and is not id-shaped.
        """
        if "@" in user_ref:
            email = odata_string(user_ref.strip())
            condition = f"internalemailaddress eq {email} or domainname eq {email}"
        else:
            condition = f"azureactivedirectoryobjectid eq {require_id(user_ref, 'Entra object id')}"
        rows = await self.query(
            "systemusers",
            {
                "$select": _USER_COLUMNS,
                "$filter": condition,
                "$expand": f"{MAILBOX_NAV}($select={_MAILBOX_COLUMNS})",
            },
            max_pages=1,
        )
        if not rows:
            return None
        # Several matches for one email: prefer an enabled user.
        rows.sort(key=lambda r: bool(r.get("isdisabled")))
        return user_facts(rows[0]), pick_mailbox(rows[0])

    async def users_with_mailboxes(self) -> AsyncIterator[list[tuple[UserFacts, MailboxFacts | None]]]:
        """Every user who signs in with Entra ID, with their mailbox, a page at a time (set-based: one
        request per page, however many users)."""
        params = {
            "$select": _USER_COLUMNS,
            "$filter": "azureactivedirectoryobjectid ne null",
            "$expand": f"{MAILBOX_NAV}($select={_MAILBOX_COLUMNS})",
        }
        async for page in self.pages("systemusers", params):
            yield [(user_facts(row), pick_mailbox(row)) for row in page]

    # --- records -------------------------------------------------------------------------------------

    def _record_params(self, info: EntityInfo) -> dict[str, str]:
        params = {"$select": ",".join(info.columns)}
        if info.parties:
            params["$expand"] = f"{info.parties}($select=_partyid_value,participationtypemask)"
        return params

    async def read_record(
        self, info: EntityInfo, record_id: str, *, caller: str | None = None, owner_only: bool = False
    ) -> RecordRead:
        """One record's row by id, read as `caller` (an Entra object id; None reads as the app).

        Dataverse answers 404 when there is no such record and 403 when the caller may not read it, so a
        refusal says the record exists. `owner_only` reads just who owns it (with the owner's name as
        Dataverse formats it), for an admin to see without the record's content.
        """
        key = require_id(record_id, f"{info.logical_name} id")
        headers = dict(_as(caller) or {})
        if owner_only:
            params = {"$select": "_ownerid_value"}
            headers["Prefer"] = f'odata.include-annotations="{FORMATTED}"'
        else:
            params = self._record_params(info)
        try:
            row = await self._get(f"{info.entity_set}({key})", params, headers or None)
        except BackendRefused as exc:
            if exc.status in (404, 403):
                return RecordRead(None, refused=exc.status == 403)
            raise
        return RecordRead(row)

    async def search_rows(
        self,
        record_type: RecordType,
        words: Sequence[str],
        *,
        caller: str | None = None,
        mine: str | None = None,
        limit: int = 10,
    ) -> list[Row]:
        """Records whose title contains every word, newest first.

        Read as `caller` (an Entra object id), Dataverse itself decides what they may read (their own,
        their teams', shared with them, their role's reach). `mine` (a systemuserid) keeps only records
        that user owns or takes part in: for someone with no Entra id to read as.
        """
        info = ENTITIES[record_type]
        params = self._record_params(info)
        conditions = [f"contains({info.title},{odata_string(word)})" for word in words]
        params["$filter"] = " and ".join([*conditions, *self._mine(info, mine)])
        params["$top"] = str(limit)
        params["$orderby"] = "modifiedon desc"
        return (await self.query(info.entity_set, params, headers=_as(caller), max_pages=1))[:limit]

    def _mine(self, info: EntityInfo, systemuserid: str | None) -> list[str]:
        """The condition "owned by or taking part": none when no user is given."""
        if systemuserid is None:
            return []
        user = require_id(systemuserid, "systemuserid")
        mine = f"_ownerid_value eq {user}"
        if info.parties:
            mine = f"({mine} or {info.parties}/any(p:p/_partyid_value eq {user}))"
        return [mine]

    async def recent_rows(
        self,
        record_type: RecordType,
        *,
        around: datetime,
        caller: str | None = None,
        mine: str | None = None,
        days: int = 14,
        limit: int = 50,
    ) -> list[Row]:
        """Records dated within `days` of `around`, newest first: those `caller` (an Entra object id) may
        read, read as them, or (`mine`, a systemuserid) those that user owns or takes part in."""
        info = ENTITIES[record_type]
        column = _DATED_BY[record_type]
        since = (around - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
        until = (around + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
        params = self._record_params(info)
        params["$filter"] = " and ".join(
            [*self._mine(info, mine), f"{column} ge {since}", f"{column} le {until}"]
        )
        params["$orderby"] = f"{column} desc"
        params["$top"] = str(limit)
        return (await self.query(info.entity_set, params, headers=_as(caller), max_pages=1))[:limit]

    # --- the organization ----------------------------------------------------------------------------

    async def email_approval_required(self) -> bool | None:
        """Whether the org processes email only for approved users (System Settings > Email): None when
        Dataverse doesn't say."""
        rows = await self.query("organizations", {"$select": "requireapprovalforuseremail"}, max_pages=1)
        value = rows[0].get("requireapprovalforuseremail") if rows else None
        return value if isinstance(value, bool) else None

    # --- sync filters --------------------------------------------------------------------------------

    async def user_filters(self, systemuserid: str) -> list[SyncFilter]:
        """The user's own sync filters of every type.

        The query is exactly `querytype eq 256 and _ownerid_value eq <user>`: with any other condition
        Dataverse returns only the caller's own rows (see domain.md), so the type is filtered here.
        """
        user = require_id(systemuserid, "systemuserid")
        rows = await self.query(
            "userqueries",
            {
                "$select": f"userqueryid,{_FILTER_COLUMNS}",
                "$filter": f"querytype eq {OUTLOOK_FILTERS} and _ownerid_value eq {user}",
            },
        )
        return [sync_filter(row, "userqueryid", "user") for row in rows]

    async def own_filters(self, caller: str) -> list[SyncFilter]:
        """The sync filters of every type that `caller` (an Entra object id) owns, read as them: no
        privilege over others' filters needed, and no need to know their systemuserid first. Only the
        rows they own are kept (a view shared with them is not their filter)."""
        rows = await self.query(
            "userqueries",
            {
                "$select": f"userqueryid,_ownerid_value,{_FILTER_COLUMNS}",
                "$filter": f"querytype eq {OUTLOOK_FILTERS}",
            },
            headers=_as(caller),
        )
        return [sync_filter(row, "userqueryid", "user") for row in rows]

    async def system_filters(self, record_type: RecordType) -> list[SyncFilter]:
        """The organization's system sync filters for a record type (they apply to every user)."""
        rows = await self.query(
            "savedqueries",
            {
                "$select": f"savedqueryid,{_FILTER_COLUMNS}",
                "$filter": f"querytype eq {OUTLOOK_FILTERS} and returnedtypecode eq {odata_string(record_type)}",
            },
        )
        return [sync_filter(row, "savedqueryid", "system") for row in rows]

    # --- writes (one-click fixes) ---------------------------------------------------------------------

    async def create_row(self, entity_set: str, columns: Mapping[str, Value], *, caller: str) -> str:
        """Create a row in `entity_set` as `caller` (an Entra object id); returns its id.

        Give the row's id among `columns` (e.g. `userqueryid`) whenever it can be known beforehand: the
        request is then safe to retry, and a repeat (a second press, a retry after a lost answer) raises
        `AlreadyExists` instead of making a second row.

        Raises:
            AlreadyExists: a row with that id exists (412, 0x80040237).
            PermissionDenied: Dataverse refused the caller (403): `detail` says which privilege is missing.
            BackendError: other refusals, or Dataverse was unreachable.
            InvalidIdError: `caller` is not id-shaped.
        """
        table = _entity_set(entity_set)
        try:
            response = await self._write("POST", table, columns, caller)
        except BackendRefused as exc:
            if exc.status == 412 or exc.code == DUPLICATE_KEY:
                raise AlreadyExists(
                    SERVICE,
                    str(exc).removeprefix(f"{SERVICE}: "),
                    status=exc.status,
                    code=exc.code,
                    attempts=exc.attempts,
                    detail=exc.detail,
                ) from exc
            raise
        found = _ENTITY_ID.search(response.headers.get("OData-EntityId", ""))
        if found is not None:
            return found.group(1).lower()
        given = columns.get(_KEYS.get(table, ""))
        if isinstance(given, str):
            return given.lower()
        raise BackendRefused(
            SERVICE, f"created a row in {table} without saying its id", status=response.status_code
        )

    async def update_row(
        self, entity_set: str, row_id: str, columns: Mapping[str, Value], *, caller: str
    ) -> None:
        """Set `columns` of one existing row as `caller` (an Entra object id). `If-Match: *` makes it an
        update only (without it, a PATCH to a missing id would create the row): a missing row is a 404.

        Raises:
            PermissionDenied: Dataverse refused the caller (403): `detail` says which privilege is missing.
            BackendRefused: e.g. 404, no such row.
            BackendError: Dataverse was unreachable.
            InvalidIdError: `row_id` or `caller` is not id-shaped.
        """
        url = f"{_entity_set(entity_set)}({require_id(row_id, f'{entity_set} id')})"
        await self._write("PATCH", url, columns, caller, headers={"If-Match": "*"})

    async def read_row(
        self, entity_set: str, row_id: str, columns: Sequence[str], *, caller: str | None = None
    ) -> Row | None:
        """One row's `columns` by id, read as `caller` (an Entra object id; None reads as the app): what a
        fix wrote, as it is now. None when there is no such row (404) or the caller may not read it (403).

        Raises:
            BackendError: other refusals, or Dataverse was unreachable.
            InvalidIdError: `row_id` or `caller` is not id-shaped.
        """
        url = f"{_entity_set(entity_set)}({require_id(row_id, f'{entity_set} id')})"
        try:
            return await self._get(url, {"$select": ",".join(columns)}, _as(caller))
        except BackendRefused as exc:
            if exc.status in (403, 404):
                return None
            raise

    async def fetch_as(self, record_type: RecordType, fetchxml: str, caller_aad_object_id: str) -> list[Row]:
        """Run FetchXML as another user (`CallerObjectId`), so `eq-userid` means that user."""
        info = ENTITIES[record_type]
        return await self.query(
            info.entity_set,
            {"fetchXml": fetchxml},
            headers={"CallerObjectId": require_id(caller_aad_object_id, "Entra object id")},
            max_pages=1,
        )


def _as(caller: str | None) -> dict[str, str] | None:
    """The impersonation header that makes Dataverse run a request as `caller` (an Entra object id)."""
    return {"CallerObjectId": require_id(caller, "Entra object id")} if caller else None


def key_of(entity_set: str) -> str | None:
    """The primary key column of an entity set rows may be created in (None: not one of those)."""
    return _KEYS.get(entity_set)


def _as_required(caller: str) -> dict[str, str]:
    """The impersonation header of a write: every write is made as someone, never as the app alone."""
    return {"CallerObjectId": require_id(caller, "Entra object id of who writes")}


def _entity_set(name: str) -> str:
    """`name` when it can be an entity set's name (lowercase letters, digits, underscores): a path segment.

    Raises:
        InputError: it can't.
    """
    if not _ENTITY_SET.fullmatch(name):
        raise InputError(f"{name[:40]!r} is not an entity set's name")
    return name
