"""What each card button carries, typed. `Payload.parse` reads an `Action.Execute`'s data in one place and
refuses (`Unfit`) what doesn't fit its verb. Anyone can forge card data, so nothing here is trusted beyond
its shape: ids must be ids, text stays text, and a field the verb doesn't know is ignored."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from bot.diagnosis import RECORD_TYPES, RecordType
from bot.diagnosis.fixes import FILTER_FIXES, FIX_IDS, FixId
from bot.fixing import PERSON_TOO
from bot.ids import is_id

__all__ = [
    "AGENT_FIXES",
    "PERSON_FIXES",
    "SELF_FIXES",
    "Check",
    "Escalate",
    "EscalateSend",
    "FixPress",
    "FixUndo",
    "Mute",
    "Payload",
    "Pick",
    "TicketFixPress",
    "TicketPress",
    "TicketRefresh",
    "Unfit",
    "Watch",
]


class Unfit(ValueError):
    """The card's data doesn't fit its verb: forged, or from a card older than this version."""


def _record_id(value: object) -> object:
    if value is not None and not (isinstance(value, str) and is_id(value)):
        raise ValueError("not a record id")  # pydantic reports it: the payload is Unfit
    return value


def _known_type(value: object) -> RecordType:
    return next((t for t in RECORD_TYPES if t == value), "appointment")


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# The person's own fixes (their filters): theirs alone. The rest are the helpdesk's, from a ticket card
# (design.md section 4); of those, the person may also try `PERSON_TOO` (Test & Enable of their own
# mailbox, where their roles let them: `bot.fixing.may_apply`). A verb takes only its own kinds, so a
# forged card can't ask one for another, and is refused before anything is read.
SELF_FIXES: frozenset[FixId] = FILTER_FIXES  # the person's own filters: theirs alone
PERSON_FIXES: frozenset[FixId] = SELF_FIXES | {f for f in FIX_IDS if f in PERSON_TOO}  # "Fix it for me"
AGENT_FIXES: frozenset[FixId] = frozenset(FIX_IDS) - SELF_FIXES  # an agent's "Fix" on a ticket card
_KEY = re.compile(r"[0-9A-Za-z_-]{8,128}")  # an application's key (a hash), never anything to interpret


def _fix_of(kinds: frozenset[FixId]) -> Any:
    def fix_id(value: object) -> FixId:
        found = next((f for f in FIX_IDS if f == value), None)
        if found is None or found not in kinds:
            raise ValueError("not a fix of this button")
        return found

    return BeforeValidator(fix_id)


def _key(value: object) -> str:
    if not (isinstance(value, str) and _KEY.fullmatch(value)):
        raise ValueError("not an application key")
    return value


RecordId = Annotated[str | None, BeforeValidator(_record_id)]
KnownType = Annotated[RecordType, BeforeValidator(_known_type)]  # an unknown type reads as appointment
TextOrNone = Annotated[str | None, BeforeValidator(_text_or_none)]
Text = Annotated[str, BeforeValidator(lambda value: str(value or ""))]
Flag = Annotated[bool, BeforeValidator(bool)]
NumberOrNone = Annotated[int | None, BeforeValidator(_int_or_none)]


class Payload(BaseModel):
    """Whose card the button is on: `user`, the person it is about (None: whoever presses it)."""

    model_config = ConfigDict(frozen=True, strict=True, populate_by_name=True)

    user: str | None = None

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Self:
        """The payload `data` carries.

        Raises:
            Unfit: it doesn't fit (the reason is not kept: card data never reaches the log).
        """
        try:
            return cls.model_validate(data)
        except ValidationError:
            raise Unfit(f"not a {cls.__name__} payload") from None

    def about(self, presser: str) -> str:
        """The person the button acts for: the card's, else the presser."""
        return self.user or presser


class _RecordPayload(Payload):
    """A button about one record (None: the person's mailbox) of one type."""

    record_type: KnownType = Field("appointment", alias="type")
    record: RecordId = None


class Check(_RecordPayload):
    """Re-check, All checks / Show less, Check my mailbox."""

    show_all: Flag = False


class Pick(Check):
    """Check this one (the picker): a record must be chosen."""

    @model_validator(mode="after")
    def _picked(self) -> Self:
        if self.record is None:
            raise ValueError("no record picked")
        return self


class Escalate(_RecordPayload):
    """Escalate (to the helpdesk): the comment form comes first. `subject` is shown on it, as text."""

    subject: TextOrNone = None


class EscalateSend(_RecordPayload):
    """Send to helpdesk, with the person's optional comment."""

    comment: Text = ""


class Mute(Payload):
    """Mute (a proactive notice's: no more of them)."""


class Watch(Payload):
    """Notify me (when it's fixed; a proactive notice's): `cause` is the finding id the notice was about."""

    cause: TextOrNone = None


class TicketPress(Payload):
    """An agent's button on a ticket card. The helpdesk judges the ticket number and version itself (a
    card without them gets its own answer there), so they are read, not refused, here."""

    ticket: NumberOrNone = None
    version: NumberOrNone = None
    note: Text = ""

    def data(self) -> dict[str, Any]:
        return {"ticket": self.ticket, "version": self.version, "note": self.note}


class TicketRefresh(Payload):
    """A ticket card's refresh (Universal Actions; automatic for the agents Teams knows, or by hand)."""

    ticket: NumberOrNone = None


class FixPress(_RecordPayload):
    """Fix it for me (`fix_offer`) and its Confirm (`fix_apply`): a fix the person may make themselves, by
    id. Only whose it is, the record, its type and the fix id: Confirm derives the changes again, as the
    presser."""

    fix: Annotated[FixId, _fix_of(PERSON_FIXES)]

    def check(self) -> dict[str, Any]:
        """The data of Re-check (and Cancel): the diagnosis this fix is for."""
        return {"user": self.user, "record": self.record, "type": self.record_type}

    def data(self) -> dict[str, Any]:
        return {**self.check(), "fix": self.fix}


class TicketFixPress(FixPress):
    """An agent's Fix on a ticket card (`ticket_fix_offer`) and its Confirm (`ticket_fix_apply`): one of the
    helpdesk's fixes for the ticket's person. `ticket` is read for the helpdesk to judge."""

    fix: Annotated[FixId, _fix_of(AGENT_FIXES)]
    ticket: NumberOrNone = None

    def data(self) -> dict[str, Any]:
        return {**super().data(), "ticket": self.ticket}


class FixUndo(Payload):
    """Undo (a filter fix): the application's key, which the fix service looks up and checks itself."""

    # "applied" on the card (a datum called "key" breaks the Playground's renderer); "key" from older cards.
    key: Annotated[str, BeforeValidator(_key)] = Field(alias="applied")
