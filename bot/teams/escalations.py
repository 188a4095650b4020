"""Escalating to the helpdesk: the ticket's card for the person, or a message saying why there is none.

The card's Escalate button names its record (`escalate`); "talk to a human" in the chat carries the last
diagnosis shown there, or says that none was (`escalate_in_chat`). Both open the ticket the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.diagnosis import RecordType
from bot.errors import StoreError
from bot.helpdesk.desk import MAX_OPEN_TICKETS, Escalation, EscalationRefused
from bot.teams import messages
from bot.teams.diagnoses import chat_of
from bot.teams.turn import Card, Turn
from cards.common import to_dict
from cards.ticket import build_ticket_card

__all__ = ["escalate", "escalate_in_chat"]

log = logging.getLogger(__name__)


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


def _name(turn: Turn, user: str) -> str:
    """The name the ticket gives `user`: the sender's, when it is about them."""
    asker = turn.user or ""
    return (turn.name or user) if asker.lower() == user.lower() else user


async def _open(turn: Turn, asked: Callable[[], Awaitable[Escalation]]) -> Card | str:
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
        notice = messages.TICKET_OPEN_ALREADY.format(key=refused.existing.key)
        return to_dict(build_ticket_card(refused.existing, for_agents=False, notice=notice))
    except StoreError as exc:
        log.error("turn %s: a ticket could not be stored: %s", turn.activity.id, exc)
        return messages.TICKET_NOT_SAVED
    except TimeoutError:
        log.error("turn %s: storing a ticket took longer than %.0f s", turn.activity.id, budget)
        return messages.TICKET_UNCONFIRMED
    notice = (messages.ESCALATED if has_channel else messages.ESCALATED_NO_CHANNEL).format(key=ticket.key)
    color = "Good" if has_channel else "Warning"
    return to_dict(build_ticket_card(ticket, for_agents=False, notice=notice, notice_color=color))
