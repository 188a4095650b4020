"""Gathers the facts for one diagnosis from Dataverse and Graph, then runs the pure core.

Round trips on the critical path (design.md section 5):
  1. the user with their mailbox (skipped when the user's id is cached: it then joins round 2);
  2. in parallel: the record with its activity parties, the user's sync filters, the system filters;
  3. in parallel: each active filter run by Dataverse as the user with the record's id added, and the
     Graph calendar around the record's start (it needs the start, which round 2 brings).

`Investigator.run` diagnoses what it is told; `Investigator.answer` first works out which record a person
means (their recent records matched by `bot.matching`, then a search by subject words) and says when
they have to choose.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from bot.clients.dataverse import ENTITIES, DataverseClient, SyncFilter
from bot.clients.fetchxml import FetchXmlError, restrict_to_record
from bot.clients.graph import GraphClient, find_event
from bot.clients.http import deadline
from bot.diagnosis import (
    RECORD_TYPES,
    ExchangeFacts,
    Facts,
    FilterFacts,
    MailboxFacts,
    RecordFacts,
    RecordType,
    Report,
    UserFacts,
    diagnose,
)
from bot.errors import AmbiguousRecordError, BackendError, Candidate, InputError
from bot.matching import best_matches, candidates, one_of, record_words, search_words

__all__ = ["Choice", "Investigator", "UserCache", "record_words"]

log = logging.getLogger(__name__)
T = TypeVar("T")
UserAndMailbox = tuple[UserFacts, MailboxFacts | None]


@dataclass(frozen=True)
class Choice:
    """The mailbox is fine, but which record the person means isn't clear: they choose one of `candidates`
    (the records their words matched, else their recent ones; none when they have none)."""

    candidates: tuple[Candidate, ...]


@dataclass
class UserCache:
    """Remembers which systemuserid a user reference resolved to, so round 1 can join round 2."""

    ttl: float = 600.0
    _entries: dict[str, tuple[float, str]] = field(default_factory=dict)

    def get(self, user_ref: str) -> str | None:
        entry = self._entries.get(user_ref.strip().lower())
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, user_ref: str, systemuserid: str) -> None:
        self._entries[user_ref.strip().lower()] = (time.monotonic() + self.ttl, systemuserid)

    def drop(self, user_ref: str) -> None:
        self._entries.pop(user_ref.strip().lower(), None)


async def _attempt(call: Awaitable[T]) -> tuple[T | None, str | None]:
    """Await `call`; a backend failure becomes (None, reason) so the diagnosis can go on without it."""
    try:
        return await call, None
    except BackendError as exc:
        return None, str(exc)


@dataclass
class Investigator:
    """Runs diagnoses against one Dataverse org (and optionally Graph).

    Args:
        budget: seconds for the whole diagnosis, all retries included; keep it under Teams' 15 s.
    """

    dataverse: DataverseClient
    graph: GraphClient | None = None
    budget: float = 11.0
    user_cache: UserCache | None = None

    async def user_id(self, user_ref: str) -> str | None:
        """The systemuserid behind an Entra object id or email (cached), None when there is none."""
        cached = self.user_cache.get(user_ref) if self.user_cache else None
        if cached is not None:
            return cached
        found = await self.dataverse.find_user(user_ref.strip())
        if found is None:
            return None
        if self.user_cache:
            self.user_cache.put(user_ref, found[0].systemuserid)
        return found[0].systemuserid

    async def answer(
        self,
        user_ref: str,
        record_type: RecordType = "appointment",
        *,
        about_record: bool = True,
        subject_words: Sequence[str] = (),
    ) -> Report | Choice:
        """What to tell someone who asks why their records don't reach Outlook.

        A record their `subject_words` name (one of their recent records, typos tolerated) gets one full
        diagnosis, mailbox included. Otherwise their mailbox is checked first: a mailbox-level cause is the
        answer at once, and so is a healthy mailbox when they asked about it (`about_record=False`). Else
        the words are searched for; the record they find is diagnosed, and when none or several match,
        the person chooses (`Choice`).

        Raises:
            InputError: the user reference can't be used.
            BackendError: Dataverse could not be read at all.
        """
        now = datetime.now(UTC)
        wanted = list(subject_words)
        with deadline(self.budget):
            recent: list[RecordFacts] | None = None
            if wanted:
                named, recent = await self._named(user_ref, record_type, wanted, now)
                if named is not None:
                    return await self.run(user_ref, None, record_type, record=named)
            report = await self.run(user_ref, None, record_type)
            if report.causes or not about_record:
                return report
            if wanted:
                found = await self._searched(user_ref, record_type, wanted)
                if found is not None:
                    return found
            if recent is None:
                systemuserid = report.user.systemuserid or ""
                recent = await self.dataverse.recent_records(record_type, systemuserid, around=now)
            return Choice(candidates(recent))

    async def _named(
        self, user_ref: str, record_type: RecordType, wanted: list[str], now: datetime
    ) -> tuple[RecordFacts | None, list[RecordFacts] | None]:
        """(the one recent record `wanted` names, or None; the recent records read, None when none were)."""
        systemuserid = await self.user_id(user_ref)
        if systemuserid is None:
            return None, None
        recent = await self.dataverse.recent_records(record_type, systemuserid, around=now)
        matches = best_matches(wanted, recent)
        return (matches[0] if len(matches) == 1 else None), recent

    async def _searched(
        self, user_ref: str, record_type: RecordType, wanted: list[str]
    ) -> Report | Choice | None:
        """Beyond the recent window: the record the words find (diagnosed), the ones to choose from, or None."""
        try:
            found = await self.run(user_ref, " ".join(wanted), record_type)
        except AmbiguousRecordError as exc:
            return Choice(exc.candidates)
        return found if found.record is not None else None

    async def owns_team(self, team_group_id: str, user: str | None) -> bool:
        """Whether `user` owns the Teams team (Graph knows); False when nobody can say."""
        if not (user and team_group_id and self.graph):
            return False
        try:
            with deadline(self.budget):
                return await self.graph.is_team_owner(team_group_id, user)
        except (BackendError, InputError) as exc:
            log.warning("could not check whether %s owns the team: %s", user, exc)
            return False

    async def run(
        self,
        user_ref: str,
        record_ref: str | None = None,
        record_type: RecordType = "appointment",
        *,
        record: RecordFacts | None = None,
        reader: str | None = None,
    ) -> Report:
        """Diagnose why `user_ref`'s record (or, with no record, their mailbox) doesn't sync.

        `record`, when the caller has just read it (e.g. from `recent_records`), saves reading it again.
        `reader`, the Entra object id of the person asking (the user, or an agent acting for them): a
        record named by id is read as them, so nobody sees a record Dataverse wouldn't show them.

        Raises:
            InputError: the user or record reference can't be used (ambiguous words included).
            BackendError: Dataverse could not be read at all.
        """
        if record_type not in RECORD_TYPES:
            raise InputError(f"unknown record type {record_type!r}; use one of {', '.join(RECORD_TYPES)}")
        user_ref = user_ref.strip()
        if not user_ref:
            raise InputError("no user given")
        with deadline(self.budget):
            facts = await self.gather(
                user_ref, record.id if record else record_ref, record_type, known=record, reader=reader
            )
        return diagnose(facts)

    async def gather(
        self,
        user_ref: str,
        record_ref: str | None,
        record_type: RecordType,
        *,
        known: RecordFacts | None = None,
        reader: str | None = None,
    ) -> Facts:
        record_ref = record_ref.strip() if record_ref else None
        search = search_words(record_ref)
        unknown = Facts(user_ref=user_ref, record_type=record_type, user=None, record_ref=record_ref)
        start = await self._start(user_ref)  # round 1, unless the user's id is cached
        if start is None:
            return unknown
        systemuserid, user_call = start

        # Round 2: everything that needs only the user's id.
        filters_call = _attempt(self._filters(systemuserid, record_type))
        record_call = (
            _ready((known, None))
            if known is not None
            else self._record(record_type, record_ref, search, systemuserid, reader)
        )
        found, (filters, filters_error), (record, hint) = await asyncio.gather(
            user_call, filters_call, record_call
        )
        if found is None:
            if self.user_cache:
                self.user_cache.drop(user_ref)
            return unknown
        user, mailbox = found
        if self.user_cache:
            self.user_cache.put(user_ref, user.systemuserid)

        # Round 3: what needs the record: filter evaluation by Dataverse itself, and the Exchange calendar.
        filter_facts, exchange = await self._with_record(filters, record, user)
        return Facts(
            user_ref=user_ref,
            record_type=record_type,
            user=user,
            mailbox=mailbox,
            record_ref=record_ref,
            record=record,
            record_hint=hint,
            filters=filter_facts,
            filters_error=filters_error,
            exchange=exchange,
        )

    async def _start(self, user_ref: str) -> tuple[str, Awaitable[UserAndMailbox | None]] | None:
        """The user's systemuserid and what reads them with their mailbox; None when there is no such user.

        A cached id starts round 2 at once (the user is read beside the rest); else round 1 finds them."""
        cached = self.user_cache.get(user_ref) if self.user_cache else None
        if cached is not None:
            return cached, self.dataverse.get_user(cached)
        found = await self.dataverse.find_user(user_ref)
        if found is None:
            return None
        return found[0].systemuserid, _ready(found)

    async def _with_record(
        self, filters: list[SyncFilter] | None, record: RecordFacts | None, user: UserFacts
    ) -> tuple[tuple[FilterFacts, ...] | None, ExchangeFacts]:
        """Round 3 when there is a record: each filter run against it, and the Exchange calendar."""
        if record is None:
            listed = None
            if filters is not None:
                listed = tuple(FilterFacts(name=f.name, origin=f.origin, active=f.active) for f in filters)
            return listed, ExchangeFacts(found=None, reason="no record named")
        evaluated, exchange = await asyncio.gather(
            self._evaluate(filters or [], record, user), self._in_exchange(record, user)
        )
        return (tuple(evaluated) if filters is not None else None), exchange

    async def _filters(self, systemuserid: str, record_type: RecordType) -> list[SyncFilter]:
        own, system = await asyncio.gather(
            self.dataverse.user_filters(systemuserid), self.dataverse.system_filters(record_type)
        )
        return [f for f in own if f.returned_type == record_type] + [
            f for f in system if f.returned_type == record_type
        ]

    async def _record(
        self,
        record_type: RecordType,
        record_ref: str | None,
        search: list[str] | None,
        systemuserid: str,
        reader: str | None,
    ) -> tuple[RecordFacts | None, str | None]:
        if record_ref is None:
            return None, None
        if search is None:
            record = await self.dataverse.get_record(record_type, record_ref, systemuserid, reader=reader)
            if record is not None:
                return record, None
            return None, await self._other_type_hint(record_type, record_ref, systemuserid, reader)
        matches = await self.dataverse.search_records(record_type, search, systemuserid)
        return one_of(matches, search, record_ref), None

    async def _other_type_hint(
        self, record_type: RecordType, record_id: str, systemuserid: str, reader: str | None
    ) -> str | None:
        others = [t for t in RECORD_TYPES if t != record_type]
        found = await asyncio.gather(
            *(_attempt(self.dataverse.get_record(t, record_id, systemuserid, reader=reader)) for t in others)
        )
        for other, (record, _) in zip(others, found, strict=True):
            if record is not None:
                return f"that id belongs to a {other}: ask again with type {other}"
        return None

    async def _evaluate(
        self, filters: list[SyncFilter], record: RecordFacts, user: UserFacts
    ) -> list[FilterFacts]:
        info = ENTITIES[record.type]

        async def one(flt: SyncFilter) -> FilterFacts:
            base = FilterFacts(name=flt.name, origin=flt.origin, active=flt.active)
            if not flt.active:
                return base
            if user.aad_object_id is None:
                return _with(base, error="the user has no Entra object id to run the filter as")
            try:
                query = restrict_to_record(flt.fetchxml, info.logical_name, info.key, record.id)
            except FetchXmlError as exc:
                return _with(base, error=str(exc))
            rows, error = await _attempt(self.dataverse.fetch_as(record.type, query, user.aad_object_id))
            if rows is None:
                return _with(base, error=error)
            return _with(base, matches=bool(rows))

        return list(await asyncio.gather(*(one(f) for f in filters)))

    async def _in_exchange(self, record: RecordFacts, user: UserFacts) -> ExchangeFacts:
        if record.type != "appointment":
            return ExchangeFacts(
                found=None, reason=f"Exchange is only checked for appointments, not {record.type}s"
            )
        if self.graph is None:
            return ExchangeFacts(found=None, reason="Microsoft Graph is not configured")
        if user.aad_object_id is None:
            return ExchangeFacts(found=None, reason="the user has no Entra object id")
        if record.start is None:
            return ExchangeFacts(found=None, reason="the appointment has no start time")
        end = record.end or record.start
        events, error = await _attempt(
            self.graph.calendar_view(
                user.aad_object_id, record.start - timedelta(days=1), end + timedelta(days=1)
            )
        )
        if events is None:
            return ExchangeFacts(found=None, reason=error)
        return ExchangeFacts(found=find_event(record, events) is not None)


async def _ready(value: T) -> T:
    return value


def _with(base: FilterFacts, *, matches: bool | None = None, error: str | None = None) -> FilterFacts:
    return FilterFacts(name=base.name, origin=base.origin, active=base.active, matches=matches, error=error)
