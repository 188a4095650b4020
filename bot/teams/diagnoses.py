"""Asking the diagnosis service, and the card for what it answers: a diagnosis, a picker or a checklist.

What a chat was shown last is remembered there (`remember`): "talk to a human" hands that diagnosis to the
helpdesk, as the card's Escalate button would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.diagnosis import RecordType, Report
from bot.diagnosis.fixes import Fix
from bot.errors import BackendError, BackendRefused, InputError, Throttled
from bot.fixing import fixes_of, may_apply
from bot.helpdesk.shown import Chat, Shown
from bot.investigation import Choice
from bot.teams import messages
from bot.teams.payloads import PERSON_FIXES
from bot.teams.turn import Card, Services, Turn
from cards.common import to_dict
from cards.conversation import PickerItem, build_checklist_card, build_picker_card
from cards.diagnosis import build_diagnosis_card

__all__ = [
    "Answer",
    "answer",
    "ask",
    "chat_of",
    "check",
    "diagnosis_card",
    "offered_fix",
    "reason",
    "remember",
]

log = logging.getLogger(__name__)
REMEMBER_WAIT = 2.0  # seconds a turn waits for its diagnosis to be kept (the answer is not held up by it)


@dataclass(frozen=True)
class Answer:
    """The card for a question, and the diagnosis on it (None: a picker or a checklist, no diagnosis)."""

    card: Card
    report: Report | None


async def answer(
    services: Services,
    user: str,
    record_type: RecordType,
    *,
    about_record: bool,
    subject_words: Sequence[str] = (),
    viewer: str | None = None,
) -> Answer:
    """The answer to `user`'s question: which record they mean is the service's to work out. `viewer` is
    who reads the card (the person gets "Fix it for me" for their own fix; None: `user`)."""
    now = datetime.now(UTC)
    try:
        found = await services.investigator.answer(
            user, record_type, about_record=about_record, subject_words=subject_words
        )
    except BackendError as exc:
        log.warning("a diagnosis failed: %s", exc)  # not who: an agent may have typed an address
        return Answer(_checklist(record_type, exc, user), None)
    if isinstance(found, Choice):
        items = [PickerItem(c.id, c.subject, _when(c.start)) for c in found.candidates]
        return Answer(to_dict(build_picker_card(items, record_type=record_type, user=user)), None)
    return Answer(_diagnosis(found, record_type, now, viewer=_fixing(services, viewer or user)), found)


async def ask(
    services: Services,
    user: str,
    record_type: RecordType,
    *,
    about_record: bool,
    subject_words: Sequence[str] = (),
) -> Card:
    """The card answering `user`'s question (`answer`'s card)."""
    got = await answer(services, user, record_type, about_record=about_record, subject_words=subject_words)
    return got.card


def chat_of(turn: Turn) -> Chat | None:
    """The chat and person of this turn (None when the activity doesn't say them)."""
    conversation = turn.activity.conversation
    if not (turn.tenant and turn.user and conversation is not None and conversation.id):
        return None
    return Chat(turn.tenant, conversation.id, turn.user)


async def remember(turn: Turn, user: str, record_type: RecordType, report: Report | None) -> None:
    """Keep `report` (about `user`) as the last diagnosis shown in this turn's chat; with None (a picker, a
    checklist), keep none: an older diagnosis, perhaps of another record, must not be carried past it.

    Best effort: a store that fails or is slow costs the escalation its context, never the answer (which is
    shown already, or shown anyway); it is logged.
    """
    helpdesk, chat = turn.services.helpdesk, chat_of(turn)
    if helpdesk is None or chat is None:
        return
    try:
        async with asyncio.timeout(REMEMBER_WAIT):
            if report is None:
                await helpdesk.forget_diagnosis(chat)
            else:
                subject = report.user.aad_object_id or user  # whom the card's buttons act for
                await helpdesk.remember_diagnosis(chat, Shown(subject, record_type, report))
    except Exception as exc:  # the store's own errors (StoreError, Azure's), or the wait: logged, not raised
        log.error("turn %s: the diagnosis shown could not be kept: %r", turn.activity.id, exc)


async def check(
    services: Services,
    user: str,
    record: str | None,
    record_type: RecordType,
    *,
    reader: str,
    show_all: bool = False,
    turn: Turn | None = None,
    notice: str | None = None,
) -> Card | str:
    """A fresh diagnosis of `user`'s record (their mailbox when None), the record read as `reader` (who
    reads the card, too).

    With `turn`, the card is what its chat was shown last (`remember`): "talk to a human" carries it.
    `notice`: a line above the verdict (why this diagnosis is shown).
    """
    now = datetime.now(UTC)
    try:
        # Read as the presser: a record id in a card's data shows only what they may read.
        report = await services.investigator.run(user, record, record_type, reader=reader)
    except BackendError as exc:
        if turn is not None:
            await remember(turn, user, record_type, None)
        return _checklist(record_type, exc, user)
    except InputError:
        return messages.UNKNOWN_ACTION
    if turn is not None:
        await remember(turn, user, record_type, report)
    return _diagnosis(report, record_type, now, show_all, viewer=_fixing(services, reader), notice=notice)


def _fixing(services: Services, viewer: str) -> str | None:
    """Who the card offers fixes to: nobody where no fixer is set up."""
    return viewer if services.fixer is not None else None


def offered_fix(report: Report, viewer: str | None) -> Fix | None:
    """The fix "Fix it for me" offers `viewer`: the first of the report's, in fix order, that the person may
    make themselves (`may_apply`, as the person: an agent's way is the ticket card), when the card is
    theirs. One at a time: the next shows once it is done. A card about someone else offers none: its fix
    buttons are its own person's alone (`actions`).

    Fixes only they can make (their own filters) come before those an agent can make too (Test & Enable):
    when Dataverse refuses them the latter, it goes to the helpdesk, and their own stays theirs to press."""
    person = (report.user.aad_object_id or "").lower()
    if not (viewer and person and viewer.lower() == person):
        return None
    mine = [
        fix
        for fix in fixes_of(report)
        if fix.id in PERSON_FIXES and may_apply(fix, by=person, person=person, is_agent=False)
    ]
    return min(mine, key=lambda fix: fix.who != "self", default=None)  # stable: fix order otherwise


def diagnosis_card(report: Report, record_type: str, *, viewer: str, notice: str | None = None) -> Card:
    """The card of a diagnosis run just now, for `viewer`."""
    return _diagnosis(report, record_type, datetime.now(UTC), viewer=viewer, notice=notice)


def _diagnosis(
    report: Report,
    record_type: str,
    now: datetime,
    show_all: bool = False,
    *,
    viewer: str | None,
    notice: str | None = None,
) -> Card:
    offer = offered_fix(report, viewer)
    card = build_diagnosis_card(
        report, record_type=record_type, checked_at=now, show_all=show_all, offer=offer, notice=notice
    )
    return to_dict(card)


def _checklist(record_type: RecordType, exc: BackendError, user: str) -> Card:
    return to_dict(build_checklist_card(record_type=record_type, reason=reason(exc), user=user))


def _when(start: str | None) -> str | None:
    """ "2026-11-20T15:00:00Z" as a person reads it: "Fri 20 Nov 15:00 UTC"."""
    if not start:
        return None
    try:
        return datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ").strftime("%a %d %b %H:%M UTC")
    except ValueError:
        return start


def reason(exc: BackendError) -> str:
    """Why the diagnosis couldn't run, for the person: whose fault, and when to try again."""
    if isinstance(exc, Throttled):
        when = f" after {exc.retry_at:%H:%M} UTC" if exc.retry_at else " in a few minutes"
        return messages.THROTTLED.format(service=exc.service, when=when)
    if exc.service == "Entra":
        return messages.SIGN_IN_REFUSED if isinstance(exc, BackendRefused) else messages.SIGN_IN_DOWN
    return messages.BACKEND_DOWN.format(service=exc.service, error=type(exc).__name__)
