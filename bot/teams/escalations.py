"""Escalating to the helpdesk: the ticket's card for the person, or a message saying why there is none."""

from __future__ import annotations

import asyncio
import logging

from bot.diagnosis import RecordType
from bot.errors import StoreError
from bot.helpdesk.desk import MAX_OPEN_TICKETS, Escalation, EscalationRefused
from bot.teams import messages
from bot.teams.turn import Card, Turn
from cards.common import to_dict
from cards.ticket import build_ticket_card

__all__ = ["escalate"]

log = logging.getLogger(__name__)


async def escalate(
    turn: Turn, user: str, record: str | None, record_type: RecordType, comment: str
) -> Card | str:
    """Open a ticket about `user`'s record (their mailbox when None), asked by the turn's sender.

    The sender is `user`, or an agent escalating someone else's diagnosis: the ticket is about `user`,
    and the record is read as the sender.
    """
    helpdesk = turn.services.helpdesk
    if helpdesk is None:
        return messages.ESCALATE_SOON
    asker = turn.user or ""
    name = (turn.name or user) if asker.lower() == user.lower() else user
    budget = turn.services.budget
    try:
        async with asyncio.timeout(budget):
            asked = Escalation(turn.tenant or "", user, name, record_type, record, comment, reader=turn.user)
            ticket, has_channel = await helpdesk.escalate(asked)
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
