"""Gathers the facts for one diagnosis from Dataverse and Graph, then runs the pure core.

Everything about the person's records is read *as the person* (`CallerObjectId`, their Entra object id),
so Dataverse itself decides what they may read, as server-side sync does. Round trips on the critical
path (design.md section 5), when the person's Entra object id is known (every Teams turn):

  1. in parallel: the user with their mailbox; the person's own sync filters; the system filters; the
     org's email approval setting (cached); the record by id (for an appointment, also the series of
     that id), or the records their words find and their recent ones;
  2. in parallel: each active filter (and each of the person's own inactive ones, for a fix that turns
     one back on) run by Dataverse as the person with the record's id added; the Graph calendar around
     the record's start; and, when the person neither owns nor takes part in the record, whether one of
     their teams owns it (only these need what round 1 returned).

Known only by email, a person costs one round first (to learn their Entra id; cached after). A record the
person may not read (its owner, for an agent), an id of another type, or words naming a recurring series
need one more read: at most 3 rounds on every path.

`Investigator.run` diagnoses what it is told; `Investigator.answer` first works out which record a person
means (their recent records matched by `bot.matching`, then a search by subject words) and says when they
have to choose.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TypeVar

from bot.clients.dataverse import (
    ENTITIES,
    SERIES,
    DataverseClient,
    EntityInfo,
    Row,
    SyncFilter,
    record_facts,
)
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
from bot.diagnosis.facts import UnreadableRecord
from bot.diagnosis.selection import needs_team_check, team_selection
from bot.errors import AmbiguousRecordError, BackendError, Candidate, InputError
from bot.matching import best_matches, candidates, one_of, record_words, search_words
from bot.reading import FirstRound, Opening, Person, UserCache, attempt

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
class Investigator:
    """Runs diagnoses against one Dataverse org (and optionally Graph).

    Args:
        budget: seconds for the whole diagnosis, all retries included; keep it under Teams' 15 s.
    """

    dataverse: DataverseClient
    graph: GraphClient | None = None
    budget: float = 11.0
    user_cache: UserCache | None = None
    _first: FirstRound = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._first = FirstRound(self.dataverse, self.user_cache)

    # --- the two questions ----------------------------------------------------------------------------

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
        diagnosis, mailbox included. Otherwise a mailbox-level cause is the answer at once, and so is a
        healthy mailbox when they asked about it (`about_record=False`). Else the record their words find
        among what they may read is diagnosed; when none or several match, the person chooses (`Choice`).
        Words naming instances of one recurring series mean that series.

        Raises:
            InputError: the user reference can't be used.
            BackendError: Dataverse could not be read at all.
        """
        wanted = list(subject_words)
        with deadline(self.budget):
            person = await self._first.identify(user_ref.strip())
            if person is None:
                return diagnose(_nobody(user_ref.strip(), record_type))
            opening = await self._first.open(person, record_type, words=wanted, recent=about_record)
            if opening.found is None:
                return diagnose(_nobody(person.ref, record_type))
            user = opening.found[0]
            recent = _mine(_facts(record_type, opening.recent, user))  # [] when it couldn't be read
            named = best_matches(wanted, recent) if wanted else []
            if len(named) == 1 or _series_of(named):
                return diagnose(
                    await self._facts(person, opening, record_type, await self._one(person, user, named))
                )
            mailbox = diagnose(self._base(person, opening, record_type, None))
            if mailbox.causes or not about_record:
                return mailbox
            searched, _ = opening.searches()  # needed now: a failure to search fails the answer
            found = _facts(record_type, searched, user)
            if found:
                try:
                    record = one_of(found, wanted, " ".join(wanted)) if not _series_of(found) else None
                except AmbiguousRecordError as exc:
                    return Choice(exc.candidates)
                record = record or await self._one(person, user, found)
                return diagnose(await self._facts(person, opening, record_type, record))
            return Choice(candidates(recent[:10]))

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

        `record`, when the caller has just read it, saves reading it again. `reader`, the Entra object id
        of whoever asks when it is not the person (an agent acting for them): the record is also read as
        them, so nobody is shown a record Dataverse wouldn't show them. Without a reader (an admin's CLI),
        and for an agent, a record the person may not read shows who owns it.

        Raises:
            InputError: the user or record reference can't be used (ambiguous words included).
            BackendError: Dataverse could not be read at all.
        """
        if record_type not in RECORD_TYPES:
            raise InputError(f"unknown record type {record_type!r}; use one of {', '.join(RECORD_TYPES)}")
        user_ref = user_ref.strip()
        if not user_ref:
            raise InputError("no user given")
        record_ref = record.id if record else (record_ref.strip() if record_ref else None)
        with deadline(self.budget):
            return diagnose(await self.gather(user_ref, record_ref, record_type, known=record, reader=reader))

    async def gather(
        self,
        user_ref: str,
        record_ref: str | None,
        record_type: RecordType,
        *,
        known: RecordFacts | None = None,
        reader: str | None = None,
    ) -> Facts:
        search = search_words(record_ref)
        if search is not None and reader is not None and reader != user_ref:
            # Words are searched as the person: someone else asking would see their matches.
            raise InputError("only the person themselves can name a record by words; give its id")
        person = await self._first.identify(user_ref)
        if person is None:
            return _nobody(user_ref, record_type, record_ref)
        record_id = record_ref if known is None and search is None else None
        opening = await self._first.open(
            person, record_type, record_id=record_id, words=search, reader=reader
        )
        if opening.found is None:
            return _nobody(user_ref, record_type, record_ref)
        user = opening.found[0]
        if user.is_disabled and person.caller is not None:
            return self._base(person, opening, record_type, None)  # user-disabled says it all
        if known is not None:
            return await self._facts(person, opening, record_type, known, record_ref)
        if search is not None:
            found = _facts(record_type, opening.searches()[0], user)
            series = await self._one(person, user, found) if _series_of(found) else None
            record = series or one_of(found, search, record_ref or "")
            return await self._facts(person, opening, record_type, record, record_ref)
        return await self._by_id(person, opening, record_type, record_ref, reader)

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

    # --- between the rounds: which record ------------------------------------------------------------------

    async def _by_id(
        self,
        person: Person,
        opening: Opening,
        record_type: RecordType,
        record_id: str | None,
        reader: str | None,
    ) -> Facts:
        """The facts for a record named by id: a readable record (or series) is diagnosed in round 2; one
        the person may not read is a cause of its own; none at all may be an id of another type."""
        user = opening.found[0] if opening.found else None
        if record_id is None or user is None:
            return await self._facts(person, opening, record_type, None, record_id)
        read, info = opening.by_id, opening.by_id_info
        if read is not None and info is not None and opening.reader_may_read:
            if read.row is not None:
                record = record_facts(info, read.row, user.systemuserid)
                return await self._facts(person, opening, record_type, record, record_id)
            # Refused as the person: it exists. Who owns it is for an agent or admin asking, not for them.
            owner = await self._owner(info, record_id) if reader != person.caller else None
            unreadable = UnreadableRecord(record_id.lower(), owner)
            return replace(self._base(person, opening, record_type, record_id), unreadable=unreadable)
        hint = None
        if opening.reader_may_read:
            hint = await self._other_type_hint(record_type, record_id, person.caller or reader)
        return replace(self._base(person, opening, record_type, record_id), record_hint=hint)

    async def _owner(self, info: EntityInfo, record_id: str) -> str | None:
        """Who owns a record the person may not read, read as the app: for an agent or admin only."""
        read, _ = await attempt(self.dataverse.read_record(info, record_id, owner_only=True))
        return read.owner() if read is not None else None

    async def _one(
        self, person: Person, user: UserFacts, matches: Sequence[RecordFacts]
    ) -> RecordFacts | None:
        """The one record `matches` mean: the only match, or the recurring series they are instances of."""
        series_id = _series_of(matches)
        if series_id is None:
            return matches[0] if len(matches) == 1 else None
        read = await self.dataverse.read_record(SERIES, series_id, caller=person.caller)
        if read.row is None:
            return matches[0]  # the series itself can't be read: an instance is what there is
        return record_facts(SERIES, read.row, user.systemuserid)

    async def _other_type_hint(
        self, record_type: RecordType, record_id: str, caller: str | None
    ) -> str | None:
        others = [t for t in RECORD_TYPES if t != record_type]
        found = await asyncio.gather(
            *(attempt(self.dataverse.read_record(ENTITIES[t], record_id, caller=caller)) for t in others)
        )
        for other, (read, _) in zip(others, found, strict=True):
            if read is not None and (read.row is not None or read.refused):
                return f"that id is a {other}'s, not a {record_type}'s: ask about the {other}"
        return None

    # --- round 2 ----------------------------------------------------------------------------------------

    def _base(
        self, person: Person, opening: Opening, record_type: RecordType, record_ref: str | None
    ) -> Facts:
        """The facts round 1 gave, before any record is looked at."""
        user, mailbox = opening.found if opening.found else (None, None)
        filters = opening.filters
        return Facts(
            user_ref=person.ref,
            record_type=record_type,
            user=user,
            mailbox=mailbox,
            record_ref=record_ref,
            filters=tuple(_listed(f) for f in filters) if filters is not None else None,
            filters_error=opening.filters_error,
            exchange=ExchangeFacts(found=None, reason="no record named"),
            approval_required=opening.approval_required,
        )

    async def _facts(
        self,
        person: Person,
        opening: Opening,
        record_type: RecordType,
        record: RecordFacts | None,
        record_ref: str | None = None,
    ) -> Facts:
        """Round 2 when there is a record: each filter run against it, the Exchange calendar, and (when
        only that could select it for a new filter) whether one of the person's teams owns it."""
        base = self._base(
            person, opening, record_type, record_ref if record is None else (record_ref or record.id)
        )
        if record is None or base.user is None:
            return base
        evaluated, exchange, team_owned = await asyncio.gather(
            self._evaluate(opening.filters or [], record, base.user),
            self._in_exchange(record, base.user),
            self._team_owned(record, base.user),
        )
        return replace(
            base,
            record=replace(record, team_owned=team_owned),
            filters=tuple(evaluated) if opening.filters is not None else None,
            exchange=exchange,
        )

    async def _evaluate(
        self, filters: list[SyncFilter], record: RecordFacts, user: UserFacts
    ) -> list[FilterFacts]:
        """Each active filter, and each of the person's own inactive ones (would turning it back on select
        the record?), run by Dataverse as the person against the record. The rules read active ones only."""

        async def one(flt: SyncFilter) -> FilterFacts:
            base = _listed(flt)
            if not flt.active and flt.origin != "user":
                return base  # an organization filter that is off is the admins' business, not a fix of theirs
            if user.aad_object_id is None:
                return replace(base, error="the user has no Entra object id to run the filter as")
            try:
                query = _restricted(flt.fetchxml, record)
            except FetchXmlError as exc:
                return replace(base, error=str(exc))
            rows, error = await attempt(self.dataverse.fetch_as(record.type, query, user.aad_object_id))
            if rows is None:
                return replace(base, error=error)
            return replace(base, matches=bool(rows))

        return list(await asyncio.gather(*(one(f) for f in filters)))

    async def _team_owned(self, record: RecordFacts, user: UserFacts) -> bool | None:
        """Whether one of the person's teams owns the record: the filter "... my teams own" that a fix would
        add, run as them against it. Asked only when nothing else of theirs could select it (None)."""
        if not needs_team_check(record) or user.aad_object_id is None:
            return None
        query = _restricted(team_selection(record).fetchxml, record)
        rows, error = await attempt(self.dataverse.fetch_as(record.type, query, user.aad_object_id))
        if rows is None:
            log.info("could not ask whether a team of the person owns the record: %s", error)
        return None if rows is None else bool(rows)

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
        events, error = await attempt(
            self.graph.calendar_view(
                user.aad_object_id, record.start - timedelta(days=1), end + timedelta(days=1)
            )
        )
        if events is None:
            return ExchangeFacts(found=None, reason=error)
        return ExchangeFacts(found=find_event(record, events) is not None)


def _listed(flt: SyncFilter) -> FilterFacts:
    """A filter as the core sees it, before it is run."""
    return FilterFacts(
        name=flt.name, origin=flt.origin, active=flt.active, id=flt.id or None, modified_on=flt.modified_on
    )


def _restricted(fetchxml: str, record: RecordFacts) -> str:
    """`fetchxml` restricted to the record; a series is selected through its instances (its appointments).

    Raises:
        FetchXmlError: the FetchXML can't be used.
    """
    info = ENTITIES[record.type]
    key = "seriesid" if record.recurrence == "series" else info.key
    return restrict_to_record(fetchxml, info.logical_name, key, record.id)


def _nobody(user_ref: str, record_type: RecordType, record_ref: str | None = None) -> Facts:
    return Facts(user_ref=user_ref, record_type=record_type, user=None, record_ref=record_ref)


def _facts(record_type: RecordType, rows: list[Row] | None, user: UserFacts) -> list[RecordFacts]:
    return [record_facts(ENTITIES[record_type], row, user.systemuserid) for row in rows or []]


def _mine(records: list[RecordFacts]) -> list[RecordFacts]:
    """The records the person owns or takes part in: "your recent records" (not all they may read)."""
    return [r for r in records if r.roles]


def _series_of(matches: Sequence[RecordFacts]) -> str | None:
    """The series id when every match is an occurrence of one recurring series. An exception (an
    occurrence changed on its own: other attendees, another time) is its own record, not the series."""
    ids = {r.series_id for r in matches if r.recurrence == "instance"}
    if not matches or len(ids) != 1 or any(r.recurrence != "instance" for r in matches):
        return None
    return next(iter(ids))
