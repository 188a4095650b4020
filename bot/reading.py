"""Round 1 of a diagnosis: everything that needs only who the person is, read at once and as them.

`FirstRound.identify` works out whom to read as (an Entra object id at once; an email costs a round,
remembered in `UserCache`); `FirstRound.open` then reads, in parallel: the user with their mailbox, their
own sync filters (as them), the system filters, the org's email approval setting (cached), and the record
by id (and a series of that id), or the records their words find and their recent ones. `bot.investigation`
decides from these which record is meant and runs round 2.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from bot.clients.dataverse import ENTITIES, SERIES, DataverseClient, RecordRead, Row, SyncFilter
from bot.diagnosis import MailboxFacts, RecordType, UserFacts
from bot.errors import BackendError, InputError
from bot.ids import is_id

__all__ = ["FirstRound", "Opening", "Person", "UserAndMailbox", "UserCache", "attempt", "ready", "start"]

log = logging.getLogger(__name__)
T = TypeVar("T")
UserAndMailbox = tuple[UserFacts, MailboxFacts | None]
APPROVAL_SETTING_TTL = 600.0  # seconds an org's approval setting is reused: admins change it rarely


@dataclass
class UserCache:
    """Remembers the Entra object id an email resolved to, so the next diagnosis reads as them at once."""

    ttl: float = 600.0
    _entries: dict[str, tuple[float, str]] = field(default_factory=dict)

    def get(self, user_ref: str) -> str | None:
        entry = self._entries.get(user_ref.strip().lower())
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, user_ref: str, aad_object_id: str) -> None:
        self._entries[user_ref.strip().lower()] = (time.monotonic() + self.ttl, aad_object_id)

    def drop(self, user_ref: str) -> None:
        self._entries.pop(user_ref.strip().lower(), None)


@dataclass(frozen=True)
class Person:
    """Whom a diagnosis is about: `caller` is their Entra object id to read as (None: they have none, so
    the app reads for them); `found` is the user and mailbox when identifying them already read those."""

    ref: str
    caller: str | None
    found: UserAndMailbox | None = None


@dataclass(frozen=True)
class Opening:
    """What round 1 read. Rows stay rows until the user's systemuserid (their roles) is known."""

    found: UserAndMailbox | None
    filters: list[SyncFilter] | None
    filters_error: str | None
    approval_required: bool | None
    by_id: RecordRead | None = None  # the record named by id, as the person
    series_by_id: RecordRead | None = None  # a recurring series with that id (appointments only)
    reader_may_read: bool = True  # the person asking (when someone else) may read the record too
    searched: list[Row] | None = None
    recent: list[Row] | None = None


async def attempt(call: Awaitable[T]) -> tuple[T | None, str | None]:
    """Await `call`; a backend failure becomes (None, reason) so the diagnosis can go on without it."""
    try:
        return await call, None
    except BackendError as exc:
        return None, str(exc)


async def ready(value: T) -> T:
    return value


def start(call: Coroutine[object, object, T]) -> asyncio.Task[T]:
    return asyncio.ensure_future(call)


async def wait_all(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Wait until every task has ended (each is bounded by the diagnosis' deadline); their failures are
    read from each task. Cancelled meanwhile, cancel them all: no read is left running."""
    try:
        await asyncio.wait(tasks)
    finally:
        for task in tasks:
            task.cancel()
    for task in tasks:
        task.exception()  # seen here, so an unused failure isn't reported as never retrieved


@dataclass
class FirstRound:
    """Reads round 1 for the `Investigator` (see the module's docstring)."""

    dataverse: DataverseClient
    user_cache: UserCache | None = None
    _approval: tuple[float, bool | None] | None = field(default=None, repr=False)

    async def identify(self, user_ref: str) -> Person | None:
        """An Entra object id is read as at once; an email costs a round (then cached). None: no such user."""
        if not user_ref:
            raise InputError("no user given")
        if "@" not in user_ref:
            return Person(user_ref, caller=user_ref) if is_id(user_ref) else await self._looked_up(user_ref)
        cached = self.user_cache.get(user_ref) if self.user_cache else None
        if cached is not None:
            return Person(user_ref, caller=cached)
        return await self._looked_up(user_ref)

    async def _looked_up(self, user_ref: str) -> Person | None:
        found = await self.dataverse.find_user(user_ref)  # refuses a reference that is neither
        if found is None:
            return None
        caller = found[0].aad_object_id
        if self.user_cache and caller:
            self.user_cache.put(user_ref, caller)
        return Person(user_ref, caller=caller, found=found)

    async def open(
        self,
        person: Person,
        record_type: RecordType,
        *,
        record_id: str | None = None,
        words: Sequence[str] | None = None,
        recent: bool = False,
        reader: str | None = None,
    ) -> Opening:
        """Round 1: everything that needs only who the person is, read in parallel."""
        dv, caller = self.dataverse, person.caller
        mine = None if caller else (person.found[0].systemuserid if person.found else None)
        now = datetime.now(UTC)
        others_read = reader is not None and reader != caller and record_id is not None
        info = ENTITIES[record_type]
        # Each read starts now, at once: one round trip for all of them.
        found_t = start(ready(person.found) if person.found else self._user(person))
        filters_t = start(attempt(self._filters(person, record_type)))
        approval_t = start(self._approval_required())
        by_id_t = start(dv.read_record(info, record_id, caller=caller)) if record_id else None
        series_t = (
            start(dv.read_record(SERIES, record_id, caller=caller))
            if record_id and record_type == "appointment"
            else None
        )
        reader_t = (
            start(dv.read_record(info, record_id, caller=reader)) if others_read and record_id else None
        )
        search_t = start(dv.search_rows(record_type, words, caller=caller, mine=mine)) if words else None
        recent_t = (
            start(dv.recent_rows(record_type, around=now, caller=caller, mine=mine)) if recent else None
        )
        started = [
            t for t in (found_t, filters_t, approval_t, by_id_t, series_t, reader_t, search_t, recent_t) if t
        ]
        await wait_all(started)
        found = found_t.result()  # a failure to read the user fails the diagnosis
        if found is None:
            # No such user: what was read as them failed too (Dataverse knows no such caller): not an error.
            return Opening(found=None, filters=None, filters_error=None, approval_required=None)
        user = found[0]
        if user.is_disabled and caller is not None:
            # Dataverse runs nothing as a disabled user: what was read as them failed, and that is no news.
            why = "Dynamics 365 doesn't run anything as a disabled user"
            return Opening(
                found=found, filters=None, filters_error=why, approval_required=approval_t.result()
            )
        filters, filters_error = filters_t.result()
        as_reader = reader_t.result() if reader_t else None
        return Opening(
            found=found,
            filters=_own(filters, user, record_type) if filters is not None else None,
            filters_error=filters_error,
            approval_required=approval_t.result(),
            by_id=by_id_t.result() if by_id_t else None,
            series_by_id=series_t.result() if series_t else None,
            reader_may_read=not others_read or (as_reader is not None and as_reader.row is not None),
            searched=search_t.result() if search_t else None,
            recent=recent_t.result() if recent_t else None,
        )

    async def _user(self, person: Person) -> UserAndMailbox | None:
        if person.caller is None:
            return None
        found = await self.dataverse.find_user(person.caller)
        if found is None and self.user_cache:
            self.user_cache.drop(person.ref)
        return found

    async def _filters(self, person: Person, record_type: RecordType) -> list[SyncFilter]:
        """The person's own filters (read as them) and the org's system filters, of every type."""
        if person.caller is not None:
            own = self.dataverse.own_filters(person.caller)
        elif person.found is not None:
            own = self.dataverse.user_filters(person.found[0].systemuserid)
        else:
            own = ready([])
        mine, system = await asyncio.gather(own, self.dataverse.system_filters(record_type))
        return mine + system

    async def _approval_required(self) -> bool | None:
        """The org's "Process emails only for approved users", read once per `APPROVAL_SETTING_TTL`."""
        if self._approval is not None and self._approval[0] > time.monotonic():
            return self._approval[1]
        value, error = await attempt(self.dataverse.email_approval_required())
        if error is not None:
            log.info("could not read the org's email approval setting: %s", error)
            return None
        self._approval = (time.monotonic() + APPROVAL_SETTING_TTL, value)
        return value


def _own(filters: list[SyncFilter], user: UserFacts | None, record_type: RecordType) -> list[SyncFilter]:
    """The filters for `record_type` that apply to `user`: theirs (read as them, a view shared with them
    is not their filter) and the system's."""
    me = user.systemuserid if user else None
    return [
        f
        for f in filters
        if f.returned_type == record_type and (f.origin == "system" or f.owner_id in (None, me))
    ]
