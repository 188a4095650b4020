"""The sandbox's Microsoft Graph: a user's calendarView (Exchange events) and a team's members."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.sandbox.config import SandboxState
from bot.sandbox.schema import Row
from bot.sandbox.wire import GRAPH, error

__all__ = ["GraphRoutes", "event_time"]

_GRAPH_DEFAULT_PAGE = 10
_NO_WINDOW = "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime."


class GraphRoutes:
    """/v1.0/users/{user}/calendarView and /v1.0/teams/{team}/members."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get(GRAPH + "users/{user}/calendarView", self.calendar_view)
        router.add_get(GRAPH + "teams/{team}/members", self.team_members)

    async def team_members(self, request: web.Request) -> web.Response:
        members = self.state.org.team_members.get(request.match_info["team"].lower())
        if members is None:
            return error(404, "NotFound", "No team found with Group Id " + request.match_info["team"])
        return web.json_response({"value": [_member(m) for m in members]})

    async def calendar_view(self, request: web.Request) -> web.Response:
        events = self.state.org.events.get(self._entra_id(request.match_info["user"].lower()))
        if events is None:
            return error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        query = request.query
        start, end = _graph_time(query.get("startDateTime")), _graph_time(query.get("endDateTime"))
        if start is None or end is None:
            return error(400, "ErrorInvalidParameter", _NO_WINDOW)
        inside = [e for e in events if event_time(e["start"]) < end and event_time(e["end"]) > start]
        inside.sort(key=lambda e: event_time(e["start"]))
        return _events_page(request, inside)

    def _entra_id(self, user: str) -> str:
        """The (lower-case) Entra object id of a user named by it or by e-mail address or user name."""
        if "@" not in user:
            return user
        match = next(
            (
                r
                for r in self.state.org.rows("systemusers")
                if user
                in (str(r.get("internalemailaddress", "")).lower(), str(r.get("domainname", "")).lower())
            ),
            None,
        )
        return str((match or {}).get("azureactivedirectoryobjectid") or "").lower()


def _events_page(request: web.Request, events: list[Row]) -> web.Response:
    """One page of events ($top, $skip, $select), with a nextLink when more follow."""
    query = request.query
    top = int(query["$top"]) if query.get("$top", "").isdigit() else _GRAPH_DEFAULT_PAGE
    skip = int(query["$skip"]) if query.get("$skip", "").isdigit() else 0
    select = [c for c in query.get("$select", "").split(",") if c]
    body: dict[str, Any] = {
        "@odata.context": f"{request.url.origin()}/v1.0/$metadata#events",
        "value": [_graph_event(e, select) for e in events[skip : skip + top]],
    }
    if skip + top < len(events):
        body["@odata.nextLink"] = str(request.url.update_query({"$skip": str(skip + top)}))
    return web.json_response(body)


def _member(row: Row) -> Row:
    return {
        "@odata.type": "#microsoft.graph.aadUserConversationMember",
        "id": row.get("id") or row["userId"],
        "displayName": row.get("displayName"),
        "roles": list(row.get("roles") or []),
        "userId": row["userId"],
    }


def _graph_time(value: str | None) -> datetime | None:
    """A startDateTime/endDateTime parameter, aware (UTC when it has no offset); None when missing or bad."""
    try:
        parsed = datetime.fromisoformat((value or "").replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def event_time(value: dict[str, str]) -> datetime:
    """An event's start or end ({"dateTime", "timeZone"}) in UTC."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", value["dateTime"]).replace("Z", "")
    naive = datetime.fromisoformat(text).replace(tzinfo=None)
    return naive.replace(tzinfo=ZoneInfo(value.get("timeZone") or "UTC")).astimezone(UTC)


def _graph_event(event: Row, select: list[str]) -> Row:
    out = dict(event)
    for edge in ("start", "end"):
        out[edge] = {
            "dateTime": event_time(event[edge]).strftime("%Y-%m-%dT%H:%M:%S.0000000"),
            "timeZone": "UTC",
        }
    if select:
        out = {k: v for k, v in out.items() if k in select or k == "id"}
    return out
