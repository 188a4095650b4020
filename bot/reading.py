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

from bot.clients.dataverse import (
    ENTITIES,
    SERIES,
    DataverseClient,
    EntityInfo,
    RecordRead,
    Row,
    SyncFilter,
)
from bot.diagnosis import MailboxFacts, RecordType, UserFacts
from bot.errors import BackendError, InputError
from bot.ids import is_id

__all__ = ["FirstRound", "Opening", "Person", "UserAndMailbox", "UserCache", "attempt", "ready", "start"]

log = logging.getLogger(__name__)
T = TypeVar("T")
UserAndMailbox = tuple[UserFacts, MailboxFacts | None]
APPROVAL_SETTING_TTL = 600.0  # seconds an org's approval setting is reused: admins change it rarely
APPROVAL_WAIT = 1.0  # seconds round 1 waits for it (it only softens one finding)


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
    """What round 1 read. Rows stay rows until the user's systemuserid (their roles) is known.

    The searches are the answer's second choice (a mailbox cause comes first), so their failure is kept
    (`search_error`) for whoever needs them, rather than failing round 1."""

    found: UserAndMailbox | None
    filters: list[SyncFilter] | None
    filters_error: str | None
    approval_required: bool | None
    by_id: RecordRead | None = None  # the record named by id, as the person (or the series of that id)
    by_id_info: EntityInfo | None = None  # where `by_id` was found: the record type's table or SERIES
    reader_may_read: bool = True  # the person asking (when someone else) may read the record too
    searched: list[Row] | None = None
    recent: list[Row] | None = None
    search_error: BaseException | None = None

    def searches(self) -> tuple[list[Row], list[Row]]:
        """(what the words found, the recent records); raises what made the searches fail."""
        if self.search_error is not None:
            raise self.search_error
        return self.searched or [], self.recent or []


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
    if not tasks:
        return
    try:
        await asyncio.wait(tasks)
    finally:
        for task in tasks:
            task.cancel()
    for task in tasks:
        if not task.cancelled():
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
        # Each read starts now, at once: one round trip for all of them. A named record is looked for in
        # its type's table and, for an appointment, among recurring series (the id may be a series').
        tables = [ENTITIES[record_type], *([SERIES] if record_type == "appointment" else [])]
        found_t = start(ready(person.found) if person.found else self._user(person))
        filters_t = start(attempt(self._filters(person, record_type)))
        approval_t = start(self._approval_required())
        as_person = [start(dv.read_record(t, record_id, caller=caller)) for t in tables] if record_id else []
        as_reader = (
            [start(dv.read_record(t, record_id, caller=reader)) for t in tables]
            if others_read and record_id
            else []
        )
        search_t = start(dv.search_rows(record_type, words, caller=caller, mine=mine)) if words else None
        recent_t = (
            start(dv.recent_rows(record_type, around=now, caller=caller, mine=mine)) if recent else None
        )
        searches = [t for t in (search_t, recent_t) if t]
        await wait_all([found_t, filters_t, approval_t, *as_person[:1], *as_reader, *searches])
        if as_person and _exists(as_person[0]):
            for task in as_person[1:]:  # the record is an appointment: no series read is worth waiting for
                task.cancel()
        await wait_all(as_person[1:])
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
        at, by_id = _named(tables, as_person)
        return Opening(
            found=found,
            filters=_own(filters, user, record_type) if filters is not None else None,
            filters_error=filters_error,
            approval_required=approval_t.result(),
            by_id=by_id,
            by_id_info=at,
            reader_may_read=not others_read or _named(tables, as_reader)[1].row is not None,
            searched=search_t.result() if search_t and not search_t.exception() else None,
            recent=recent_t.result() if recent_t and not recent_t.exception() else None,
            search_error=next((t.exception() for t in (search_t, recent_t) if t and t.exception()), None),
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
        try:  # a nicety: never worth waiting out a throttle or a slow answer for
            value = await asyncio.wait_for(self.dataverse.email_approval_required(), APPROVAL_WAIT)
        except (BackendError, TimeoutError) as exc:
            log.info("could not read the org's email approval setting: %r", exc)
            return None
        self._approval = (time.monotonic() + APPROVAL_SETTING_TTL, value)
        return value


def _named(
    tables: list[EntityInfo], reads: list[asyncio.Task[RecordRead]]
) -> tuple[EntityInfo | None, RecordRead]:
    """Where a record named by id was found (read, or refused: it exists), from the reads of each table.

    A table's read that failed matters only if no other table has the record: then its error is raised."""
    for info, task in zip(tables, reads, strict=False):
        if _exists(task):
            return info, task.result()
    for task in reads:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error
    return None, RecordRead(None)


def _exists(task: asyncio.Task[RecordRead]) -> bool:
    """The read found the record, or was refused it (Dataverse says 403 only for a record that exists)."""
    if task.cancelled() or task.exception() is not None:
        return False
    read = task.result()
    return read.row is not None or read.refused


def _own(filters: list[SyncFilter], user: UserFacts | None, record_type: RecordType) -> list[SyncFilter]:
    """The filters for `record_type` that apply to `user`: theirs (read as them, a view shared with them
    is not their filter) and the system's."""
    me = user.systemuserid if user else None
    return [
        f
        for f in filters
        if f.returned_type == record_type and (f.origin == "system" or f.owner_id in (None, me))
    ]
