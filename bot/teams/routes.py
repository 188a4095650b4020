"""What the bot does with each intent of a chat message: a table from intent id to route."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ActivityTypes

from bot.diagnosis import RecordType, Report
from bot.teams import messages
from bot.teams.diagnoses import answer, check, remember
from bot.teams.escalations import escalate_in_chat
from bot.teams.intents import Intent, IntentName, record_link, subject_words
from bot.teams.turn import Turn
from cards.common import to_dict
from cards.conversation import build_help_card, build_welcome_card

__all__ = ["ROUTES", "TYPING_AFTER", "Route"]

Route = Callable[[Turn, Intent, str], Awaitable[None]]
TYPING_AFTER = 0.3  # seconds: a quicker answer needs no typing indicator (and saves a connector call)


async def _diagnose(turn: Turn, intent: Intent, text: str) -> None:
    """A record (or the mailbox) doesn't sync: which record is meant is the diagnosis service's question.

    What the chat was shown is remembered after it is sent ("talk to a human" next carries it)."""
    user = turn.user
    if not user:
        await turn.say(messages.NO_IDENTITY)
        return
    record_type: RecordType = intent.record_type or "appointment"
    about_record = intent.name == "diagnose"
    link = record_link(text) if about_record else None
    if link is not None and link.table is not None and link.record_type is None:
        await turn.say(messages.NOT_A_SYNCED_TABLE.format(table=link.table))
        return
    shown: Report | None = None
    words = subject_words(text) if about_record and link is None else []
    typing = asyncio.create_task(_typing_after(turn.context, TYPING_AFTER))
    try:
        if link is not None:  # a pasted link or id: that record, read as the person (`check` remembers it)
            card = await check(turn.services, user, link.id, record_type, reader=user, turn=turn)
        else:
            got = await answer(
                turn.services, user, record_type, about_record=about_record, subject_words=words
            )
            card, shown = got.card, got.report
    finally:
        typing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await typing
    if isinstance(card, str):
        await turn.say(card)
        return
    await turn.send_card(card)
    if link is None:
        await remember(turn, user, record_type, shown)


async def _typing_after(context: TurnContext, delay: float) -> None:
    """Show "typing…" only when the answer takes long enough for a person to notice."""
    await asyncio.sleep(delay)
    await context.send_activity(Activity(type=ActivityTypes.typing))


async def _escalate(turn: Turn, intent: Intent, text: str) -> None:
    """ "Talk to a human": a ticket carrying the last diagnosis shown in this chat (or saying none was), with
    the person's message as its comment."""
    if turn.services.helpdesk is None:
        await turn.say(messages.ESCALATE_SOON)
        return
    if not turn.user:
        await turn.say(messages.NO_IDENTITY)
        return
    reply = await escalate_in_chat(turn, text)
    if isinstance(reply, str):
        await turn.say(reply)
    else:
        await turn.send_card(reply)


async def _help(turn: Turn, intent: Intent, text: str) -> None:
    await turn.send_card(to_dict(build_help_card()))


async def _greet(turn: Turn, intent: Intent, text: str) -> None:
    await turn.send_card(to_dict(build_welcome_card(turn.name)))


def _say(answer: str) -> Route:
    async def say(turn: Turn, intent: Intent, text: str) -> None:
        await turn.say(answer)

    return say


ROUTES: Mapping[IntentName, Route] = {
    "diagnose": _diagnose,
    "check_mailbox": _diagnose,
    "escalate": _escalate,
    "help": _help,
    "greeting": _greet,
    "thanks": _say(messages.THANKS),
    "out_of_scope": _say(messages.OUT_OF_SCOPE),
}
