"""What the outbox carries: one `Kind` per message, one typed payload each, read from its stored JSON in
one place (`parse`). The stored shapes are those earlier versions wrote, so what they queued still goes out.

    await enqueue(store, f"ticket:{n}:post", PostTicket(number=n))   # -> kind "post_ticket", {"number": n}
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.store.base import Store

__all__ = [
    "Digest",
    "InvalidEntry",
    "Kind",
    "NotifyProblem",
    "NotifyUser",
    "Payload",
    "PostTicket",
    "UpdateTicketCard",
    "enqueue",
    "parse",
]


class Kind(StrEnum):
    """The outbox's kinds of message; the value is what the store keeps."""

    POST_TICKET = "post_ticket"  # a new ticket's card, to the tenant's helpdesk channel
    UPDATE_TICKET_CARD = "update_ticket_card"  # the channel's ticket card, as the ticket is now
    NOTIFY_USER = "notify_user"  # a text to a person (with their ticket's card when it names one)
    NOTIFY_PROBLEM = "notify_problem"  # a sweep's notice: the finding's card, to the person
    DIGEST = "digest"  # the people the sweep can't reach, to the helpdesk channel


class InvalidEntry(ValueError):
    """An entry no sender could ever send: an unknown kind, or a payload that doesn't fit its kind."""


class Payload(BaseModel):
    """One kind's payload. `to_dict()` is what the store keeps; `lane` what it waits behind."""

    model_config = ConfigDict(frozen=True)

    kind: ClassVar[Kind]

    @property
    def lane(self) -> str | None:
        """Entries in one lane (a person, a ticket) are sent one after another, in order; None: alone."""
        return None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


class _TicketNews(Payload):
    number: int  # the ticket's

    @property
    def lane(self) -> str | None:
        return str(self.number) if self.number else None


class PostTicket(_TicketNews):
    kind = Kind.POST_TICKET


class UpdateTicketCard(_TicketNews):
    kind = Kind.UPDATE_TICKET_CARD


class NotifyUser(Payload):
    kind = Kind.NOTIFY_USER
    tenant: str
    user: str
    text: str
    number: int | None = None  # the ticket the news is about: its card goes with the text

    @property
    def lane(self) -> str | None:
        return (self.user or str(self.number or "")).lower() or None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude={"number"} if self.number is None else None)


class NotifyProblem(Payload):
    kind = Kind.NOTIFY_PROBLEM
    tenant: str
    user: str
    finding: dict[str, Any]  # a `Finding.to_dict()`, as the report wrote it

    @property
    def lane(self) -> str | None:
        return self.user.lower() or None


class Digest(Payload):
    kind = Kind.DIGEST
    counts: dict[str, int]  # people per cause
    people: list[str]  # "name (causes)", one each
    total: int


_PAYLOADS: dict[Kind, type[Payload]] = {
    cls.kind: cls for cls in (PostTicket, UpdateTicketCard, NotifyUser, NotifyProblem, Digest)
}


def parse(kind: str, data: Mapping[str, Any]) -> Payload:
    """The typed payload of a stored entry.

    Raises:
        InvalidEntry: the kind is unknown, or the payload doesn't fit it (the fields that don't are named;
            their values, which may be personal, are not).
    """
    try:
        model = _PAYLOADS[Kind(kind)]
    except ValueError:
        raise InvalidEntry(f"unknown kind {kind}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = sorted({".".join(str(part) for part in error["loc"]) or "payload" for error in exc.errors()})
        raise InvalidEntry(f"a {kind} payload that doesn't fit: {', '.join(fields)}") from None


async def enqueue(store: Store, dedupe_key: str, payload: Payload) -> bool:
    """Queue `payload` once per `dedupe_key`; False when that key was queued already (sent or not)."""
    return await store.enqueue(dedupe_key, payload.kind.value, payload.to_dict())
