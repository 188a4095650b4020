"""Escalating to the helpdesk: the ticket's card for the person, or a message saying why there is none.

The card's Escalate button names its record (`escalate`); "talk to a human" in the chat carries the last
diagnosis shown there, or says that none was (`escalate_in_chat`). Both open the ticket the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from bot.diagnosis import RecordType, Report
from bot.errors import StoreError
from bot.helpdesk.desk import MAX_OPEN_TICKETS, Escalation, EscalationRefused
from bot.teams import messages
from bot.teams.diagnoses import chat_of
from bot.teams.turn import Card, Turn
from cards.common import to_dict
from cards.ticket import build_ticket_card

__all__ = ["escalate", "escalate_in_chat", "escalate_refused_fix"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Notices:
    """What the ticket card tells the person, by outcome (each takes the ticket's key)."""

    escalated: str = messages.ESCALATED
    no_channel: str = messages.ESCALATED_NO_CHANNEL
    open_already: str = messages.TICKET_OPEN_ALREADY
    color: str = "Good"  # a new ticket's notice, when the helpdesk channel has it
    open_color: str = "Warning"  # the notice on the ticket open already


_REFUSED_FIX = _Notices(
    messages.FIX_REFUSED_ESCALATED,
    messages.FIX_REFUSED_NO_CHANNEL,
    messages.FIX_REFUSED_OPEN_ALREADY,
    color="Attention",
    open_color="Attention",
)


async def escalate(
    turn: Turn, user: str, record: str | None, record_type: RecordType, comment: str
) -> Card | str:
    """Open a ticket about `user`'s record (their mailbox when None), asked by the turn's sender, with a
    fresh diagnosis.

    The sender is `user`, or an agent escalating someone else's diagnosis: the ticket is about `user`,
    and the record is read as the sender.
    """

    async def asked() -> Escalation:
        name = _name(turn, user)
        return Escalation(turn.tenant or "", user, name, record_type, record, comment, reader=turn.user)

    return await _open(turn, asked)


async def escalate_in_chat(turn: Turn, comment: str) -> Card | str:
    """ "Talk to a human": a ticket carrying the last diagnosis shown in this chat to its sender (its
    record, causes and evidence, as its Escalate button would), or saying that no record was named and no
    diagnosis was run here. The sender is who asks; the ticket is about whom that diagnosis was about."""
    helpdesk, asker = turn.services.helpdesk, turn.user or ""
    chat = chat_of(turn)

    async def asked() -> Escalation:
        shown = await helpdesk.last_diagnosis(chat) if helpdesk is not None and chat is not None else None
        if shown is None:
            name = _name(turn, asker)
            return Escalation(
                turn.tenant or "", asker, name, "appointment", None, comment, reader=asker, diagnosis="none"
            )
        record = shown.report.record.id if shown.report.record is not None else None
        name = _name(turn, shown.user)
        return Escalation(
            turn.tenant or "",
            shown.user,
            name,
            shown.record_type,
            record,
            comment,
            reader=asker,
            diagnosis=shown.report,
        )

    return await _open(turn, asked)


async def escalate_refused_fix(
    turn: Turn,
    user: str,
    record: str | None,
    record_type: RecordType,
    comment: str,
    *,
    report: Report | None = None,
) -> Card | str:
    """Dynamics 365 refused a person's own fix: a ticket about it, the refusal as its comment (what the
    person would have written), and its card saying so. Opened as the Escalate button opens one; with
    `report` (the diagnosis the fix came from) the ticket carries it instead of diagnosing again."""

    async def asked() -> Escalation:
        name = _name(turn, user)
        diagnosis: Report | Literal["run"] = report if report is not None else "run"
        return Escalation(
            turn.tenant or "", user, name, record_type, record, comment, reader=turn.user, diagnosis=diagnosis
        )

    return await _open(turn, asked, _REFUSED_FIX)


def _name(turn: Turn, user: str) -> str:
    """The name the ticket gives `user`: the sender's, when it is about them."""
    asker = turn.user or ""
    return (turn.name or user) if asker.lower() == user.lower() else user


async def _open(
    turn: Turn, asked: Callable[[], Awaitable[Escalation]], notices: _Notices = _Notices()
) -> Card | str:
    helpdesk = turn.services.helpdesk
    if helpdesk is None:
        return messages.ESCALATE_SOON
    budget = turn.services.budget
    try:
        async with asyncio.timeout(budget):
            ticket, has_channel = await helpdesk.escalate(await asked())
    except EscalationRefused as refused:
        if refused.existing is None:
            return messages.TOO_MANY_TICKETS.format(count=MAX_OPEN_TICKETS)
        notice = notices.open_already.format(key=refused.existing.key)
        card = build_ticket_card(
            refused.existing, for_agents=False, notice=notice, notice_color=notices.open_color
        )
        return to_dict(card)
    except StoreError as exc:
        log.error("turn %s: a ticket could not be stored: %s", turn.activity.id, exc)
        return messages.TICKET_NOT_SAVED
    except TimeoutError:
        log.error("turn %s: storing a ticket took longer than %.0f s", turn.activity.id, budget)
        return messages.TICKET_UNCONFIRMED
    notice = (notices.escalated if has_channel else notices.no_channel).format(key=ticket.key)
    color = notices.color if has_channel else "Warning"
    return to_dict(build_ticket_card(ticket, for_agents=False, notice=notice, notice_color=color))
