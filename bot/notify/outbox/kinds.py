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
    "DeliveryReport",
    "Digest",
    "FixFollowup",
    "InvalidEntry",
    "Kind",
    "NotifyProblem",
    "NotifyUser",
    "Payload",
    "PostTicket",
    "Unreached",
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
    DIGEST = "digest"  # the people the sweep can't reach, to the helpdesk channel (older versions')
    DELIVERY_REPORT = "delivery_report"  # what a sweep found and how telling them went, to the channel
    FIX_FOLLOWUP = "fix_followup"  # a check after a one-click fix: re-diagnose, tell the person how it went


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
    name: str | None = None  # who, for the delivery reports (name or email); older entries lack it
    # The 1:1 conversation reference the sweep found when it queued the notice: sending then needs no read
    # of the store (on Azure, one request of five per notice). Older entries lack it: it is read then.
    reference: dict[str, Any] | None = None

    @property
    def lane(self) -> str | None:
        return self.user.lower() or None

    def to_dict(self) -> dict[str, Any]:
        unset = {k for k in ("name", "reference") if getattr(self, k) is None}
        return self.model_dump(exclude=unset or None)


class Digest(Payload):
    kind = Kind.DIGEST
    counts: dict[str, int]  # people per cause
    people: list[str]  # "name (causes)", one each
    total: int


class Unreached(BaseModel):
    """Someone the sweep found but can't message (no chat with the bot yet)."""

    model_config = ConfigDict(frozen=True)

    user: str
    name: str  # name, else email, else the id
    causes: list[str]


class DeliveryReport(Payload):
    """A sweep's delivery report: what it found, and (read from the outbox when it is sent) how telling
    them went. Its notices carry `sweep` as their outbox group."""

    kind = Kind.DELIVERY_REPORT
    sweep: str
    at: float  # when the sweep ended (epoch seconds)
    found: int
    reachable: int
    queued: int
    already_told: int
    muted: int
    fixed: int
    causes: dict[str, int]  # people per cause, among those found
    unreachable: list[Unreached]  # the first UNREACHED_KEPT of them
    unreachable_total: int
    unreachable_changed: bool  # not the same people as the last report's: worth a post by itself
    settle_by: float  # sent by then at the latest, with what is still sending counted


class FixFollowup(Payload):
    """A check after a fix was applied (`bot.fixing`), due a while after it: the sender re-diagnoses the
    same user and record and tells the person, or queues the next check (`remaining`)."""

    kind = Kind.FIX_FOLLOWUP
    key: str  # which application: "<key>@<stamp>" (its record is setting "fix:<key>"; bot.fixing.followup)
    user: str  # the person's Entra object id
    record: str | None  # the record's id; None: a mailbox-level fix
    type: str  # the record type
    remaining: list[float]  # the later checks, in seconds after the fix

    @property
    def lane(self) -> str | None:
        return self.user.lower() or None


_PAYLOADS: dict[Kind, type[Payload]] = {
    cls.kind: cls
    for cls in (PostTicket, UpdateTicketCard, NotifyUser, NotifyProblem, Digest, DeliveryReport, FixFollowup)
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


async def enqueue(
    store: Store, dedupe_key: str, payload: Payload, *, group: str | None = None, delay: float = 0
) -> bool:
    """Queue `payload` once per `dedupe_key` (tagged with `group`: a sweep's id), due in `delay` seconds;
    False when that key was queued already (sent, given up or expired: the key outlives the entry's body)."""
    return await store.enqueue(dedupe_key, payload.kind.value, payload.to_dict(), group=group, delay=delay)
