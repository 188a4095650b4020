"""The sandbox's Dataverse Web API reads: GET on entity sets and records (OData options, FetchXML, saved
queries, impersonation, paging). Writes are in `writes`."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from bot.ids import is_id
from bot.sandbox.config import SandboxState
from bot.sandbox.fetch import run_fetch
from bot.sandbox.odata import (
    Compare,
    Field,
    Literal,
    Logic,
    Node,
    QueryError,
    compare,
    first_rows,
    parse_filter,
    parse_orderby,
    split_top_level,
)
from bot.sandbox.org import Org
from bot.sandbox.schema import ENTITY_SETS, NAVIGATIONS, Row
from bot.sandbox.wire import APP_USER_ID, DATAVERSE, error, etag

__all__ = ["KEYED", "DataverseRoutes", "request_caller", "selected"]

_MAX_PAGE = 5000
KEYED = re.compile(r"^(?P<set>[a-z_]+)\((?P<key>[^)]*)\)$")
_EXPAND_OPTIONS = ("$select", "$filter", "$expand", "$orderby", "$top")

Query = MultiMapping[str]


_FORMATTED = "OData.Community.Display.V1.FormattedValue"


class DataverseRoutes:
    """/api/data/v9.2/<entity set> and /api/data/v9.2/<entity set>(<key>)."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    @property
    def org(self) -> Org:
        return self.state.org

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get(DATAVERSE + "{path:.+}", self.get)

    async def get(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        keyed = KEYED.match(path)
        entity_set = keyed.group("set") if keyed else path
        if entity_set not in ENTITY_SETS:
            return error(404, "0x8006088a", f"Resource not found for the segment '{entity_set}'.")
        caller, refusal = request_caller(self.org, request)
        if refusal is not None or caller is None:
            return refusal or error(500, "0x80040216", "no caller")
        try:
            if keyed:
                return self._get_one(entity_set, keyed.group("key"), request, caller)
            return self._get_many(entity_set, request, caller)
        except QueryError as exc:
            return error(400, "0x80060888", str(exc))

    def _navigator(self, entity_set: str) -> Callable[[Row, str], list[Row] | None]:
        def navigate(row: Row, name: str) -> list[Row] | None:
            nav = NAVIGATIONS.get((entity_set, name))
            if nav is None or not nav.many:
                return None
            return self.org.navigate(entity_set, row, name)

        return navigate

    def _get_one(self, entity_set: str, key: str, request: web.Request, caller: str) -> web.Response:
        if not is_id(key.strip("{}")):
            return error(
                400, "0x80060891", f"Bad Request - Error in query syntax: key {key!r} is not a GUID."
            )
        row = self.org.by_key(entity_set, key)
        if row is None:
            logical = ENTITY_SETS[entity_set].logical_name
            return error(404, "0x80040217", f"{logical} With Id = {key} Does Not Exist")
        if caller != APP_USER_ID and not self.org.may_read(entity_set, row, caller):
            return error(
                403,
                "0x80040220",
                f"SecLib::AccessCheckEx failed. ObjectID: {key}, CallingUser: {caller}, AccessRights: ReadAccess",
            )
        shaped = self._shape(entity_set, row, request.query.get("$select"), request.query.get("$expand"))
        if _FORMATTED in request.headers.get("Prefer", "") and "_ownerid_value" in shaped:
            # odata.include-annotations: a lookup's display name beside its id (here, the owner's).
            shaped[f"_ownerid_value@{_FORMATTED}"] = self._principal_name(shaped["_ownerid_value"])
        return web.json_response({"@odata.context": f"{_context(request, entity_set)}/$entity", **shaped})

    def _principal_name(self, principal: object) -> str | None:
        """The name of a user or team, as Dataverse formats an owner lookup."""
        user = self.org.by_key("systemusers", str(principal or ""))
        if user is not None:
            return user.get("fullname")
        team = self.org.by_key("teams", str(principal or ""))
        return team.get("name") if team is not None else None

    def _get_many(self, entity_set: str, request: web.Request, caller: str) -> web.Response:
        query = request.query
        if "fetchXml" in query or "userQuery" in query:
            rows = self._fetch(entity_set, query, caller)
            return web.json_response({"@odata.context": _context(request, entity_set), "value": rows})
        return self._page(entity_set, request, self._query(entity_set, query, caller))

    def _query(self, entity_set: str, query: Query, caller: str) -> list[Row]:
        """The rows an OData query ($filter, $orderby, $top) finds, in order, before paging."""
        rows = list(self.org.rows(entity_set))
        if caller != APP_USER_ID:  # an impersonated query sees only what that user may read
            rows = [r for r in rows if self.org.may_read(entity_set, r, caller)]
        node = parse_filter(query["$filter"]) if "$filter" in query else None
        if entity_set == "userqueries" and not _is_other_users_filter_query(node):
            # Only the exact "querytype eq 256 and _ownerid_value eq <id>" query reads others' filters.
            rows = [r for r in rows if compare("eq", r.get("_ownerid_value"), caller)]
        if node is not None:
            navigate = self._navigator(entity_set)
            rows = [r for r in rows if node.eval(r, {}, navigate)]
        _order(rows, query.get("$orderby"))
        return first_rows(rows, query.get("$top"), "$top")

    def _page(self, entity_set: str, request: web.Request, rows: list[Row]) -> web.Response:
        """One page of `rows` (Prefer: odata.maxpagesize, $skiptoken), with a nextLink when more follow."""
        query, prefer = request.query, request.headers.get("Prefer", "")
        page_size = _max_page_size(prefer)
        skip = int(query["$skiptoken"]) if query.get("$skiptoken", "").isdigit() else 0
        page = rows[skip : skip + page_size]
        body: dict[str, Any] = {
            "@odata.context": _context(request, entity_set),
            "value": [self._shape(entity_set, r, query.get("$select"), query.get("$expand")) for r in page],
        }
        if skip + page_size < len(rows):
            body["@odata.nextLink"] = str(request.url.update_query({"$skiptoken": str(skip + page_size)}))
        headers = (
            {"Preference-Applied": f"odata.maxpagesize={page_size}"} if "maxpagesize" in prefer else None
        )
        return web.json_response(body, headers=headers)

    def _fetch(self, entity_set: str, query: Query, caller: str) -> list[Row]:
        if "userQuery" in query:
            saved = self.org.by_key("userqueries", query["userQuery"])
            if saved is None:
                raise QueryError(f"userQuery {query['userQuery']!r} does not exist")
            fetchxml = str(saved["fetchxml"])
        else:
            fetchxml = query["fetchXml"]
        # As with $filter, an impersonated query sees only what that user may read; the app user reads all.
        fetched_set, rows = run_fetch(fetchxml, self.org, caller, enforce_read=caller != APP_USER_ID)
        if fetched_set != entity_set:
            raise QueryError(f"FetchXML queries {fetched_set} but the request is for {entity_set}")
        return rows

    def _shape(self, entity_set: str, row: Row, select: str | None, expand: str | None) -> Row:
        """A row as the Web API returns it: its $select columns (and key), an etag, its $expand-ed rows."""
        out = selected(row, select, ENTITY_SETS[entity_set].key)
        out["@odata.etag"] = etag(row)
        for item in split_top_level(expand or "", ","):
            name, related = self._expanded(entity_set, row, item)
            out[name] = related
        return out

    def _expanded(self, entity_set: str, row: Row, item: str) -> tuple[str, Any]:
        """One $expand item, `name(options)`: the navigation property's name and its shaped rows."""
        name, _, options = item.partition("(")
        name = name.strip()
        nav = NAVIGATIONS.get((entity_set, name))
        if nav is None:
            raise QueryError(f"$expand: {name!r} is not a navigation property of {entity_set}")
        inner = _expand_options(options.rstrip(")") if options else "")
        related = self.org.navigate(entity_set, row, name) or []
        if "$filter" in inner:
            node = parse_filter(inner["$filter"])
            related = [r for r in related if node.eval(r, {}, self._navigator(nav.target))]
        shaped = [self._shape(nav.target, r, inner.get("$select"), inner.get("$expand")) for r in related]
        return name, shaped if nav.many else (shaped[0] if shaped else None)


def _context(request: web.Request, entity_set: str) -> str:
    return f"{request.url.origin()}{DATAVERSE}$metadata#{entity_set}"


def request_caller(org: Org, request: web.Request) -> tuple[str | None, web.Response | None]:
    """The systemuserid a request runs as: the impersonated user (`CallerObjectId`, or the legacy
    `MSCRMCallerID`), else the application user; or the error Dataverse answers for an unknown or disabled one."""
    object_id = request.headers.get("CallerObjectId")
    legacy = request.headers.get("MSCRMCallerID")
    if object_id is None and legacy is None:
        return APP_USER_ID, None
    if object_id is not None:
        if not is_id(object_id):
            return None, error(400, "0x80040203", f"CallerObjectId {object_id!r} is not a GUID.")
        user = org.user_by_aad(object_id)
    else:
        user = org.by_key("systemusers", legacy or "")
    if user is None:
        return None, error(404, "0x80040217", f"No user with the caller id {object_id or legacy} exists.")
    if user.get("isdisabled"):
        return None, error(403, "0x8004d24b", "The impersonated user is disabled.")
    return str(user["systemuserid"]).lower(), None


def selected(row: Row, select: str | None, key: str) -> Row:
    """The $select columns of `row` and its key (every column without $select)."""
    if not select:
        return dict(row)
    columns = [c.strip() for c in select.split(",") if c.strip()]
    out: Row = {c: row.get(c) for c in columns}
    out[key] = row.get(key)
    return out


def _order(rows: list[Row], orderby: str | None) -> None:
    if orderby is None:
        return
    for name, descending in reversed(parse_orderby(orderby)):
        rows.sort(key=partial(_column_key, name), reverse=descending)


def _column_key(name: str, row: Row) -> tuple[int, float, str]:
    value = row.get(name)
    if value is None:
        return (1, 0.0, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (0, 0.0, str(value).casefold())


def _is_other_users_filter_query(node: Node | None) -> bool:
    if not isinstance(node, Logic) or node.op != "and" or len(node.parts) != 2:
        return False
    found: dict[str, Any] = {}
    for part in node.parts:
        if not (
            isinstance(part, Compare)
            and part.op == "eq"
            and isinstance(part.left, Field)
            and isinstance(part.right, Literal)
        ):
            return False
        found[part.left.path[0]] = part.right.value
    return set(found) == {"querytype", "_ownerid_value"} and found["querytype"] == 256


def _expand_options(text: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for part in split_top_level(text, ";"):
        name, _, value = part.partition("=")
        if name not in _EXPAND_OPTIONS:
            raise QueryError(f"$expand option {name!r} is not supported")
        options[name] = value
    return options


def _max_page_size(prefer: str) -> int:
    match = re.search(r"odata\.maxpagesize=(\d+)", prefer)
    return min(int(match.group(1)), _MAX_PAGE) if match else _MAX_PAGE
