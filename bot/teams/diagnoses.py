"""Asking the diagnosis service, and the card for what it answers: a diagnosis, a picker or a checklist."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from bot.diagnosis import RecordType, Report
from bot.errors import BackendError, BackendRefused, InputError, Throttled
from bot.investigation import Choice
from bot.teams import messages
from bot.teams.turn import Card, Services
from cards.common import to_dict
from cards.conversation import PickerItem, build_checklist_card, build_picker_card
from cards.diagnosis import build_diagnosis_card

__all__ = ["ask", "check", "reason"]

log = logging.getLogger(__name__)


async def ask(
    services: Services,
    user: str,
    record_type: RecordType,
    *,
    about_record: bool,
    subject_words: Sequence[str] = (),
) -> Card:
    """The card answering `user`'s question: which record they mean is the service's to work out."""
    now = datetime.now(UTC)
    try:
        answer = await services.investigator.answer(
            user, record_type, about_record=about_record, subject_words=subject_words
        )
    except BackendError as exc:
        log.warning("a diagnosis failed: %s", exc)  # not who: an agent may have typed an address
        return _checklist(record_type, exc, user)
    if isinstance(answer, Choice):
        items = [PickerItem(c.id, c.subject, _when(c.start)) for c in answer.candidates]
        return to_dict(build_picker_card(items, record_type=record_type, user=user))
    return _diagnosis(answer, record_type, now)


async def check(
    services: Services,
    user: str,
    record: str | None,
    record_type: RecordType,
    *,
    reader: str,
    show_all: bool = False,
) -> Card | str:
    """A fresh diagnosis of `user`'s record (their mailbox when None), the record read as `reader`."""
    now = datetime.now(UTC)
    try:
        # Read as the presser: a record id in a card's data shows only what they may read.
        report = await services.investigator.run(user, record, record_type, reader=reader)
    except BackendError as exc:
        return _checklist(record_type, exc, user)
    except InputError:
        return messages.UNKNOWN_ACTION
    return _diagnosis(report, record_type, now, show_all)


def _diagnosis(report: Report, record_type: str, now: datetime, show_all: bool = False) -> Card:
    return to_dict(build_diagnosis_card(report, record_type=record_type, checked_at=now, show_all=show_all))


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
