"""Gathers the facts for one diagnosis from Dataverse and Graph, then runs the pure core.

Round trips on the critical path (design.md section 5):
  1. the user with their mailbox (skipped when the user's id is cached: it then joins round 2);
  2. in parallel: the record with its activity parties, the user's sync filters, the system filters;
  3. in parallel: each active filter run by Dataverse as the user with the record's id added, and the
     Graph calendar around the record's start (it needs the start, which round 2 brings).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
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
from bot.ids import is_id

__all__ = ["Investigator", "UserCache", "record_words"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_WORD = re.compile(r"[^\W_]+(?:['’.-][^\W_]+)*", re.UNICODE)
_MAX_WORDS = 6


def record_words(text: str) -> list[str]:
    """The words of a subject someone typed, as plain search terms (no syntax survives)."""
    return [w for w in _WORD.findall(text) if len(w) > 1 or w.isdigit()][:_MAX_WORDS]


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
        words = None if record_ref is None or is_id(record_ref.strip("{}")) else record_words(record_ref)
        if words is not None and not words:
            raise InputError(f"{record_ref!r} has no words to look for; give an id or words from the subject")

        cached = self.user_cache.get(user_ref) if self.user_cache else None
        if cached is not None:
            found_task: asyncio.Future[tuple[UserFacts, MailboxFacts | None] | None] = asyncio.ensure_future(
                self.dataverse.get_user(cached)
            )
            systemuserid = cached
        else:
            found = await self.dataverse.find_user(user_ref)  # round 1
            if found is None:
                return Facts(user_ref=user_ref, record_type=record_type, user=None, record_ref=record_ref)
            found_task = asyncio.get_running_loop().create_future()
            found_task.set_result(found)
            systemuserid = found[0].systemuserid

        # Round 2: everything that needs only the user's id.
        filters_call = _attempt(self._filters(systemuserid, record_type))
        record_call = (
            self._known(known)
            if known is not None
            else self._record(record_type, record_ref, words, systemuserid, reader)
        )
        found_or_none, (filters, filters_error), (record, hint) = await asyncio.gather(
            found_task, filters_call, record_call
        )
        if found_or_none is None:
            if self.user_cache:
                self.user_cache.drop(user_ref)
            return Facts(user_ref=user_ref, record_type=record_type, user=None, record_ref=record_ref)
        user, mailbox = found_or_none
        if self.user_cache:
            self.user_cache.put(user_ref, user.systemuserid)

        # Round 3: what needs the record: filter evaluation by Dataverse itself, and the Exchange calendar.
        filter_facts: tuple[FilterFacts, ...] | None = None
        exchange = ExchangeFacts(found=None, reason="no record named")
        if record is not None:
            evaluated, exchange = await asyncio.gather(
                self._evaluate(filters or [], record, user), self._in_exchange(record, user)
            )
            filter_facts = tuple(evaluated) if filters is not None else None
        elif filters is not None:
            filter_facts = tuple(FilterFacts(name=f.name, origin=f.origin, active=f.active) for f in filters)
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
        words: list[str] | None,
        systemuserid: str,
        reader: str | None,
    ) -> tuple[RecordFacts | None, str | None]:
        if record_ref is None:
            return None, None
        if words is None:
            record = await self.dataverse.get_record(record_type, record_ref, systemuserid, reader=reader)
            if record is not None:
                return record, None
            return None, await self._other_type_hint(record_type, record_ref, systemuserid, reader)
        matches = await self.dataverse.search_records(record_type, words, systemuserid)
        if len(matches) > 1:
            wanted = " ".join(words).casefold()
            exact = [m for m in matches if " ".join(record_words(m.subject or "")).casefold() == wanted]
            if len(exact) == 1:
                return exact[0], None
            raise AmbiguousRecordError(
                record_ref,
                [Candidate(m.id, m.subject or "(no subject)", _iso(m)) for m in matches],
            )
        return (matches[0], None) if matches else (None, None)

    @staticmethod
    async def _known(record: RecordFacts) -> tuple[RecordFacts | None, str | None]:
        return record, None

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


def _with(base: FilterFacts, *, matches: bool | None = None, error: str | None = None) -> FilterFacts:
    return FilterFacts(name=base.name, origin=base.origin, active=base.active, matches=matches, error=error)


def _iso(record: RecordFacts) -> str | None:
    return record.start.strftime("%Y-%m-%dT%H:%M:%SZ") if record.start else None
