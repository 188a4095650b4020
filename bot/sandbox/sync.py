"""Server-side synchronization, as the sandbox plays it: one cycle at a time (domain.md sections 2 and 6b).

A cycle:
1. Completes each scheduled Test & Enable (`testemailconfigurationscheduled` true): the flag goes false,
   `testmailboxaccesscompletedon` is now, and `actstatus` is 1 (Success) when the mailbox is otherwise
   fine (active, its address approved or approval not required by the organization, Appointments, Contacts,
   and Tasks by server-side synchronization), else 2 (Failure).
2. Syncs appointments for each enabled user whose mailbox is healthy (the above, `actstatus` Success, and
   enabled for appointments, contacts and tasks): the appointments that meet any of their active sync
   filters (their own `userqueries` of querytype 256 OR-ed with the system `savedqueries`, each FetchXML run
   as them) and have an Organizer (else sync fails with the documented alert) are in their Graph calendar.
   A missing one is added as an event with the appointment's subject, start and end, and an `iCalUId` equal
   to its `globalobjectid` (written back to the appointment when it has none, as sync links the two); an
   event already there (the same iCalUId, or the same subject and start within a minute: what the bot's
   Graph client looks for) is left alone. Events the cycle added whose appointment no longer matches are
   removed; events from the fixture never are. The mailbox's `lastsuccessfulsynccompletedon` is now.
Contacts and tasks have no Graph counterpart here, so a cycle syncs appointments only.

The fixture's `"$sync_cycle_seconds": N` runs a cycle every N seconds (`SyncCycle.every`); tests run one at
once (`SyncCycle.run`, or `POST /$sandbox/sync` on loopback) and wait for timed ones (`SyncCycle.wait_for`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.sandbox.fetch import run_fetch
from bot.sandbox.graph import event_time
from bot.sandbox.odata import QueryError
from bot.sandbox.org import Org
from bot.sandbox.schema import Row, key_of

__all__ = ["CycleReport", "SyncCycle"]

log = logging.getLogger(__name__)

FILTERS = 256  # querytype of sync filters (OutlookFilters)
SUCCESS, FAILURE = 1, 2  # actstatus
SERVER_SIDE_SYNC = 1  # actdeliverymethod
ORGANIZER = 7  # activityparty participationtypemask
_SAME_START = timedelta(minutes=1)
_WHEN = "%Y-%m-%dT%H:%M:%SZ"
# Exchange global object ids start so (MS-OXOCAL PidLidGlobalObjectId); the rest, here, is the record's id.
_GOID_PREFIX = "040000008200E00074C5B7101A82E008" + "0" * 24


@dataclass
class CycleReport:
    """What one cycle did: the mailbox tests it completed, the events it added and removed."""

    tested: dict[str, int] = field(default_factory=dict)  # mailboxid -> the actstatus the test gave
    added: list[tuple[str, str]] = field(default_factory=list)  # (Entra object id, appointment id)
    removed: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        pairs = {"added": self.added, "removed": self.removed}
        return {
            "tested": self.tested,
            **{k: [{"user": u, "appointment": a} for u, a in v] for k, v in pairs.items()},
        }


class SyncCycle:
    """The sync cycles of one org: what they added to Graph, and how many have run."""

    def __init__(self, org: Org, clock: Callable[[], datetime]) -> None:
        self.org = org
        self.clock = clock
        self.count = 0
        self._added: dict[tuple[str, str], str] = {}  # (Entra id, appointment id) -> the event's id
        self._ran = asyncio.Condition()

    async def every(self, seconds: float) -> None:
        """Run a cycle every `seconds`, until cancelled. A cycle that fails is logged, and the next one runs."""
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.run_now()
            except Exception:
                log.exception("sandbox sync cycle failed")

    async def run_now(self) -> CycleReport:
        """One cycle now, waking whoever waits for it (`wait_for`)."""
        report = self.run()
        async with self._ran:
            self._ran.notify_all()
        return report

    async def wait_for(self, count: int) -> None:
        """Return once `count` cycles have run in all."""
        async with self._ran:
            await self._ran.wait_for(lambda: self.count >= count)

    def run(self) -> CycleReport:
        """One cycle, now (see the module's docstring)."""
        now = self.clock()
        report = CycleReport()
        for mailbox in self.org.rows("mailboxes"):
            if mailbox.get("testemailconfigurationscheduled") is True:
                mailbox["testemailconfigurationscheduled"] = False
                mailbox["testmailboxaccesscompletedon"] = now.strftime(_WHEN)
                mailbox["actstatus"] = SUCCESS if self._configured(mailbox) else FAILURE
                report.tested[str(mailbox["mailboxid"])] = mailbox["actstatus"]
        for user in self.org.rows("systemusers"):
            synced = self._mailbox_of(user)
            entra = key_of(user.get("azureactivedirectoryobjectid") or "")
            if entra and not user.get("isdisabled") and synced is not None and self._healthy(synced):
                self._sync_appointments(str(user["systemuserid"]), entra, report)
                synced["lastsyncstartedon"] = synced["lastsuccessfulsynccompletedon"] = now.strftime(_WHEN)
        self.count += 1
        return report

    # --- mailboxes -----------------------------------------------------------------------------------

    def _configured(self, mailbox: Row) -> bool:
        """What a Test & Enable checks: active, approved (or approval not required), ACT by server-side sync."""
        return (
            mailbox.get("statecode") in (0, None)
            and self._approved(mailbox)
            and mailbox.get("actdeliverymethod") == SERVER_SIDE_SYNC
        )

    def _approved(self, mailbox: Row) -> bool:
        organizations = self.org.rows("organizations")
        required = organizations[0].get("requireapprovalforuseremail") if organizations else None
        return mailbox.get("emailrouteraccessapproval") == 1 or required is False

    def _healthy(self, mailbox: Row) -> bool:
        return (
            self._configured(mailbox)
            and mailbox.get("actstatus") == SUCCESS
            and mailbox.get("enabledforact") is not False
        )

    def _mailbox_of(self, user: Row) -> Row | None:
        """The user's mailbox, as the bot picks it: the default one, else an active one, else any."""
        mine = self.org.navigate("systemusers", user, "mailbox_regarding_systemuser") or []
        default = key_of(user.get("_defaultmailbox_value") or "")
        mine.sort(
            key=lambda m: (key_of(m.get("mailboxid", "")) != default, m.get("statecode") not in (0, None))
        )
        return mine[0] if mine else None

    # --- appointments --------------------------------------------------------------------------------

    def _sync_appointments(self, systemuserid: str, entra: str, report: CycleReport) -> None:
        wanted = {
            key_of(row["activityid"]): row for row in self._matching(systemuserid) if self._organized(row)
        }
        events = self.org.events.get(entra, [])  # a calendar is made only for an event to add
        for activity_id, appointment in wanted.items():
            ours = next((e for e in events if e["id"] == self._added.get((entra, activity_id))), None)
            if ours is not None:
                _update_event(ours, appointment)
            elif _start(appointment) is not None and _end(appointment) is not None:
                if _already_there(appointment, events):
                    continue
                event = _new_event(appointment)
                self.org.events.setdefault(entra, events).append(event)
                self._added[(entra, activity_id)] = event["id"]
                report.added.append((entra, activity_id))
        for (user, activity_id), event_id in list(self._added.items()):
            if user == entra and activity_id not in wanted:
                events[:] = [e for e in events if e["id"] != event_id]
                del self._added[(user, activity_id)]
                report.removed.append((entra, activity_id))

    def _matching(self, systemuserid: str) -> list[Row]:
        """The appointments any of the user's active appointment filters selects, run as the user."""
        user = key_of(systemuserid)
        own = [q for q in self.org.rows("userqueries") if key_of(q.get("_ownerid_value") or "") == user]
        appointments = {key_of(a["activityid"]): a for a in self.org.rows("appointments")}
        found: dict[str, Row] = {}
        for query in [*own, *self.org.rows("savedqueries")]:
            if query.get("querytype") != FILTERS or query.get("statecode") not in (0, None):
                continue
            if query.get("returnedtypecode") != "appointment":
                continue
            try:
                _, rows = run_fetch(str(query["fetchxml"]), self.org, user)
            except QueryError as exc:  # Dataverse would refuse such a filter; sync skips it
                log.warning("sandbox sync: filter %s can't run: %s", query.get("name"), exc)
                continue
            for row in rows:
                key = key_of(row.get("activityid", ""))
                if key in appointments:
                    found[key] = appointments[key]
        return list(found.values())

    def _organized(self, appointment: Row) -> bool:
        parties = self.org.navigate("appointments", appointment, "appointment_activity_parties") or []
        return any(p.get("participationtypemask") == ORGANIZER for p in parties)


def _already_there(appointment: Row, events: list[Row]) -> bool:
    """An event that is this appointment: the same iCalUId, or the same subject and start within a minute."""
    goid = str(appointment.get("globalobjectid") or "").lower()
    subject = str(appointment.get("subject") or "").strip().casefold()
    start = _start(appointment)
    for event in events:
        if goid and str(event.get("iCalUId") or "").lower() == goid:
            return True
        when = _graph_time(event["start"])
        same_subject = str(event.get("subject") or "").strip().casefold() == subject
        if same_subject and start is not None and when is not None and abs(when - start) <= _SAME_START:
            return True
    return False


def _new_event(appointment: Row) -> Row:
    if not appointment.get("globalobjectid"):  # sync links the record to the event it creates
        appointment["globalobjectid"] = (
            _GOID_PREFIX + re.sub("[^0-9a-f]", "", key_of(appointment["activityid"])).upper()
        )
    event: Row = {
        "id": f"AAMkAGsandbox-{key_of(appointment['activityid'])}",
        "iCalUId": appointment["globalobjectid"],
    }
    _update_event(event, appointment)
    return event


def _update_event(event: Row, appointment: Row) -> None:
    """The event says what the appointment says (sync is two-way; the record wins here)."""
    start, end = _start(appointment), _end(appointment)
    event["subject"] = appointment.get("subject")
    if start is not None and end is not None:
        event["start"] = {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}
        event["end"] = {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def _start(appointment: Row) -> datetime | None:
    return _utc(appointment.get("scheduledstart"))


def _end(appointment: Row) -> datetime | None:
    return _utc(appointment.get("scheduledend"))


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _graph_time(edge: Any) -> datetime | None:
    return event_time(edge) if isinstance(edge, dict) and isinstance(edge.get("dateTime"), str) else None
