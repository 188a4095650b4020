"""Microsoft Graph client: is a Dynamics 365 appointment in the user's Exchange calendar?"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from bot.clients.api import ApiClient
from bot.clients.dataverse import parse_datetime
from bot.clients.http import send
from bot.diagnosis.facts import RecordFacts
from bot.errors import BackendRefused
from bot.ids import require_id

__all__ = ["CalendarEvent", "GraphClient", "find_event"]

SERVICE = "Graph"
_MATCH_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class CalendarEvent:
    id: str
    subject: str | None
    ical_uid: str | None
    start: datetime | None


class GraphClient(ApiClient):
    """Reads users' calendars through Microsoft Graph (application permission Calendars.ReadBasic)."""

    API_PATH: ClassVar[str] = "/v1.0/"

    async def calendar_view(
        self, user_id: str, start: datetime, end: datetime, *, max_pages: int = 5
    ) -> list[CalendarEvent]:
        """Events (series expanded) overlapping [start, end) in the user's default calendar, in UTC."""
        user = require_id(user_id, "Entra object id")
        params = {
            "startDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endDateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "$select": "id,subject,iCalUId,start,end",
            "$top": "50",
        }
        headers = {"Prefer": 'outlook.timezone="UTC"'}
        url: str | None = f"users/{user}/calendarView"
        events: list[CalendarEvent] = []
        pages = 0
        while url and pages < max_pages:
            request = self._http.build_request(
                "GET", url, params=params if pages == 0 else None, headers=headers
            )
            response = await send(self._http, request, SERVICE, self._policy)
            try:
                body = response.json()
            except ValueError as exc:
                raise BackendRefused(
                    SERVICE, "calendarView answered with something that is not JSON", status=200
                ) from exc
            for item in body.get("value") or []:
                events.append(_event(item))
            link = body.get("@odata.nextLink")
            url = link if isinstance(link, str) else None
            pages += 1
        return events

    async def is_team_owner(self, team_group_id: str, user_id: str) -> bool:
        """Whether the user owns the team: the app reads its members through resource-specific consent
        (TeamMember.Read.Group, granted when the Teams app is added to the team), not a tenant-wide grant."""
        team = require_id(team_group_id, "team group id")
        user = require_id(user_id, "Entra object id")
        url: str | None = f"teams/{team}/members"
        for _ in range(20):  # pages of members; a team has at most a few thousand
            if url is None:
                break
            response = await send(self._http, self._http.build_request("GET", url), SERVICE, self._policy)
            body = response.json()
            for member in body.get("value") or []:
                if str(member.get("userId", "")).lower() == user and "owner" in (member.get("roles") or []):
                    return True
            link = body.get("@odata.nextLink")
            url = link if isinstance(link, str) else None
        return False


def _event(item: dict[str, Any]) -> CalendarEvent:
    start = item.get("start") or {}
    when = parse_datetime(start.get("dateTime")) if isinstance(start, dict) else None
    return CalendarEvent(
        id=str(item.get("id", "")),
        subject=item.get("subject"),
        ical_uid=item.get("iCalUId"),
        start=when,
    )


def find_event(record: RecordFacts, events: list[CalendarEvent]) -> CalendarEvent | None:
    """The Exchange event that is this appointment: same iCalUId/global object id, else same subject
    and start within a minute (the id mapping is not documented as exact, so both are tried)."""
    if record.global_object_id:
        wanted = record.global_object_id.lower()
        for event in events:
            if event.ical_uid and event.ical_uid.lower() == wanted:
                return event
    subject = (record.subject or "").strip().casefold()
    for event in events:
        if (event.subject or "").strip().casefold() != subject or event.start is None or record.start is None:
            continue
        if abs(event.start - record.start) <= _MATCH_WINDOW:
            return event
    return None
