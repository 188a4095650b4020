"""The sandbox's Dataverse Web API writes: those one-click fixes make (domain.md section 6b), on the wire as
Dataverse answers them.

- `POST /userqueries`: the body's columns (`userqueryid` optional, else one is made; `name`, `fetchxml`,
  `querytype` and `returnedtypecode` required, the FetchXML must be one the sandbox can run). 204 with
  `OData-EntityId`, or 201 with the row under `Prefer: return=representation`; an id that exists: 412,
  0x80040237 "Cannot insert duplicate key."
- `PATCH /userqueries(<id>)`, `PATCH /mailboxes(<id>)`: 204 (200 with the row under return=representation).
  A missing row: 404 with `If-Match`; without it, a userquery is created (an upsert). `If-Match` with an
  ETag the row no longer has: 412. `If-None-Match: *` on an existing row: 412.
- `DELETE /userqueries(<id>)`: 204; 404 when missing.

Every write runs as the caller (`CallerObjectId`, else the application user), is checked by `columns` (what
may be written) and `privileges` (who may write it), and is stamped as Dataverse does: a created row is owned
and created by the caller (`_createdonbehalfby_value` the application user when impersonating), active unless
the body says otherwise; `createdon` / `modifiedon` are the sandbox's clock. Other tables are not written
(405): the sandbox models the writes Sync Doctor makes, not all of Dataverse.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.ids import is_id
from bot.sandbox.columns import REQUIRED, WriteError, check_fetchxml, checked_changes
from bot.sandbox.config import SandboxState
from bot.sandbox.dataverse import KEYED, request_caller, selected
from bot.sandbox.org import Org
from bot.sandbox.privileges import Operation, refusal
from bot.sandbox.schema import ENTITY_SETS, Row, key_of
from bot.sandbox.wire import APP_USER_ID, DATAVERSE, error, etag

__all__ = ["DataverseWrites"]

_CREATE = frozenset({"userqueries"})
_UPDATE = frozenset({"userqueries", "mailboxes"})
_DELETE = frozenset({"userqueries"})
_WHEN = "%Y-%m-%dT%H:%M:%SZ"


class _Answered(Exception):
    """A request answered before it got to its write (e.g. an unknown caller): the response to give."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


class DataverseWrites:
    """POST /api/data/v9.2/<entity set>, PATCH and DELETE /api/data/v9.2/<entity set>(<key>)."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    @property
    def org(self) -> Org:
        return self.state.org

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_post(DATAVERSE + "{path:.+}", self._answering(self._create))
        router.add_patch(DATAVERSE + "{path:.+}", self._answering(self._update))
        router.add_delete(DATAVERSE + "{path:.+}", self._answering(self._delete))

    @staticmethod
    def _answering(
        write: Callable[[web.Request], Awaitable[web.Response]],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        """A route whose refusals (`WriteError`) become Dataverse's error responses."""

        async def route(request: web.Request) -> web.Response:
            try:
                return await write(request)
            except WriteError as exc:
                return error(exc.status, exc.code, exc.message)
            except _Answered as answered:
                return answered.response

        return route

    # --- the three methods ---------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        entity_set = request.match_info["path"]
        _writable(entity_set, _CREATE, "POST")
        caller = self._caller(request)
        row = self._insert(entity_set, await _body(request), caller, None)
        return _written(request, entity_set, row, created=True)

    async def _update(self, request: web.Request) -> web.Response:
        entity_set, key = _keyed(request, _UPDATE, "PATCH")
        caller = self._caller(request)
        body = await _body(request)
        row = self.org.by_key(entity_set, key)
        if row is None:
            if "If-Match" in request.headers or entity_set not in _CREATE:
                raise _not_found(entity_set, key)
            return _written(request, entity_set, self._insert(entity_set, body, caller, key), created=True)
        if request.headers.get("If-None-Match") == "*":
            raise WriteError(412, "0x80040237", "A record with matching key values already exists.")
        _check_version(row, request.headers.get("If-Match"))
        changes = checked_changes(entity_set, body, row, self.org.rows(entity_set))
        _same_key(entity_set, changes.pop(ENTITY_SETS[entity_set].key, None), key)
        _check_filter(entity_set, {**row, **changes}, changes)
        self._allowed(caller, "update", entity_set, row, changes)
        row.update(changes)
        row.update(self._stamp("modified", caller))
        return _written(request, entity_set, row, created=False)

    async def _delete(self, request: web.Request) -> web.Response:
        entity_set, key = _keyed(request, _DELETE, "DELETE")
        caller = self._caller(request)
        row = self.org.by_key(entity_set, key)
        if row is None:
            raise _not_found(entity_set, key)
        _check_version(row, request.headers.get("If-Match"))
        self._allowed(caller, "delete", entity_set, row, {})
        rows = self.org.rows(entity_set)
        del rows[next(i for i, r in enumerate(rows) if r is row)]
        return web.Response(status=204)

    # --- helpers -------------------------------------------------------------------------------------

    def _caller(self, request: web.Request) -> str:
        caller, refused = request_caller(self.org, request)
        if refused is not None:
            raise _Answered(refused)
        if caller is None:
            raise WriteError(500, "0x80040216", "no caller")
        return caller

    def _insert(self, entity_set: str, body: dict[str, Any], caller: str, key: str | None) -> Row:
        """Create a row (POST, or PATCH of a missing id): checked, owned by the caller, stamped."""
        meta = ENTITY_SETS[entity_set]
        changes = checked_changes(entity_set, body, None, self.org.rows(entity_set))
        given = changes.pop(meta.key, None)
        if key is not None:
            _same_key(entity_set, given, key)
        row_id = key if key is not None else given
        if row_id is None:
            row_id = str(uuid.uuid4())
        if not isinstance(row_id, str) or not is_id(row_id.strip("{}")):
            raise WriteError(400, "0x80040203", f"{meta.key} {row_id!r} is not a GUID.")
        if self.org.by_key(entity_set, row_id) is not None:
            raise WriteError(412, "0x80040237", "Cannot insert duplicate key.")
        missing = [c for c in REQUIRED.get(entity_set, ()) if changes.get(c) is None]
        if missing:
            raise WriteError(
                400,
                "0x80040203",
                f"A {meta.logical_name} needs {', '.join(missing)}: the request has no value for it.",
            )
        _check_filter(entity_set, changes, changes)
        self._allowed(caller, "create", entity_set, None, changes)
        row: Row = {meta.key: key_of(row_id), "statecode": 0, "statuscode": 1, **changes}
        row["_ownerid_value"] = caller
        row.update(self._stamp("created", caller))
        row.update(self._stamp("modified", caller))
        self.org.tables.setdefault(entity_set, []).append(row)
        return row

    def _stamp(self, what: str, caller: str) -> Row:
        """`<what>on`, `_<what>by_value` and, when impersonating, `_<what>onbehalfby_value` (the app)."""
        stamp: Row = {f"{what}on": self.state.config.clock().strftime(_WHEN), f"_{what}by_value": caller}
        if caller != APP_USER_ID:
            stamp[f"_{what}onbehalfby_value"] = APP_USER_ID
        return stamp

    def _allowed(
        self, caller: str, operation: Operation, entity_set: str, row: Row | None, changes: Row
    ) -> None:
        refused = refusal(self.org, caller, operation, entity_set, row, changes)
        if refused is not None:
            raise refused


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise WriteError(400, "0x80040216", "The request body is not JSON.") from exc
    if not isinstance(body, dict):
        raise WriteError(400, "0x80040216", "The request body must be a JSON object.")
    return body


def _writable(entity_set: str, allowed: frozenset[str], method: str) -> None:
    if entity_set not in ENTITY_SETS:
        raise WriteError(404, "0x8006088a", f"Resource not found for the segment '{entity_set}'.")
    if entity_set not in allowed:
        raise WriteError(
            405,
            "0x80060888",
            f"The sandbox doesn't {method} {entity_set}: it writes only what one-click fixes write "
            "(userqueries: POST, PATCH, DELETE; mailboxes: PATCH).",
        )


def _keyed(request: web.Request, allowed: frozenset[str], method: str) -> tuple[str, str]:
    keyed = KEYED.match(request.match_info["path"])
    if keyed is None:
        _writable(request.match_info["path"], frozenset(), method)
        raise WriteError(405, "0x80060888", f"{method} needs an entity set and a key: <set>(<id>).")
    entity_set, key = keyed.group("set"), keyed.group("key")
    _writable(entity_set, allowed, method)
    if not is_id(key.strip("{}")):
        raise WriteError(
            400, "0x80060891", f"Bad Request - Error in query syntax: key {key!r} is not a GUID."
        )
    return entity_set, key


def _not_found(entity_set: str, key: str) -> WriteError:
    return WriteError(
        404, "0x80040217", f"{ENTITY_SETS[entity_set].logical_name} With Id = {key} Does Not Exist"
    )


def _same_key(entity_set: str, given: object, key: str) -> None:
    """A body may repeat the row's key (`given`), not change it."""
    if given is not None and key_of(given) != key_of(key):
        column = ENTITY_SETS[entity_set].key
        raise WriteError(
            400, "0x80040203", f"{column} {given} in the body differs from the key {key} in the URL."
        )


def _check_version(row: Row, if_match: str | None) -> None:
    """`If-Match` with an ETag: the row must still have it (optimistic concurrency)."""
    if if_match is None or if_match.strip() == "*":
        return
    if if_match.strip() != etag(row):
        raise WriteError(
            412,
            "0x80060882",
            "The version of the existing record doesn't match the RowVersion property provided.",
        )


def _check_filter(entity_set: str, merged: Row, changes: Row) -> None:
    """A userquery keeps its required columns, and its FetchXML stays one that queries its type."""
    if entity_set != "userqueries":
        return
    cleared = [c for c in REQUIRED[entity_set] if c in changes and changes[c] is None]
    if cleared:
        raise WriteError(400, "0x80040203", f"A userquery needs {', '.join(cleared)}: it can't be null.")
    if "fetchxml" in changes or "returnedtypecode" in changes:
        check_fetchxml(str(merged["fetchxml"]), str(merged["returnedtypecode"]))


def _written(request: web.Request, entity_set: str, row: Row, *, created: bool) -> web.Response:
    """Dataverse's answer to a write: 204 with the row's address, or the row under return=representation."""
    key = ENTITY_SETS[entity_set].key
    origin = f"{request.url.origin()}{DATAVERSE}"
    headers = {"OData-EntityId": f"{origin}{entity_set}({row[key]})"}
    if "return=representation" not in request.headers.get("Prefer", ""):
        return web.Response(status=204, headers=headers)
    headers["Preference-Applied"] = "return=representation"
    body = {
        "@odata.context": f"{origin}$metadata#{entity_set}/$entity",
        "@odata.etag": etag(row),
        **selected(row, request.query.get("$select"), key),
    }
    return web.json_response(body, status=201 if created else 200, headers=headers)
