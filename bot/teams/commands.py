"""Helpdesk commands, said exactly ("my tickets", "use this channel for helpdesk"): they are not questions to
understand, so they are matched before intents. A table from pattern to command; the first match runs."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from bot.helpdesk.desk import Helpdesk
from bot.teams import messages
from bot.teams.diagnoses import answer, remember
from bot.teams.intents import MENTION
from bot.teams.turn import Turn

__all__ = ["COMMANDS", "run_command"]

Command = Callable[[Turn, Helpdesk, re.Match[str]], Awaitable[None]]


async def _my_tickets(turn: Turn, helpdesk: Helpdesk, said: re.Match[str]) -> None:
    if turn.user:
        await turn.send_card(await helpdesk.list_for(turn.user))


async def _open_tickets(turn: Turn, helpdesk: Helpdesk, said: re.Match[str]) -> None:
    if helpdesk.is_agent(turn.user):
        await turn.send_card(await helpdesk.list_open())
    else:
        await turn.say(messages.AGENTS_ONLY)


async def _set_channel(turn: Turn, helpdesk: Helpdesk, said: re.Match[str]) -> None:
    """Said in a team channel: tickets go there from now on (if the sender may choose it)."""
    activity = turn.activity
    channel = turn.channel_data("channel").get("id")
    if activity.conversation is None or activity.conversation.conversation_type != "channel" or not channel:
        await turn.say(messages.SET_CHANNEL_IN_A_CHANNEL)
        return
    tenant = turn.tenant or ""
    group = str(turn.channel_data("team").get("aadGroupId") or "")
    if not await helpdesk.may_set_channel(tenant, group, turn.user):
        await turn.say(messages.AGENTS_OR_OWNERS_ONLY)
        return
    bot_id = activity.recipient.id if activity.recipient else ""
    await helpdesk.set_channel(
        tenant=tenant, channel_id=channel, service_url=activity.service_url, bot_id=bot_id, team=group
    )
    await turn.say(messages.CHANNEL_SET)


async def _diagnose_other(turn: Turn, helpdesk: Helpdesk, said: re.Match[str]) -> None:
    """An agent checks someone else's mailbox, by their email address or Entra object id."""
    if not helpdesk.is_agent(turn.user):
        await turn.say(messages.ONLY_YOURSELF)
        return
    got = await answer(turn.services, said.group(1), "appointment", about_record=False, viewer=turn.user)
    await turn.send_card(got.card)
    await remember(turn, said.group(1), "appointment", got.report)


COMMANDS: tuple[tuple[re.Pattern[str], Command], ...] = (
    (re.compile(r"my tickets?|show my tickets"), _my_tickets),
    (re.compile(r"(?:show )?open tickets"), _open_tickets),
    (re.compile(r"(please )?(use|set) this channel (for|as) (the )?help ?desk( channel)?"), _set_channel),
    # linear: no nested @ runs
    (re.compile(r"(?:diagnose|check) ([^\s@]+@\S+|[0-9a-f-]{36,37})"), _diagnose_other),
)


async def run_command(turn: Turn, text: str) -> bool:
    """Run the command `text` says, if it says one exactly (an @mention and end punctuation aside)."""
    helpdesk = turn.services.helpdesk
    if helpdesk is None:
        return False
    said = " ".join(MENTION.sub(" ", text).strip().lower().rstrip(".!?").split())
    for pattern, command in COMMANDS:
        match = pattern.fullmatch(said)
        if match:
            await command(turn, helpdesk, match)
            return True
    return False
