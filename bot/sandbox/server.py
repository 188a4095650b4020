"""The sandbox: Dataverse Web API, Microsoft Graph and an Entra token endpoint, over loopback HTTP(S).

It speaks the documented wire formats closely enough that the production clients can't tell it from
the real services (design.md section 6), and it can misbehave on purpose: per-route latency, 429 with
Retry-After, 5xx, and hangs (see `Fault`).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import re
import secrets
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.errors import FixtureError
from bot.ids import is_id
from bot.sandbox.fetch import run_fetch
from bot.sandbox.odata import (
    Compare,
    Field,
    Literal,
    Logic,
    Node,
    QueryError,
    compare,
    parse_filter,
    parse_orderby,
    split_top_level,
)
from bot.sandbox.org import ENTITY_SETS, NAVIGATIONS, Org

__all__ = ["APP_USER_ID", "Fault", "RunningSandbox", "Sandbox", "SandboxConfig", "start_sandbox"]

log = logging.getLogger(__name__)

DATAVERSE = "/api/data/v9.2/"
GRAPH = "/v1.0/"
APP_USER_ID = "5d0c0a11-0000-4000-8000-00000000a99a"  # the application user the bot signs in as
_MAX_PAGE = 5000
_GRAPH_DEFAULT_PAGE = 10
_KEYED = re.compile(r"^(?P<set>[a-z_]+)\((?P<key>[^)]*)\)$")

Row = dict[str, Any]


@dataclass
class Fault:
    """Misbehaviour for requests whose path matches `route`.

    `route` is "dataverse", "graph", "token", "*", or a glob over the path (e.g. "/api/data/v9.2/userqueries*").
    `times` limits the fault to the first N matching requests (None: every one).
    """

    route: str
    latency: float = 0.0
    status: int | None = None
    retry_after: float | None = None
    hang: float | None = None
    times: int | None = None
    hits: int = 0

    def matches(self, path: str) -> bool:
        area = _area(path)
        if self.route in ("*", area):
            return True
        return fnmatch.fnmatchcase(path, self.route)

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> Fault:
        known = {"route", "latency", "status", "retry_after", "hang", "times"}
        unknown = set(spec) - known
        if unknown or "route" not in spec:
            raise ValueError(
                f"a fault needs 'route' and may have {sorted(known - {'route'})}; got {sorted(spec)}"
            )
        return cls(**{k: spec[k] for k in known if k in spec})


@dataclass
class SandboxConfig:
    faults: list[Fault] = field(default_factory=list)
    client_secrets: dict[str, str] = field(default_factory=dict)  # empty: any client may get a token
    static_tokens: set[str] = field(default_factory=set)
    require_auth: bool = True


def _area(path: str) -> str:
    if path.startswith(DATAVERSE):
        return "dataverse"
    if path.startswith(GRAPH):
        return "graph"
    if "/oauth2/" in path or "/.well-known/" in path:
        return "token"
    return "other"


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


class Sandbox:
    """The simulator's state: the org, issued tokens, and what was asked of it."""

    def __init__(self, org: Org, config: SandboxConfig | None = None) -> None:
        self.org = org
        self.config = config or SandboxConfig()
        self.tokens: set[str] = set(self.config.static_tokens)
        self.counts: Counter[str] = Counter()

    def revoke_tokens(self) -> None:
        """Forget issued tokens (not static ones): the next call with an old token gets a 401."""
        self.tokens = set(self.config.static_tokens)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get(DATAVERSE + "{path:.+}", self.dataverse_get)
        app.router.add_patch(DATAVERSE + "{path:.+}", self.dataverse_patch)
        app.router.add_get(GRAPH + "users/{user}/calendarView", self.calendar_view)
        app.router.add_get(GRAPH + "teams/{team}/members", self.team_members)
        app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self.token)
        app.router.add_get("/healthz", self.health)
        return app

    # --- middleware: counting, faults, authentication ------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        area = _area(request.path)
        self.counts[area] += 1
        for fault in self.config.faults:
            if not fault.matches(request.path) or (fault.times is not None and fault.hits >= fault.times):
                continue
            fault.hits += 1
            if fault.latency:
                await asyncio.sleep(fault.latency)
            if fault.hang:
                await asyncio.sleep(fault.hang)
            if fault.status is not None:
                headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
                code = "0x80072322" if fault.status == 429 else "0x80040216"
                return _error(fault.status, code, f"Injected fault: HTTP {fault.status}", headers)
        if area in ("dataverse", "graph") and self.config.require_auth:
            header = request.headers.get("Authorization", "")
            token = header[7:] if header.startswith("Bearer ") else ""
            if token not in self.tokens:
                code = "InvalidAuthenticationToken" if area == "graph" else "0x80072560"
                return _error(
                    401, code, "Access token is missing, expired or invalid.", {"WWW-Authenticate": "Bearer"}
                )
        return await handler(request)

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "org": self.org.source})

    # --- Entra ---------------------------------------------------------------------------------------

    async def openid_configuration(self, request: web.Request) -> web.Response:
        base = f"{request.scheme}://{request.host}/{request.match_info['tenant']}"
        return web.json_response(
            {
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "issuer": f"{base}/v2.0",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            }
        )

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return web.json_response(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "Only client_credentials is supported.",
                },
                status=400,
            )
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        expected = self.config.client_secrets
        if expected and not (client_id in expected and secrets.compare_digest(expected[client_id], secret)):
            return web.json_response(
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                },
                status=401,
            )
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return web.json_response(
            {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}
        )

    # --- Dataverse -----------------------------------------------------------------------------------

    def _caller(self, request: web.Request) -> tuple[str | None, web.Response | None]:
        """The systemuserid requests run as: the impersonated user, else the application user."""
        object_id = request.headers.get("CallerObjectId")
        legacy = request.headers.get("MSCRMCallerID")
        if object_id is None and legacy is None:
            return APP_USER_ID, None
        if object_id is not None:
            if not is_id(object_id):
                return None, _error(400, "0x80040203", f"CallerObjectId {object_id!r} is not a GUID.")
            user = self.org.user_by_aad(object_id)
        else:
            user = self.org.by_key("systemusers", legacy or "")
        if user is None:
            return None, _error(
                404, "0x80040217", f"No user with the caller id {object_id or legacy} exists."
            )
        if user.get("isdisabled"):
            return None, _error(403, "0x8004d24b", "The impersonated user is disabled.")
        return str(user["systemuserid"]).lower(), None

    def _navigator(self, entity_set: str) -> Callable[[Row, str], list[Row] | None]:
        def navigate(row: Row, name: str) -> list[Row] | None:
            nav = NAVIGATIONS.get((entity_set, name))
            if nav is None or not nav.many:
                return None
            return self.org.navigate(entity_set, row, name)

        return navigate

    async def dataverse_get(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        keyed = _KEYED.match(path)
        entity_set = keyed.group("set") if keyed else path
        if entity_set not in ENTITY_SETS:
            return _error(404, "0x8006088a", f"Resource not found for the segment '{entity_set}'.")
        caller, refusal = self._caller(request)
        if refusal is not None or caller is None:
            return refusal or _error(500, "0x80040216", "no caller")
        try:
            if keyed:
                return self._get_one(entity_set, keyed.group("key"), request, caller)
            return self._get_many(entity_set, request, caller)
        except QueryError as exc:
            return _error(400, "0x80060888", str(exc))

    def _get_one(self, entity_set: str, key: str, request: web.Request, caller: str) -> web.Response:
        if not is_id(key.strip("{}")):
            return _error(
                400, "0x80060891", f"Bad Request - Error in query syntax: key {key!r} is not a GUID."
            )
        row = self.org.by_key(entity_set, key)
        if row is None:
            logical = ENTITY_SETS[entity_set].logical_name
            return _error(404, "0x80040217", f"{logical} With Id = {key} Does Not Exist")
        if caller != APP_USER_ID and not self.org.may_read(entity_set, row, caller):
            return _error(
                403,
                "0x80040220",
                f"SecLib::AccessCheckEx failed. ObjectID: {key}, CallingUser: {caller}, AccessRights: ReadAccess",
            )
        shaped = self._shape(entity_set, row, request.query.get("$select"), request.query.get("$expand"))
        return web.json_response(
            {"@odata.context": f"{request.url.origin()}{DATAVERSE}$metadata#{entity_set}/$entity", **shaped}
        )

    def _get_many(self, entity_set: str, request: web.Request, caller: str) -> web.Response:
        query = request.query
        if "fetchXml" in query or "userQuery" in query:
            rows = self._fetch(entity_set, query, caller)
            return web.json_response(
                {"@odata.context": f"{request.url.origin()}{DATAVERSE}$metadata#{entity_set}", "value": rows}
            )
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
        if "$orderby" in query:
            for name, descending in reversed(parse_orderby(query["$orderby"])):
                rows.sort(key=partial(_column_key, name), reverse=descending)
        if "$top" in query:
            if not query["$top"].isdigit():
                raise QueryError(f"$top {query['$top']!r} is not a number")
            rows = rows[: int(query["$top"])]
        page_size = _max_page_size(request.headers.get("Prefer", ""))
        skip = int(query["$skiptoken"]) if query.get("$skiptoken", "").isdigit() else 0
        page = rows[skip : skip + page_size]
        body: dict[str, Any] = {
            "@odata.context": f"{request.url.origin()}{DATAVERSE}$metadata#{entity_set}",
            "value": [self._shape(entity_set, r, query.get("$select"), query.get("$expand")) for r in page],
        }
        if skip + page_size < len(rows):
            body["@odata.nextLink"] = str(request.url.update_query({"$skiptoken": str(skip + page_size)}))
        headers = (
            {"Preference-Applied": f"odata.maxpagesize={page_size}"}
            if "maxpagesize" in request.headers.get("Prefer", "")
            else None
        )
        return web.json_response(body, headers=headers)

    def _fetch(self, entity_set: str, query: Any, caller: str) -> list[Row]:
        if "userQuery" in query:
            saved = self.org.by_key("userqueries", query["userQuery"])
            if saved is None:
                raise QueryError(f"userQuery {query['userQuery']!r} does not exist")
            fetchxml = str(saved["fetchxml"])
        else:
            fetchxml = query["fetchXml"]
        fetched_set, rows = run_fetch(fetchxml, self.org, caller)
        if fetched_set != entity_set:
            raise QueryError(f"FetchXML queries {fetched_set} but the request is for {entity_set}")
        return rows

    def _shape(self, entity_set: str, row: Row, select: str | None, expand: str | None) -> Row:
        key = ENTITY_SETS[entity_set].key
        if select:
            columns = [c.strip() for c in select.split(",") if c.strip()]
            out: Row = {c: row.get(c) for c in columns}
            out[key] = row.get(key)
        else:
            out = dict(row)
        out["@odata.etag"] = f'W/"{abs(hash(str(sorted(row.items())))) % 10_000_000}"'
        for item in split_top_level(expand or "", ","):
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
            out[name] = shaped if nav.many else (shaped[0] if shaped else None)
        return out

    async def dataverse_patch(self, request: web.Request) -> web.Response:
        keyed = _KEYED.match(request.match_info["path"])
        if not keyed or keyed.group("set") not in ENTITY_SETS:
            return _error(404, "0x8006088a", "PATCH needs an entity set and a key.")
        row = self.org.by_key(keyed.group("set"), keyed.group("key"))
        if row is None:
            return _error(404, "0x80040217", f"No {keyed.group('set')} with id {keyed.group('key')}.")
        try:
            changes = await request.json()
        except ValueError:
            return _error(400, "0x80040216", "The request body is not JSON.")
        if not isinstance(changes, dict):
            return _error(400, "0x80040216", "The request body must be a JSON object.")
        row.update(changes)
        return web.Response(status=204)

    # --- Graph ---------------------------------------------------------------------------------------

    async def team_members(self, request: web.Request) -> web.Response:
        members = self.org.team_members.get(request.match_info["team"].lower())
        if members is None:
            return _error(404, "NotFound", "No team found with Group Id " + request.match_info["team"])
        return web.json_response({"value": [_member(m) for m in members]})

    async def calendar_view(self, request: web.Request) -> web.Response:
        user = request.match_info["user"].lower()
        if "@" in user:
            match = next(
                (
                    r
                    for r in self.org.rows("systemusers")
                    if user
                    in (str(r.get("internalemailaddress", "")).lower(), str(r.get("domainname", "")).lower())
                ),
                None,
            )
            user = str((match or {}).get("azureactivedirectoryobjectid") or "").lower()
        events = self.org.events.get(user)
        if events is None:
            return _error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        query = request.query
        start, end = _graph_time(query.get("startDateTime")), _graph_time(query.get("endDateTime"))
        if start is None or end is None:
            return _error(
                400,
                "ErrorInvalidParameter",
                "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
            )
        inside = [e for e in events if _event_time(e["start"]) < end and _event_time(e["end"]) > start]
        inside.sort(key=lambda e: _event_time(e["start"]))
        top = int(query["$top"]) if query.get("$top", "").isdigit() else _GRAPH_DEFAULT_PAGE
        skip = int(query["$skip"]) if query.get("$skip", "").isdigit() else 0
        select = [c for c in query.get("$select", "").split(",") if c]
        page = [_graph_event(e, select) for e in inside[skip : skip + top]]
        body: dict[str, Any] = {
            "@odata.context": f"{request.url.origin()}/v1.0/$metadata#events",
            "value": page,
        }
        if skip + top < len(inside):
            body["@odata.nextLink"] = str(request.url.update_query({"$skip": str(skip + top)}))
        return web.json_response(body)


def _column_key(name: str, row: Row) -> tuple[int, float, str]:
    value = row.get(name)
    if value is None:
        return (1, 0.0, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (0, 0.0, str(value).casefold())


def _member(row: Row) -> Row:
    return {
        "@odata.type": "#microsoft.graph.aadUserConversationMember",
        "id": row.get("id") or row["userId"],
        "displayName": row.get("displayName"),
        "roles": list(row.get("roles") or []),
        "userId": row["userId"],
    }


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
        if name not in ("$select", "$filter", "$expand", "$orderby", "$top"):
            raise QueryError(f"$expand option {name!r} is not supported")
        options[name] = value
    return options


def _max_page_size(prefer: str) -> int:
    match = re.search(r"odata\.maxpagesize=(\d+)", prefer)
    return min(int(match.group(1)), _MAX_PAGE) if match else _MAX_PAGE


def _graph_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _event_time(value: dict[str, str]) -> datetime:
    text = re.sub(r"(\.\d{6})\d+", r"\1", value["dateTime"]).replace("Z", "")
    naive = datetime.fromisoformat(text).replace(tzinfo=None)
    return naive.replace(tzinfo=ZoneInfo(value.get("timeZone") or "UTC")).astimezone(UTC)


def _graph_event(event: Row, select: list[str]) -> Row:
    out = dict(event)
    for edge in ("start", "end"):
        out[edge] = {
            "dateTime": _event_time(event[edge]).strftime("%Y-%m-%dT%H:%M:%S.0000000"),
            "timeZone": "UTC",
        }
    if select:
        out = {k: v for k, v in out.items() if k in select or k == "id"}
    return out


@dataclass
class RunningSandbox:
    """A started sandbox. `url` is its base URL (use it as DATAVERSE_URL, GRAPH_URL and authority host)."""

    sandbox: Sandbox
    runner: web.AppRunner
    url: str

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_sandbox(
    org: Org,
    config: SandboxConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
) -> RunningSandbox:
    """Start the sandbox on `host:port` (0: a free port) and return where it listens."""
    config = config or SandboxConfig()
    try:
        config.faults.extend(Fault.parse(spec) for spec in org.fault_specs)
    except (TypeError, ValueError) as exc:
        raise FixtureError(f"{org.source}: $faults: {exc}") from exc
    sandbox = Sandbox(org, config)
    # A short shutdown: a fault that hangs a handler must not hold up closing the sandbox.
    runner = web.AppRunner(sandbox.app(), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    bound_port = runner.addresses[0][1]
    scheme = "https" if ssl_context else "http"
    return RunningSandbox(sandbox=sandbox, runner=runner, url=f"{scheme}://{host}:{bound_port}")
